// Verifies a delivery with the official `svix` library.
// Usage: node svix-verify.mjs <whsec_secret> < {"headers": {...}, "body": "<raw body>"}
// Prints {"ok": true, "payload": ...} or {"ok": false, "error": "..."}.
import { Webhook } from "svix";

const [secret] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { headers, body } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
try {
  const payload = new Webhook(secret).verify(body, headers);
  process.stdout.write(JSON.stringify({ ok: true, payload }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.message) }));
}
