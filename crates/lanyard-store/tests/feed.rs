//! The session change feed: the triggers write a row for each change a cached runner session
//! depends on, and none for what it does not read; on Postgres a change that commits after a
//! later-numbered one is still found. On SQLite always, and on Postgres when
//! `TEST_DATABASE_URL` is set.

use lanyard_store::testing::{count, databases_under_test, execute_script, uuid_literal as uuid};
use lanyard_store::{Dialect, FeedCursor, SessionChanges, Store};
use sqlx::Connection;
use tempfile::TempDir;
use uuid::Uuid;

/// A team with a primary user, a connection and a session with one scope, written directly. The
/// session's runner lookup is the team's id, in simple form.
fn seed(d: Dialect, team: Uuid) -> String {
    let t = uuid(d, team);
    let (user, conn, session) = (
        uuid(d, Uuid::new_v4()),
        uuid(d, Uuid::new_v4()),
        uuid(d, Uuid::new_v4()),
    );
    let lookup = team.simple();
    let now = "2026-12-01T00:00:00+00:00";
    format!(
        "INSERT INTO teams (id, name, tier, created_at) VALUES ({t}, 'Feed', 'hobby', '{now}');\n\
         INSERT INTO users (id, team_id, email, is_primary, created_at) \
         VALUES ({user}, {t}, 'dev@feed.test', TRUE, '{now}');\n\
         INSERT INTO github_connections (id, team_id, host, owner, kind, installation_id, created_at) \
         VALUES ({conn}, {t}, 'github.com', 'acme', 'github_app', 1, '{now}');\n\
         INSERT INTO sessions (id, team_id, runner_lookup, runner_hash, repos, permissions, created_at, expires_at) \
         VALUES ({session}, {t}, '{lookup}', 'h', '[]', '{{}}', '{now}', '{now}');\n\
         INSERT INTO session_scopes (session_id, host, owner, cache_key, repositories) \
         VALUES ({session}, 'github.com', 'acme', 'k', '[]');\n"
    )
}

async fn changes_since(store: &Store, cursor: &mut FeedCursor) -> SessionChanges {
    let changes = store.session_changes(cursor).await.unwrap();
    assert!(!changes.overflow);
    changes
}

/// The teams named whole since `cursor`.
async fn changed_since(store: &Store, cursor: &mut FeedCursor) -> Vec<Uuid> {
    changes_since(store, cursor).await.teams
}

