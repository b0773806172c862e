-- The audit log: who did what, written in the transaction of the change and chained, each
-- entry carrying the previous entry's hash, so an edited, removed or inserted row breaks the
-- chain at that row (`latchkey audit verify`). Hashes are HMAC-SHA256 under a key derived from
-- the master secret: a database writer without the secret cannot forge a consistent chain.

CREATE TABLE identity_audit_log (
    -- 1, 2, 3, … in chain order, with no gaps.
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    occurred_at BIGINT NOT NULL,
    -- `operator`, `api_key`, `user`, `cli` or `system`, and the operator's or user's id or the
    -- secret key's id.
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    -- What happened: an event type (`user.updated`) or a security action (`password.changed`).
    action TEXT NOT NULL,
    -- Whom it concerns, usually a user id.
    subject_id TEXT,
    -- A JSON object with the particulars; never a secret, token or password.
    detail TEXT NOT NULL,
    ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX identity_audit_log_subject ON identity_audit_log (subject_id, seq);
CREATE INDEX identity_audit_log_time ON identity_audit_log (occurred_at);

-- One row: the chain's last entry (its lock orders writers) and what pruning left behind, so
-- the chain stays verifiable from the first entry kept.
CREATE TABLE identity_audit_head (
    id INTEGER PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    pruned_seq BIGINT NOT NULL,
    pruned_hash TEXT NOT NULL
);
INSERT INTO identity_audit_head (id, last_seq, last_hash, pruned_seq, pruned_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,
        '0000000000000000000000000000000000000000000000000000000000000000');

-- Operators may use the console at /admin; granted only from the command line.
ALTER TABLE identity_users ADD COLUMN operator_at BIGINT;

-- The console's users list pages newest first by (created_at, id), and its overview counts
-- sign-ups per day.
CREATE INDEX identity_users_created ON identity_users (created_at, id);

-- Per-day counts for the console's overview: sign-in failures, lockouts, mail sent and failed
-- (`day` is the UTC day number, Unix ms / 86,400,000).
CREATE TABLE identity_daily_counts (
    day BIGINT NOT NULL,
    metric TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, metric)
);

-- Who was active on each day (a sign-in, or a session in use), for daily active users.
CREATE TABLE identity_daily_active (
    day BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (day, user_id)
);

-- A session an operator opened as someone else (impersonation): the operator's user id. Such a
-- session does not slide; it ends an hour after it began.
ALTER TABLE identity_sessions ADD COLUMN actor_id TEXT;
