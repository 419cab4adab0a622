// @zoom/rivet's AwsLambdaReceiver (meetings): 200 for a verified event, 400 otherwise.
import crypto from "node:crypto";
import { AwsLambdaReceiver } from "@zoom/rivet/meetings";

console.debug = () => {};
const SECRET = "Oq8JfDq2RlW0Xb1n5vQm7A";
const OTHER_SECRET = "c3VwZXJzZWNyZXR0b2tlbg";
const TIMESTAMP = "1765000000";
const STARTED =
  '{"event":"meeting.started","event_ts":1765000000123,"payload":{"account_id":' +
  '"AAAAAABBBB_CCCCdddEE","object":{"id":"85263974512","uuid":' +
  '"Xq8Fs2bCTmCqEuH8W2JwOg==","host_id":"z8yBXlP1TmagS1yGj3eDrw","topic":' +
  '"Weekly planning","type":2,"start_time":"2025-12-06T05:46:40Z","timezone":' +
  '"Europe/Paris"}}}';
const VALIDATION =
  '{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1765000000456,' +
  '"event":"endpoint.url_validation"}';
const sign = (body, secret, timestamp = TIMESTAMP) =>
  "v0=" + crypto.createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex");

const cases = [
  ["verified", STARTED, sign(STARTED, SECRET), TIMESTAMP],
  ["signed with another secret", STARTED, sign(STARTED, OTHER_SECRET), TIMESTAMP],
  ["body changed", STARTED.replace("Weekly", "weekly"), sign(STARTED, SECRET), TIMESTAMP],
  ["another timestamp", STARTED, sign(STARTED, SECRET), "1765000001"],
  ["url validation", VALIDATION, sign(VALIDATION, SECRET), TIMESTAMP],
];
const handler = new AwsLambdaReceiver({ webhooksSecretToken: SECRET }).start();
for (const [name, body, signature, timestamp] of cases) {
  const answer = await handler(
    { body, isBase64Encoded: false, headers: { "x-zm-signature": signature, "x-zm-request-timestamp": timestamp } },
    {},
  );
  console.log(`${name}: ${answer.statusCode} ${answer.body}`);
}
