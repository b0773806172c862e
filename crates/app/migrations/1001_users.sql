-- The app's users, kept in step with the identity provider (latchkey's identity or Clerk).
-- `id` is the app's own id; `clerk_user_id` is the provider's. A deleted user stays as a
-- tombstone (`deleted_at` set, personal fields cleared) so no late event can bring it back.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    clerk_user_id TEXT NOT NULL UNIQUE,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    username TEXT,
    image_url TEXT,
    public_metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    source_updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX users_email ON users (email);

-- Every webhook message (svix-id) the app has received and what became of it. A message is
-- applied in the same transaction that records it, so a redelivery finds it here and changes
-- nothing. `failed` messages may be redelivered and processed again.
CREATE TABLE clerk_webhook_events (
    svix_id TEXT PRIMARY KEY,
    event_type TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    received_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 1
);
