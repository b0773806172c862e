-- Passkeys (WebAuthn credentials) and the ceremonies that register and use them.

-- The user handle WebAuthn knows an account by: 64 random bytes (base64url), never the user
-- id, so a passkey reveals nothing about the account. Made with the account's first passkey.
CREATE TABLE identity_webauthn_users (
    user_id TEXT PRIMARY KEY REFERENCES identity_users (id) ON DELETE CASCADE,
    user_handle TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- One registered passkey. `static_state` and `dynamic_state` are webauthn_rp's own encodings
-- (base64url): the public key and its extensions, and the signature counter with the
-- user-verified and backup flags, which each sign-in updates.
CREATE TABLE identity_passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    static_state TEXT NOT NULL,
    dynamic_state TEXT NOT NULL,
    name TEXT NOT NULL,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX identity_passkeys_user ON identity_passkeys (user_id);

-- A registration or sign-in ceremony waiting for the browser's answer: single use (the row
-- is deleted when the answer comes, right or wrong), five minutes, and bound to the browser
-- that started it by an HttpOnly cookie whose SHA-256 is `browser_hash`. `server_state` is
-- webauthn_rp's encoding of what it needs to check the answer.
CREATE TABLE identity_webauthn_ceremonies (
    challenge TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES identity_users (id) ON DELETE CASCADE,
    server_state TEXT NOT NULL,
    expire_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_webauthn_ceremonies_expire ON identity_webauthn_ceremonies (expire_at);
