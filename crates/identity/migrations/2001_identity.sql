-- The identity part: accounts, their email addresses, sessions, signing keys and throttles.
-- Timestamps are Unix milliseconds; ids carry Clerk's prefixes (user_, idn_, sess_, client_).
CREATE TABLE identity_users (
    id TEXT PRIMARY KEY,
    external_id TEXT,
    username TEXT,
    -- Lower-cased username, unique; NULL when the user has none.
    username_normalized TEXT UNIQUE,
    first_name TEXT,
    last_name TEXT,
    image_url TEXT,
    -- argon2id PHC string; NULL for accounts without a password.
    password_hash TEXT,
    password_updated_at BIGINT,
    public_metadata TEXT NOT NULL DEFAULT '{}',
    private_metadata TEXT NOT NULL DEFAULT '{}',
    unsafe_metadata TEXT NOT NULL DEFAULT '{}',
    primary_email_address_id TEXT,
    banned_at BIGINT,
    last_sign_in_at BIGINT,
    last_active_at BIGINT,
    created_at BIGINT NOT NULL,
    -- Strictly increases with every change: receivers order events by it.
    updated_at BIGINT NOT NULL
);

CREATE TABLE identity_email_addresses (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    email_address TEXT NOT NULL,
    -- Lower-cased address: unique across all users, so addresses are case-insensitively unique.
    email_normalized TEXT NOT NULL UNIQUE,
    verification_status TEXT NOT NULL,
    verification_strategy TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX identity_email_addresses_user ON identity_email_addresses (user_id);

CREATE TABLE identity_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    -- SHA-256 of the __client cookie's value; the value itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    user_agent TEXT,
    ip_address TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL,
    expire_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX identity_sessions_user ON identity_sessions (user_id, status);

CREATE TABLE identity_signing_keys (
    kid TEXT PRIMARY KEY,
    -- The public JWK, as published at /.well-known/jwks.json.
    public_jwk TEXT NOT NULL,
    -- PKCS#8 private key sealed with AES-256-GCM under a key derived from the master secret,
    -- base64.
    private_key_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When it stopped signing; it stays published a while longer for tokens it signed.
    retired_at BIGINT
);

-- Fixed-window counters for lockout and throttling, updated atomically in place so parallel
-- attempts cannot exceed a limit.
CREATE TABLE identity_throttles (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);
