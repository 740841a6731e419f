//! The session change feed: while a replica follows it, a runner session is trusted from memory
//! past the 2 s it is otherwise trusted, and a change in the feed reaches it within a poll or
//! two; once the feed cannot be read, sessions are read again every 2 s.

use std::time::{Duration, Instant};

use lanyard_store::Dialect;
use lanyard_testkit::{execute_script, uuid_literal, TableLock, TestApp};

use crate::*;

/// Tells "within a poll or two" (about 1 s) and "every 2 s" from "never", on a loaded machine.
const BOUND: Duration = Duration::from_secs(10);

async fn feed_reads(app: &TestApp, result: &str) -> f64 {
    app.metric(&format!(
        r#"lanyard_session_feed_reads_total{{result="{result}"}}"#
    ))
    .await
    .unwrap_or(0.0)
}

/// Polls until the server has read the feed twice since this was called: every change made
/// before has been applied, and the feed is current.
async fn feed_is_current(app: &TestApp) {
    let before = feed_reads(app, "ok").await;
    let started = Instant::now();
    while feed_reads(app, "ok").await < before + 2.0 {
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
    let id = uuid_literal(d, uuid::Uuid::parse_str(sid).unwrap());
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
    let team = uuid_literal(w.app.database_url.dialect(), w.team.id);
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
    w.app.stop_session(&w.team, &first).await;
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
    while feed_reads(&w.app, "error").await == 0.0 {
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

/// Polls until a query waits on `lock`.
async fn until_waiting(lock: &TableLock) {
    let started = Instant::now();
    while lock.waiters().await == 0 {
        assert!(started.elapsed() < BOUND, "no read ever waited on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A session read that overlaps a forgetting (here, the feed naming its team) may hold the state
/// from before that change, so it is served but not kept: the next request reads again. Holds
/// the read mid-way with a lock on the sessions table, so Postgres only.
#[tokio::test]
async fn a_read_overlapping_a_change_is_not_kept() {
    let w = world().await;
    if w.app.database_url.dialect() != Dialect::Postgres {
        eprintln!("SQLite readers never wait on a writer: nothing to hold the read with");
        return;
    }
    feed_is_current(&w.app).await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let app = std::sync::Arc::new(w.app);

    // The first read waits on the lock while the feed names the team.
    let lock = TableLock::take(&app.database_url, "sessions").await;
    let first = {
        let (app, sid, runner) = (app.clone(), sid.clone(), runner.clone());
        tokio::spawn(async move { app.fetch_credential(&sid, &runner, "").await.status() })
    };
    until_waiting(&lock).await;
    execute_script(
        &app.database_url,
        &format!(
            "INSERT INTO session_changes (team_id) VALUES ({})",
            uuid_literal(Dialect::Postgres, w.team.id)
        ),
    )
    .await;
    feed_is_current(&app).await;
    lock.release().await;
    assert_eq!(first.await.unwrap(), 200);

    // Trusted from memory, the next request would not wait on the lock; it reads again.
    let lock = TableLock::take(&app.database_url, "sessions").await;
    let mut second = {
        let (app, sid, runner) = (app.clone(), sid.clone(), runner.clone());
        tokio::spawn(async move { app.fetch_credential(&sid, &runner, "").await.status() })
    };
    tokio::select! {
        status = &mut second => panic!("served from memory ({status:?}) without reading again"),
        () = until_waiting(&lock) => {}
    }
    lock.release().await;
    assert_eq!(second.await.unwrap(), 200);
}
