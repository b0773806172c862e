// Verifies a session token with the `jose` library given only a JWKS URL.
// Usage: node jose-verify.mjs <jwks_url> <token>
// Prints {"ok": true, "header": ..., "payload": ...} or {"ok": false, "error": "..."}.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUrl, token] = process.argv.slice(2);
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { algorithms: ["RS256"] });
  process.stdout.write(JSON.stringify({ ok: true, header: protectedHeader, payload }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.code || error) }));
}
