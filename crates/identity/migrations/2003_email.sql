-- Email: one-time codes mailed to people (kept only as keyed hashes), the mail outbox, and how
-- each email address was (or is being) verified.

-- The address's current or last code verification, as Clerk shows it: attempts made and when
-- the code expires (ms).
ALTER TABLE identity_email_addresses ADD COLUMN verification_attempts BIGINT;
ALTER TABLE identity_email_addresses ADD COLUMN verification_expire_at BIGINT;

-- A code on its way to someone, and what entering it will do (`purpose`: sign_up, sign_in,
-- reset_password, add_email). A row without `email_address_id` is a stand-in for an address
-- that is unknown or taken: it answers, counts attempts and expires exactly like a real one,
-- but no code for it was ever mailed, so it never succeeds.
CREATE TABLE identity_verifications (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    -- SHA-256 of the browser's verification cookie; NULL for codes entered while signed in.
    token_hash TEXT UNIQUE,
    user_id TEXT REFERENCES identity_users (id) ON DELETE CASCADE,
    email_address_id TEXT,
    -- The address as typed, shown on the page and used when the code is sent again.
    email_address TEXT NOT NULL,
    -- HMAC-SHA256 of the code under a key derived from the master secret; never the code.
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    expire_at BIGINT NOT NULL,
    consumed_at BIGINT,
    -- Where to go afterwards: a same-origin path, checked before it was stored.
    redirect_url TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX identity_verifications_user ON identity_verifications (user_id, purpose);

-- Mail to send, written in the same transaction as the change that needs it (a transactional
-- outbox) and claimed by a worker with a lease, like webhook deliveries. The bodies are sealed
-- under the master secret (they hold codes) and cleared once an SMTP server accepted the mail.
CREATE TABLE identity_mail_outbox (
    id TEXT PRIMARY KEY,
    -- verification_code, sign_in_code, reset_password_code, account_exists, primary_email_changed
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    user_id TEXT,
    subject TEXT NOT NULL,
    body_sealed TEXT NOT NULL,
    -- pending | sent | failed
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    -- The class of the last failure and the server's reply code; never the reply text.
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX identity_mail_outbox_due ON identity_mail_outbox (status, next_attempt_at);
CREATE INDEX identity_mail_outbox_created ON identity_mail_outbox (created_at);
