-- Credentials renewed with a refresh token (issue 19, for CONTRACT §14's OAuth providers).
--
-- A connection keeps its refresh token sealed, with a generation that every rotation bumps: a
-- refresh commits the rotated token only over the generation it read, so a second replica that
-- refreshed with the old token cannot overwrite the newer one.
--
-- A stored token is bound either to an installation (a GitHub App's, shared by the team's
-- connections to it) or to the one connection it was refreshed for. SQLite cannot drop a NOT
-- NULL, so the table is rebuilt; nothing references it.
ALTER TABLE github_connections ADD COLUMN refresh_ciphertext BLOB;
ALTER TABLE github_connections ADD COLUMN refresh_generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE github_tokens_next (
    id BLOB PRIMARY KEY NOT NULL,
    team_id BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    cache_key TEXT NOT NULL,
    host TEXT NOT NULL,
    installation_id BIGINT,
    connection_id BLOB,
    ciphertext BLOB NOT NULL,
    repositories TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((installation_id IS NULL) <> (connection_id IS NULL))
);
INSERT INTO github_tokens_next (id, team_id, cache_key, host, installation_id, connection_id,
    ciphertext, repositories, permissions, created_at, expires_at, revoked_at)
    SELECT id, team_id, cache_key, host, installation_id, NULL, ciphertext, repositories,
        permissions, created_at, expires_at, revoked_at FROM github_tokens;
DROP TABLE github_tokens;
ALTER TABLE github_tokens_next RENAME TO github_tokens;
CREATE INDEX github_tokens_cache_key ON github_tokens (cache_key, expires_at);
CREATE INDEX github_tokens_created ON github_tokens (created_at);
CREATE INDEX github_tokens_live ON github_tokens (cache_key, expires_at) WHERE revoked_at IS NULL;
CREATE INDEX github_tokens_connection ON github_tokens (connection_id) WHERE connection_id IS NOT NULL;
