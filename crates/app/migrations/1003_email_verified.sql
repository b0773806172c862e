-- Whether the user's primary email address is verified at the identity provider (Clerk's
-- `verification.status` of the primary address), so the app can tell a confirmed address
-- from one typed at sign-up. 0 or 1.
ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;
