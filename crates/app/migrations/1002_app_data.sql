-- The app's own data, hanging off its users. Policy: when the identity provider deletes a user,
-- the user's app data is deleted in the same transaction that tombstones the user row.
CREATE TABLE app_preferences (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    -- light | dark | system
    theme TEXT NOT NULL DEFAULT 'system',
    locale TEXT NOT NULL DEFAULT 'en-US',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    updated_at BIGINT NOT NULL
);

CREATE TABLE app_notes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX app_notes_user ON app_notes (user_id, created_at);
