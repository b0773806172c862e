-- Sessions the app refuses before their tokens expire, learned from the issuer's webhooks:
-- an ended, revoked or removed session (`kind` 'session', `subject` its id, the `sid` of its
-- tokens) or a banned user (`kind` 'user', `subject` the user id; tokens issued at or before
-- `not_after`, Unix ms, are refused). Every instance holds the live rows in memory and reads
-- new ones by `seq`; a row is deleted once every token it could refuse has expired
-- (`expires_at`, Unix ms).
CREATE TABLE app_revocations (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_after BIGINT,
    recorded_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX app_revocations_expires ON app_revocations (expires_at);

-- The last `seq` handed out. A writer bumps this one row in its transaction and holds its lock
-- until it commits, so sequence numbers become visible in order and without gaps: a reader
-- that has seen `seq` n has seen every row before it.
CREATE TABLE app_revocation_seq (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO app_revocation_seq (id, seq) VALUES (1, 0);
