// @shopify/shopify-api shopify.webhooks.validate, web-api adapter.
import crypto from "node:crypto";
import "@shopify/shopify-api/adapters/web-api";
import { LogSeverity, shopifyApi } from "@shopify/shopify-api";

const SECRET = "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";
const BODY = Buffer.from(
  '{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/' +
    '820982911946154508","email":"jon@example.com","created_at":' +
    '"2025-12-06T06:46:40+01:00","currency":"EUR","total_price":"199.65","name":' +
    '"#9999","note":"Caf\\u00e9 \\u2013 livraison","line_items":[{"id":' +
    '866550311766439020,"title":"Aviator sunglasses","quantity":1,"price":"89.99"}]}',
);
const mac = (raw, secret) => crypto.createHmac("sha256", secret).update(raw).digest();
const b64 = (raw, secret) => mac(raw, secret).toString("base64");
const reencoded = Buffer.from(JSON.stringify(JSON.parse(BODY.toString())));

const cases = [
  ["verified", BODY, b64(BODY, SECRET), "classic"],
  ["verified, events headers", BODY, b64(BODY, SECRET), "events"],
  ["other secret", BODY, b64(BODY, "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"), "classic"],
  ["body changed", Buffer.from(BODY.toString().replace("Aviator", "aviator")), b64(BODY, SECRET), "classic"],
  ["hex instead of base64", BODY, mac(BODY, SECRET).toString("hex"), "classic"],
  ["non-ASCII re-encoded as UTF-8", reencoded, b64(BODY, SECRET), "classic"],
];
const shopify = shopifyApi({
  apiKey: "key",
  apiSecretKey: SECRET,
  hostName: "hooks.example.com",
  apiVersion: "2025-10",
  isEmbeddedApp: false,
  logger: { level: LogSeverity.Error, log: () => {} },
});
for (const [name, raw, signature, family] of cases) {
  const p = family === "classic" ? "X-Shopify-" : "shopify-";
  const headers = {
    [`${p}Hmac-Sha256`]: signature,
    [`${p}Topic`]: "orders/create",
    [`${p}Shop-Domain`]: "acme.myshopify.com",
    [`${p}API-Version`]: "2025-10",
    [`${p}Webhook-Id`]: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    [`${p}Event-Id`]: "98880550-7158-44d4-b7cd-2c97c8a091b5",
    "Content-Type": "application/json",
  };
  if (family === "events") {
    Object.assign(headers, {
      "shopify-handle": "h",
      "shopify-action": "create",
      "shopify-resource-id": "gid://shopify/Order/1",
      "shopify-triggered-at": "2025-12-06T05:46:40.000Z",
    });
  }
  const request = new Request("https://hooks.example.com/webhooks/shopify/", { method: "POST", headers, body: raw });
  const result = await shopify.webhooks.validate({ rawBody: raw.toString("utf8"), rawRequest: request });
  console.log(`${name}: ${result.valid}`);
}
console.log(`vector signature: ${b64(BODY, SECRET)}`);
