// Signs stdin as a Svix delivery with the official `svix` library.
// Usage: node svix-sign.mjs <whsec_secret> <msg_id> <unix_seconds>
// Prints the three headers as JSON.
import { Webhook } from "svix";

const [secret, msgId, seconds] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const payload = Buffer.concat(chunks).toString("utf8");
const signature = new Webhook(secret).sign(msgId, new Date(Number(seconds) * 1000), payload);
process.stdout.write(JSON.stringify({ "svix-id": msgId, "svix-timestamp": seconds, "svix-signature": signature }));
