-- The session change feed. A replica trusts a runner session from memory for longer than 2 s
-- only while it follows this feed: every change that alters what a cached session holds (the
-- session, its scopes, their connections, its team, the team's primary user) writes a row here,
-- by trigger, so no write path can forget to. Each names one session (by its runner lookup, for a
-- change to the session or its scopes) or every session of a team. Creating a session writes
-- nothing (no replica holds it yet). Rows older than an hour are pruned. Needs Postgres 13 or
-- later (pg_current_xact_id, pg_current_snapshot).
--
-- Row numbers are handed out in insert order, not commit order, so a reader cannot resume after
-- the last number it saw. Each row keeps its transaction id instead: a reader resumes from the
-- oldest transaction still running when it last read (every older one had ended, and was seen).
CREATE TABLE session_changes (
    seq BIGSERIAL PRIMARY KEY,
    team_id UUID NOT NULL,
    -- Set when the change is to one session alone.
    runner_lookup TEXT,
    tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    changed_ms BIGINT NOT NULL DEFAULT ((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
);
CREATE INDEX session_changes_tx ON session_changes (tx);
CREATE INDEX session_changes_age ON session_changes (changed_ms);

CREATE FUNCTION session_change_by_team_id() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO session_changes (team_id) VALUES (OLD.team_id);
    ELSE
        INSERT INTO session_changes (team_id) VALUES (NEW.team_id);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION session_change_by_team() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO session_changes (team_id) VALUES (OLD.id);
    ELSE
        INSERT INTO session_changes (team_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION session_change_of_session() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO session_changes (team_id, runner_lookup) VALUES (OLD.team_id, OLD.runner_lookup);
    ELSE
        INSERT INTO session_changes (team_id, runner_lookup) VALUES (NEW.team_id, NEW.runner_lookup);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

-- A scope's session (gone already when a team's deletion cascades: the session's own row is
-- written then).
CREATE FUNCTION session_change_by_session() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO session_changes (team_id, runner_lookup)
        SELECT team_id, runner_lookup FROM sessions WHERE id = OLD.session_id;
    ELSE
        INSERT INTO session_changes (team_id, runner_lookup)
        SELECT team_id, runner_lookup FROM sessions WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER session_changes_on_sessions AFTER UPDATE OR DELETE ON sessions
FOR EACH ROW EXECUTE FUNCTION session_change_of_session();
CREATE TRIGGER session_changes_on_scopes AFTER UPDATE OR DELETE ON session_scopes
FOR EACH ROW EXECUTE FUNCTION session_change_by_session();
CREATE TRIGGER session_changes_on_connections AFTER INSERT OR UPDATE OR DELETE ON github_connections
FOR EACH ROW EXECUTE FUNCTION session_change_by_team_id();
-- Not on sessions_created (bumped by every new session) or churn_flagged_at: a session reads
-- neither.
CREATE TRIGGER session_changes_on_team_update
AFTER UPDATE OF id, name, tier, is_test_cohort, external_id, notification_email, created_at ON teams
FOR EACH ROW EXECUTE FUNCTION session_change_by_team();
CREATE TRIGGER session_changes_on_team_delete AFTER DELETE ON teams
FOR EACH ROW EXECUTE FUNCTION session_change_by_team();
CREATE TRIGGER session_changes_on_users AFTER INSERT OR UPDATE OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION session_change_by_team_id();
