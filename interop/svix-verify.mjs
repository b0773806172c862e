// Verifies a delivery with the official `svix` library.
// Usage: node svix-verify.mjs <whsec_secret> < {"headers": {...}, "body": "<raw body>"}
// Prints {"ok": true, "payload": <the body parsed once verified>} or {"ok": false, "error": "..."}.
// (svix 2.x's verify throws on a bad signature and returns nothing on a good one.)
import { Webhook } from "svix";

const [secret] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { headers, body } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
try {
  new Webhook(secret).verify(body, headers);
  process.stdout.write(JSON.stringify({ ok: true, payload: JSON.parse(body) }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.message) }));
}
