// Reads a user's external accounts through Clerk's official Node SDK, `@clerk/backend`, then
// deletes the first one with the SDK's `deleteUserExternalAccount`.
// Usage: node clerk-external-accounts.mjs <api_url> <secret_key> <user_id>
// Prints one JSON object: the accounts as the SDK's ExternalAccount objects, and the deletion.
import { createClerkClient } from "@clerk/backend";

const [apiUrl, secretKey, userId] = process.argv.slice(2);
const clerk = createClerkClient({ secretKey, apiUrl, telemetry: { disabled: true } });

const user = await clerk.users.getUser(userId);
const accounts = user.externalAccounts.map((a) => ({
  id: a.id,
  provider: a.provider,
  providerUserId: a.providerUserId,
  identificationId: a.identificationId,
  approvedScopes: a.approvedScopes,
  emailAddress: a.emailAddress,
  firstName: a.firstName,
  lastName: a.lastName,
  imageUrl: a.imageUrl,
  verificationStatus: a.verification?.status ?? null,
  verificationStrategy: a.verification?.strategy ?? null,
}));
const deleted = await clerk.users.deleteUserExternalAccount({
  userId,
  externalAccountId: accounts[0].id,
});
const after = await clerk.users.getUser(userId);
process.stdout.write(
  JSON.stringify({
    accounts,
    deleted: { id: deleted.id, object: deleted.object, deleted: deleted.deleted },
    left: after.externalAccounts.length,
  }),
);
