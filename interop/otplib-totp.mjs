// Prints the TOTP codes (6 digits, 30 s, SHA-1) of a base32 secret, as otplib computes them:
// `node otplib-totp.mjs SECRET UNIX_SECONDS...`, one code a line.
import { generate } from "otplib";

const [secret, ...times] = process.argv.slice(2);
for (const time of times) {
  const code = await generate({ secret, epoch: Number(time), algorithm: "sha1", digits: 6, period: 30 });
  process.stdout.write(`${code}\n`);
}
