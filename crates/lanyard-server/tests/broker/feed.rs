//! The session change feed: while a replica follows it, a runner session is trusted from memory
//! past the 2 s it is otherwise trusted, and a change in the feed reaches it within a poll or
//! two; once the feed cannot be read, sessions are read again every 2 s.

use std::time::{Duration, Instant};

use lanyard_store::Dialect;
use lanyard_testkit::{execute_script, TestApp};

use crate::*;

/// Tells "within a poll or two" (about 1 s) and "every 2 s" from "never", on a loaded machine.
const BOUND: Duration = Duration::from_secs(10);

fn feed_reads(metrics: &str, result: &str) -> u64 {
    let prefix = format!(r#"lanyard_session_feed_reads_total{{result="{result}"}} "#);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Polls until the server has read the feed twice since this was called: every change made
/// before has been applied, and the feed is current.
async fn feed_is_current(app: &TestApp) {
    let before = feed_reads(&app.metrics_text().await, "ok");
    let started = Instant::now();
    while feed_reads(&app.metrics_text().await, "ok") < before + 2 {
        assert!(started.elapsed() < BOUND, "the feed was never read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops a session in the database with the feed's trigger removed: a change the server cannot
/// learn of except by reading the session again.
async fn stop_behind_the_feeds_back(app: &TestApp, sid: &str) {
    let d = app.database_url.dialect();
    let drop = match d {
        Dialect::Sqlite => "DROP TRIGGER session_changes_on_session_update",
        Dialect::Postgres => "DROP TRIGGER session_changes_on_sessions ON sessions",
    };
    let id = match d {
        Dialect::Sqlite => format!("X'{}'", uuid::Uuid::parse_str(sid).unwrap().simple()),
        Dialect::Postgres => format!("'{sid}'"),
    };
    execute_script(
        &app.database_url,
        &format!("{drop}; UPDATE sessions SET stopped_at = expires_at WHERE id = {id};"),
    )
    .await;
}

async fn status(w: &World, sid: &str, runner: &str) -> u16 {
    w.app
        .fetch_credential(sid, runner, "")
        .await
        .status()
        .as_u16()
}

/// A world whose feed is current, and a session served once (so cached while it is).
async fn served_session() -> (World, String, String) {
    let w = world().await;
    feed_is_current(&w.app).await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    assert_eq!(status(&w, &sid, &runner).await, 200);
    (w, sid, runner)
}

/// Polls until the session is refused as ended.
async fn until_ended(w: &World, sid: &str, runner: &str, why: &str) {
    let started = Instant::now();
    while status(w, sid, runner).await != 410 {
        assert!(started.elapsed() < BOUND, "{why}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_session_is_trusted_past_two_seconds_while_the_feed_is_followed() {
    let (w, sid, runner) = served_session().await;
    stop_behind_the_feeds_back(&w.app, &sid).await;
    // Past the 2 s a session is trusted without the feed: still served from memory.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        status(&w, &sid, &runner).await,
        200,
        "read again although the feed named no change"
    );
    // A row in the feed for the team: the session is read again, and found stopped.
    let team = match w.app.database_url.dialect() {
        Dialect::Sqlite => format!("X'{}'", w.team.id.simple()),
        Dialect::Postgres => format!("'{}'", w.team.id),
    };
    execute_script(
        &w.app.database_url,
        &format!("INSERT INTO session_changes (team_id) VALUES ({team})"),
    )
    .await;
    until_ended(&w, &sid, &runner, "the feed's change never arrived").await;
}

/// A stop names the one session: the team's other sessions stay trusted from memory.
#[tokio::test]
async fn one_sessions_stop_leaves_the_teams_other_sessions_in_memory() {
    let (w, first, first_runner) = served_session().await;
    let (second, second_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    assert_eq!(status(&w, &second, &second_runner).await, 200);
    let r = w
        .app
        .delete(&format!("/v1/sessions/{first}"))
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(status(&w, &first, &first_runner).await, 410);
    // The stop's row has been read; then the second session changes behind the feed's back.
    feed_is_current(&w.app).await;
    stop_behind_the_feeds_back(&w.app, &second).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        status(&w, &second, &second_runner).await,
        200,
        "another session's stop made this one be read again"
    );
}

#[tokio::test]
async fn without_the_feed_a_session_is_read_again_after_two_seconds() {
    let (w, sid, runner) = served_session().await;
    // The feed cannot be read any more.
    execute_script(
        &w.app.database_url,
        "ALTER TABLE session_changes RENAME TO session_changes_gone",
    )
    .await;
    let started = Instant::now();
    while feed_reads(&w.app.metrics_text().await, "error") == 0 {
        assert!(started.elapsed() < BOUND, "the failed read was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_behind_the_feeds_back(&w.app, &sid).await;
    until_ended(
        &w,
        &sid,
        &runner,
        "a session was trusted while the feed could not be read",
    )
    .await;
}
