-- Background workers (CONTRACT §12). One row per worker: when it last ran and how it went, when
-- it runs next, and which replica holds the run now. A replica runs a worker only after claiming
-- its row with a conditional UPDATE, so with several replicas each period runs once.
CREATE TABLE worker_runs (
    worker TEXT PRIMARY KEY,
    next_run_at TIMESTAMPTZ NOT NULL,
    last_run_at TIMESTAMPTZ,
    last_result TEXT,
    last_error TEXT,
    -- The start of the last run that succeeded: where the usage meter picks up.
    last_ok_at TIMESTAMPTZ,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ
);

-- When the expiry worker ended a session that ran out its TTL (its tokens were decided then).
ALTER TABLE sessions ADD COLUMN expired_at TIMESTAMPTZ;
CREATE INDEX sessions_expiring ON sessions (expires_at) WHERE stopped_at IS NULL AND expired_at IS NULL;
CREATE INDEX github_tokens_created ON github_tokens (created_at);

-- Usage per team per UTC day. Each value is recomputed whole from sessions and tokens and only
-- ever raised, so a re-run, a crash mid-run or a second replica never counts twice.
CREATE TABLE usage_days (
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    session_minutes BIGINT NOT NULL DEFAULT 0,
    mints BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, day)
);

-- Set once when the churn scorer flags the team.
ALTER TABLE teams ADD COLUMN churn_flagged_at TIMESTAMPTZ;

-- The notification outbox. dedupe_key makes "once a day" and "once per PAT and expiry" a
-- constraint, not a hope; the id is the message's Message-ID.
CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('quota_nudge', 'refresh_failing', 'pat_expiring', 'churn_risk')),
    dedupe_key TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'undeliverable', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- A delivery in progress: no other replica takes the row until this passes.
    lease_until TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX notifications_team ON notifications (team_id, created_at);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'queued';
