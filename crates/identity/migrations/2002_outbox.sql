-- Events the identity part emits, written in the same transaction as the change they describe
-- (a transactional outbox), and their delivery to webhook endpoints.

-- Settings of this identity instance (its Clerk-style instance id).
CREATE TABLE identity_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per event. `id` is the svix-id (msg_…, sortable by time) and stays the same across
-- every delivery attempt and replay; `body` is the exact JSON sent.
CREATE TABLE identity_events (
    id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_events_created ON identity_events (created_at, id);

CREATE TABLE identity_webhook_endpoints (
    id TEXT PRIMARY KEY,
    -- NULL for the app's own receiver in the all-in-one run, reached on this instance's port.
    url TEXT,
    -- Comma-separated event types; empty means every type.
    event_types TEXT NOT NULL DEFAULT '',
    internal BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Since when every attempt has failed; NULL while deliveries succeed.
    failing_since BIGINT,
    disabled_at BIGINT
);

-- Signing secrets, sealed under the master secret. The current one has no expiry; after a
-- rotation the old one keeps signing until `expires_at`.
CREATE TABLE identity_webhook_secrets (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES identity_webhook_endpoints (id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX identity_webhook_secrets_endpoint ON identity_webhook_secrets (endpoint_id);

-- What each endpoint still has to receive. Written with the event (fan-out at write time);
-- claimed by a worker with a lease so that two instances never send the same attempt.
CREATE TABLE identity_webhook_deliveries (
    event_id TEXT NOT NULL REFERENCES identity_events (id),
    endpoint_id TEXT NOT NULL REFERENCES identity_webhook_endpoints (id) ON DELETE CASCADE,
    -- pending | succeeded | failed
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX identity_webhook_deliveries_due ON identity_webhook_deliveries (status, next_attempt_at);

-- Every attempt, kept for operators: status, duration, and the start of the response.
CREATE TABLE identity_webhook_attempts (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    response_status BIGINT,
    duration_ms BIGINT NOT NULL,
    response_body TEXT,
    error TEXT
);
CREATE INDEX identity_webhook_attempts_delivery ON identity_webhook_attempts (endpoint_id, event_id, attempted_at);

-- Management API secret keys (sk_live_…), stored only as SHA-256 hashes.
CREATE TABLE identity_api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    -- The first characters, to tell keys apart in listings.
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
