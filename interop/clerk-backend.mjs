// Drives latchkey's management API with Clerk's official Node SDK, `@clerk/backend`.
// Usage: node clerk-backend.mjs <api_url> <secret_key> <session_token>
// Prints one JSON object with what each SDK call returned (or the error it threw).
import { createClerkClient, verifyToken } from "@clerk/backend";

const [apiUrl, secretKey, sessionToken] = process.argv.slice(2);
const clerk = createClerkClient({ secretKey, apiUrl, telemetry: { disabled: true } });

/** The parts of an SDK User the test looks at. */
const user = (u) => ({
  id: u.id,
  firstName: u.firstName,
  lastName: u.lastName,
  email: u.primaryEmailAddress?.emailAddress ?? null,
  emailVerification: u.primaryEmailAddress?.verification?.status ?? null,
  passwordEnabled: u.passwordEnabled,
  banned: u.banned,
  publicMetadata: u.publicMetadata,
  privateMetadata: u.privateMetadata,
  createdAt: u.createdAt,
  updatedAt: u.updatedAt,
});

/** A thrown ClerkAPIResponseError, as the caller sees it. */
const failure = (error) => ({
  status: error.status ?? null,
  code: error.errors?.[0]?.code ?? null,
  message: error.errors?.[0]?.message ?? String(error),
  paramName: error.errors?.[0]?.meta?.paramName ?? null,
  retryAfter: error.retryAfter ?? null,
});

const attempt = async (call) => {
  try {
    return { ok: await call() };
  } catch (error) {
    return { error: failure(error) };
  }
};

const out = {};
const created = await clerk.users.createUser({
  emailAddress: ["sdk@example.com"],
  password: "a long sdk passphrase",
  firstName: "Sdk",
  privateMetadata: { plan: "pro" },
});
out.created = user(created);
out.fetched = user(await clerk.users.getUser(created.id));
const list = await clerk.users.getUserList({ limit: 2, orderBy: "-created_at" });
out.list = { totalCount: list.totalCount, ids: list.data.map((u) => u.id) };
out.updated = user(
  await clerk.users.updateUser(created.id, { firstName: "Renamed", publicMetadata: { role: "admin" } }),
);
out.duplicate = await attempt(() =>
  clerk.users.createUser({ emailAddress: ["SDK@example.com"], password: "another long passphrase" }),
);
out.deleted = await clerk.users.deleteUser(created.id);
out.afterDelete = await attempt(() => clerk.users.getUser(created.id));
out.badKey = await attempt(() =>
  createClerkClient({ secretKey: "sk_live_not_a_real_key", apiUrl, telemetry: { disabled: true } }).users.getUser(
    created.id,
  ),
);
// verifyToken fetches the signing keys from `${apiUrl}/v1/jwks` with the secret key.
out.token = await attempt(async () => {
  const claims = await verifyToken(sessionToken, { secretKey, apiUrl, skipJwksCache: true });
  return { sub: claims.sub, sid: claims.sid };
});
process.stdout.write(JSON.stringify(out));