#[tokio::test]
async fn every_change_a_session_reads_is_in_the_feed_and_nothing_else() {
    let dir = TempDir::new().unwrap();
    for url in databases_under_test(dir.path()).await {
        let d = url.dialect();
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let (team, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut cursor = store.session_feed_start().await.unwrap();
        // Creating a team, its connection and a session: nobody can hold them yet. (The
        // primary user's insert is a change: a team's user may be added later.)
        execute_script(&url, &seed(d, other)).await;
        execute_script(&url, &seed(d, team)).await;
        let teams = changed_since(&store, &mut cursor).await;
        assert!(
            teams.contains(&team) && teams.contains(&other),
            "{d:?}: the users' inserts: {teams:?}"
        );
        let t = uuid(d, team);
        let none: [&str; 3] = [
            "UPDATE teams SET sessions_created = sessions_created + 1 WHERE id = {t}",
            "UPDATE teams SET churn_flagged_at = '2026-12-01T00:00:00+00:00' WHERE id = {t}",
            "INSERT INTO audit_events (team_id, actor, kind, created_at) VALUES ({t}, 'operator', 'team.updated', '2026-12-01T00:00:00+00:00')",
        ];
        // Counted in the table: on Postgres a read may bring a change again while another
        // transaction (another test's, say) was running when it was made.
        let rows = format!("SELECT COUNT(*) FROM session_changes WHERE team_id = {t}");
        for sql in none {
            let sql = sql.replace("{t}", &t);
            let before = count(&url, &rows).await;
            execute_script(&url, &sql).await;
            assert_eq!(count(&url, &rows).await, before, "{d:?}: {sql}");
        }
        // A change to one session names it alone; one to the team, its connections or its
        // users names the team.
        let lookup = team.simple().to_string();
        let each: [(&str, bool); 8] = [
            ("UPDATE teams SET tier = 'growth' WHERE id = {t}", false),
            ("UPDATE users SET email = 'new@feed.test' WHERE team_id = {t}", false),
            ("UPDATE github_connections SET status = 'suspended' WHERE team_id = {t}", false),
            ("UPDATE session_scopes SET revoked_at = '2026-12-01T00:00:00+00:00' WHERE session_id IN (SELECT id FROM sessions WHERE team_id = {t})", true),
            ("UPDATE sessions SET stopped_at = '2026-12-01T00:00:00+00:00' WHERE team_id = {t}", true),
            ("DELETE FROM session_scopes WHERE session_id IN (SELECT id FROM sessions WHERE team_id = {t})", true),
            ("DELETE FROM github_connections WHERE team_id = {t}", false),
            ("DELETE FROM teams WHERE id = {t}", false),
        ];
        for (sql, one_session) in each {
            let sql = sql.replace("{t}", &t);
            let before = count(&url, &rows).await;
            execute_script(&url, &sql).await;
            assert!(count(&url, &rows).await > before, "{d:?}: {sql}");
            let changes = changes_since(&store, &mut cursor).await;
            if one_session {
                assert!(
                    changes.sessions.contains(&lookup),
                    "{d:?}: {sql}: {changes:?}"
                );
                assert!(!changes.teams.contains(&team), "{d:?}: {sql}: {changes:?}");
            } else {
                assert!(changes.teams.contains(&team), "{d:?}: {sql}: {changes:?}");
            }
        }
        // Pruning keeps what is younger than the mark.
        assert_eq!(store.prune_session_changes(0).await.unwrap(), 0);
        assert!(store.prune_session_changes(i64::MAX).await.unwrap() > 0);
        store.close().await;
    }
}

/// On Postgres rows are numbered as inserted: a transaction that wrote first and commits last
/// must not be skipped by a reader that already saw a later number.
#[tokio::test]
async fn a_change_that_commits_after_a_later_one_is_not_lost() {
    let dir = TempDir::new().unwrap();
    for url in databases_under_test(dir.path()).await {
        let d = url.dialect();
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let (slow, fast) = (Uuid::new_v4(), Uuid::new_v4());
        execute_script(&url, &seed(d, slow)).await;
        execute_script(&url, &seed(d, fast)).await;
        let mut cursor = store.session_feed_start().await.unwrap();
        let _ = changed_since(&store, &mut cursor).await;
        let slow_sql = format!(
            "UPDATE teams SET tier = 'growth' WHERE id = {}",
            uuid(d, slow)
        );
        let fast_sql = format!(
            "UPDATE teams SET tier = 'growth' WHERE id = {}",
            uuid(d, fast)
        );
        match &url {
            url if d == Dialect::Postgres => {
                // The slow change is written first, on its own connection, and left open.
                let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                sqlx::query(&slow_sql).execute(&mut *tx).await.unwrap();
                execute_script(url, &fast_sql).await;
                assert_eq!(changed_since(&store, &mut cursor).await, vec![fast]);
                tx.commit().await.unwrap();
                // Read again from the oldest transaction that was running: the slow change
                // comes, and the fast one, read again, is not applied twice.
                assert_eq!(
                    changed_since(&store, &mut cursor).await,
                    vec![slow],
                    "the change committed last, numbered first, is found once"
                );
                assert_eq!(changed_since(&store, &mut cursor).await, Vec::<Uuid>::new());
            }
            url => {
                // SQLite has one writer at a time: rows commit in number order.
                execute_script(url, &slow_sql).await;
                execute_script(url, &fast_sql).await;
                let mut both = vec![slow, fast];
                both.sort();
                assert_eq!(changed_since(&store, &mut cursor).await, both);
            }
        }
        store.close().await;
    }
}

/// A backlog is taken in one read however many rows it has (a team's deletion writes one per
/// session), and more teams than a read returns make it forget everything.
#[tokio::test]
async fn a_backlog_is_read_at_once_and_too_many_teams_overflow() {
    let dir = TempDir::new().unwrap();
    for url in databases_under_test(dir.path()).await {
        let d = url.dialect();
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let mut cursor = store.session_feed_start().await.unwrap();
        let (busy, quiet) = (Uuid::new_v4(), Uuid::new_v4());
        let mut script = String::new();
        for _ in 0..2_000 {
            script.push_str(&format!(
                "INSERT INTO session_changes (team_id) VALUES ({});\n",
                uuid(d, busy)
            ));
        }
        script.push_str(&format!(
            "INSERT INTO session_changes (team_id) VALUES ({});\n",
            uuid(d, quiet)
        ));
        execute_script(&url, &script).await;
        let teams = changed_since(&store, &mut cursor).await;
        let mut both = vec![busy, quiet];
        both.sort();
        assert_eq!(teams, both, "{d:?}");
        let mut many = String::new();
        for _ in 0..=lanyard_store::FEED_BATCH {
            many.push_str(&format!(
                "INSERT INTO session_changes (team_id) VALUES ({});\n",
                uuid(d, Uuid::new_v4())
            ));
        }
        execute_script(&url, &many).await;
        assert!(
            store.session_changes(&mut cursor).await.unwrap().overflow,
            "{d:?}"
        );
        assert_eq!(
            changed_since(&store, &mut cursor).await,
            Vec::<Uuid>::new(),
            "{d:?}"
        );
        store.close().await;
    }
}
