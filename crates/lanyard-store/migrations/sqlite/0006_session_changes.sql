-- The session change feed. A replica trusts a runner session from memory for longer than 2 s
-- only while it follows this feed: every change that alters what a cached session holds (the
-- session, its scopes, their connections, its team, the team's primary user) writes a row here,
-- by trigger, so no write path can forget to. Each replica reads the rows after the last it saw
-- and forgets what they name: one session (by its runner lookup, for a change to the session or
-- its scopes) or every session of a team. Creating a session writes nothing (no replica holds
-- it yet). Rows older than an hour are pruned.
CREATE TABLE session_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id BLOB NOT NULL,
    -- Set when the change is to one session alone.
    runner_lookup TEXT,
    changed_ms BIGINT NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE INDEX session_changes_age ON session_changes (changed_ms);

CREATE TRIGGER session_changes_on_session_update AFTER UPDATE ON sessions
BEGIN INSERT INTO session_changes (team_id, runner_lookup) VALUES (NEW.team_id, NEW.runner_lookup); END;
CREATE TRIGGER session_changes_on_session_delete AFTER DELETE ON sessions
BEGIN INSERT INTO session_changes (team_id, runner_lookup) VALUES (OLD.team_id, OLD.runner_lookup); END;

CREATE TRIGGER session_changes_on_scope_update AFTER UPDATE ON session_scopes
BEGIN INSERT INTO session_changes (team_id, runner_lookup) SELECT team_id, runner_lookup FROM sessions WHERE id = NEW.session_id; END;
CREATE TRIGGER session_changes_on_scope_delete AFTER DELETE ON session_scopes
BEGIN INSERT INTO session_changes (team_id, runner_lookup) SELECT team_id, runner_lookup FROM sessions WHERE id = OLD.session_id; END;

CREATE TRIGGER session_changes_on_connection_insert AFTER INSERT ON github_connections
BEGIN INSERT INTO session_changes (team_id) VALUES (NEW.team_id); END;
CREATE TRIGGER session_changes_on_connection_update AFTER UPDATE ON github_connections
BEGIN INSERT INTO session_changes (team_id) VALUES (NEW.team_id); END;
CREATE TRIGGER session_changes_on_connection_delete AFTER DELETE ON github_connections
BEGIN INSERT INTO session_changes (team_id) VALUES (OLD.team_id); END;

-- Not on sessions_created (bumped by every new session) or churn_flagged_at: a session reads
-- neither.
CREATE TRIGGER session_changes_on_team_update
AFTER UPDATE OF id, name, tier, is_test_cohort, external_id, notification_email, created_at ON teams
BEGIN INSERT INTO session_changes (team_id) VALUES (NEW.id); END;
CREATE TRIGGER session_changes_on_team_delete AFTER DELETE ON teams
BEGIN INSERT INTO session_changes (team_id) VALUES (OLD.id); END;

CREATE TRIGGER session_changes_on_user_insert AFTER INSERT ON users
BEGIN INSERT INTO session_changes (team_id) VALUES (NEW.team_id); END;
CREATE TRIGGER session_changes_on_user_update AFTER UPDATE ON users
BEGIN INSERT INTO session_changes (team_id) VALUES (NEW.team_id); END;
CREATE TRIGGER session_changes_on_user_delete AFTER DELETE ON users
BEGIN INSERT INTO session_changes (team_id) VALUES (OLD.team_id); END;
