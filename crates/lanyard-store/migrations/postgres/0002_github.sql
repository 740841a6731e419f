-- GitHub connections, agent sessions with their per-owner scopes, and the token cache.
ALTER TABLE teams ADD COLUMN sessions_created BIGINT NOT NULL DEFAULT 0;

CREATE TABLE github_connections (
    id UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('github_app', 'pat')),
    installation_id BIGINT,
    pat_ciphertext BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, host, owner)
);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    runner_lookup TEXT NOT NULL UNIQUE,
    runner_hash TEXT NOT NULL,
    repos TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    stopped_at TIMESTAMPTZ
);
CREATE INDEX sessions_team_created ON sessions (team_id, created_at);

-- One row per (session, host, owner): the repositories and cache key of that credential.
CREATE TABLE session_scopes (
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    owner TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    repositories TEXT NOT NULL,
    PRIMARY KEY (session_id, host, owner)
);
CREATE INDEX session_scopes_cache_key ON session_scopes (cache_key);

CREATE TABLE github_tokens (
    id UUID PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    cache_key TEXT NOT NULL,
    host TEXT NOT NULL,
    installation_id BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL,
    repositories TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX github_tokens_cache_key ON github_tokens (cache_key, expires_at);
