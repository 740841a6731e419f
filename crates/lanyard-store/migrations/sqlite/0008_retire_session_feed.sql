-- The session change feed (0006) is retired (issue 19): a cached runner session is trusted for
-- 2 s and then read again, and the read carries each scope's newest live token, so a revocation
-- on any replica reaches every other within 2 s without a feed to follow. Its triggers go, so no
-- write pays for it, and its table with them.
--
-- The session read gains that token: the newest unrevoked token of a scope, by an index that
-- holds only unrevoked rows.
DROP TRIGGER IF EXISTS session_changes_on_session_update;
DROP TRIGGER IF EXISTS session_changes_on_session_delete;
DROP TRIGGER IF EXISTS session_changes_on_scope_update;
DROP TRIGGER IF EXISTS session_changes_on_scope_delete;
DROP TRIGGER IF EXISTS session_changes_on_connection_insert;
DROP TRIGGER IF EXISTS session_changes_on_connection_update;
DROP TRIGGER IF EXISTS session_changes_on_connection_delete;
DROP TRIGGER IF EXISTS session_changes_on_team_update;
DROP TRIGGER IF EXISTS session_changes_on_team_delete;
DROP TRIGGER IF EXISTS session_changes_on_user_insert;
DROP TRIGGER IF EXISTS session_changes_on_user_update;
DROP TRIGGER IF EXISTS session_changes_on_user_delete;
DROP TABLE IF EXISTS session_changes;
CREATE INDEX github_tokens_live ON github_tokens (cache_key, expires_at) WHERE revoked_at IS NULL;
