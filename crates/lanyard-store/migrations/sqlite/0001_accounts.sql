-- Teams, their users and API keys, and the append-only audit log.
CREATE TABLE teams (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('anonymous', 'free', 'hobby', 'hobby_plus', 'pro', 'team', 'growth')),
    is_test_cohort BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);
CREATE INDEX teams_test_cohort_created ON teams (created_at) WHERE is_test_cohort;

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    team_id BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX users_team_email ON users (team_id, email);
CREATE UNIQUE INDEX users_one_primary_per_team ON users (team_id) WHERE is_primary;

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    team_id BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    lookup TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_keys_team ON api_keys (team_id);

-- No foreign key to teams on purpose: an audit record outlives what it records.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id BLOB,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX audit_events_team_id ON audit_events (team_id, id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
