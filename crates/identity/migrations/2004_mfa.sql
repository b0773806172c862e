-- Second factors: authenticator apps (TOTP), backup codes, the pending second step of a
-- sign-in, and when each session last proved a factor (step-up and the token's `fva`).

-- One authenticator app per account. `confirmed_at` is NULL while enrolment waits for its
-- first code; only a confirmed row asks for a second step.
CREATE TABLE identity_totp (
    user_id TEXT PRIMARY KEY REFERENCES identity_users (id) ON DELETE CASCADE,
    -- The 20-byte secret sealed (AES-256-GCM) under a key derived from the master secret.
    secret_sealed TEXT NOT NULL,
    confirmed_at BIGINT,
    -- The last 30-second step a code was accepted for: a code of that step or an earlier one
    -- is refused (replay).
    last_used_step BIGINT,
    created_at BIGINT NOT NULL
);

-- Single-use backup codes, kept only as HMAC-SHA256 under a key derived from the master
-- secret and bound to the user id.
CREATE TABLE identity_backup_codes (
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in whose first factor was right, waiting for its second, bound to the browser by an
-- HttpOnly cookie whose SHA-256 is `token_hash`. No session exists until it is spent.
CREATE TABLE identity_mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    redirect_url TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    first_factor_at BIGINT NOT NULL,
    expire_at BIGINT NOT NULL,
    consumed_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_mfa_challenges_user ON identity_mfa_challenges (user_id);

-- When the session's holder last proved a first factor (NULL: at its creation) and a second
-- one (NULL: never).
ALTER TABLE identity_sessions ADD COLUMN first_factor_at BIGINT;
ALTER TABLE identity_sessions ADD COLUMN second_factor_at BIGINT;
