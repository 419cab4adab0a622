// @linear/sdk LinearWebhookClient.verify, its clock fixed at NOW_MS.
import crypto from "node:crypto";
import { LinearWebhookClient } from "@linear/sdk/webhooks";

const SECRET = "lin_wh_6b0f3c1d9e8a7f2b5c4d3e2f1a0b9c8d";
const OTHER_SECRET = "lin_wh_0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a";
const NOW_MS = 1765000000000;
Date.now = () => NOW_MS;

// The body of test_linear.sdk_case_body, key for key (timestamp last).
function body(timestamp) {
  const text = JSON.stringify({
    action: "create",
    type: "Issue",
    data: { id: "9cfb482a-81e3-4154-b5b9-2c805e70a02d", title: "Checkout fails on Safari" },
    url: "https://linear.app/acme/issue/ENG-42",
    createdAt: "2025-12-06T05:46:40.000Z",
    organizationId: "a4f1c2d3-0000-4000-8000-000000000001",
    webhookId: "000042e3-d123-4980-b49f-8e140eef9329",
  });
  if (timestamp === undefined) return Buffer.from(text);
  // Python writes 1765000000000.5 as is; JSON.stringify does too.
  return Buffer.from(text.slice(0, -1) + ',"webhookTimestamp":' + JSON.stringify(timestamp) + "}");
}
const sign = (raw, secret) => crypto.createHmac("sha256", secret).update(raw).digest("hex");

const cases = [
  ["now", body(NOW_MS), SECRET],
  ["59 s old", body(NOW_MS - 59000), SECRET],
  ["60 s old", body(NOW_MS - 60000), SECRET],
  ["61 s old", body(NOW_MS - 61000), SECRET],
  ["60 s ahead", body(NOW_MS + 60000), SECRET],
  ["61 s ahead", body(NOW_MS + 61000), SECRET],
  ["fractional ms", body(NOW_MS + 0.5), SECRET],
  ["no timestamp", body(undefined), SECRET],
  ["timestamp as text", body(String(NOW_MS)), SECRET],
  ["other secret", body(NOW_MS), OTHER_SECRET],
];
const client = new LinearWebhookClient(SECRET);
for (const [name, raw, secret] of cases) {
  let verified;
  try {
    verified = client.verify(raw, sign(raw, secret));
  } catch {
    verified = false;
  }
  console.log(`${name}: ${verified}`);
}
console.log(`vector signature: ${sign(body(NOW_MS), SECRET)}`);
