-- Social sign-in: accounts at OAuth / OpenID Connect providers linked to identity accounts,
-- and the pending round trips to a provider.

-- One account at one provider (Clerk's ExternalAccount, id `idn_…`). A provider identity
-- (`provider`, `provider_user_id`) belongs to at most one user.
CREATE TABLE identity_external_accounts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    -- `oauth_google`, `oauth_microsoft`, `oauth_custom_<id>`.
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    email_address TEXT,
    -- 1 when the provider vouched for the address, 0 when it did not, NULL without one.
    email_verified BIGINT,
    first_name TEXT,
    last_name TEXT,
    username TEXT,
    image_url TEXT,
    approved_scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (provider, provider_user_id)
);
CREATE INDEX identity_external_accounts_user ON identity_external_accounts (user_id);

-- A sign-in started at a provider and not yet back: `state_hash` is the SHA-256 of the
-- `state` parameter, `browser_hash` that of the HttpOnly cookie of the browser that started
-- it. Spent once (`consumed_at`), valid until `expire_at`. `link_user_id` is set when a
-- signed-in person connects a provider from /user.
CREATE TABLE identity_oauth_states (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    provider TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    link_user_id TEXT REFERENCES identity_users (id) ON DELETE CASCADE,
    expire_at BIGINT NOT NULL,
    consumed_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_oauth_states_expire ON identity_oauth_states (expire_at);
