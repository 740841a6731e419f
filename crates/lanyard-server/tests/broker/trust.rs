//! How long a replica trusts what it holds in memory, on the injected clock (CONTRACT §6: a
//! change is seen on every replica within 2 s). A runner session is read again once 2 s have
//! passed, and that read carries each scope's newest live token, so a token revoked on any
//! replica is dropped within the same 2 s. Nothing here sleeps: the test moves the clock.

use std::time::{Duration, Instant};

use lanyard_server::broker::SESSION_TTL;
use lanyard_store::Dialect;
use lanyard_testkit::{execute_script, uuid_literal, TableLock, TestApp};

use crate::*;

/// How long a test waits for a server task it cannot see (a read reaching a held lock) before
/// it fails.
const BOUND: Duration = Duration::from_secs(10);

/// Stops a session in the database directly, as another replica or tool would: this server
/// learns of it only by reading the session again.
async fn stop_elsewhere(app: &TestApp, sid: &str) {
    let d = app.database_url.dialect();
    let id = uuid_literal(d, uuid::Uuid::parse_str(sid).unwrap());
    execute_script(
        &app.database_url,
        &format!("UPDATE sessions SET stopped_at = expires_at WHERE id = {id};"),
    )
    .await;
}

async fn status(app: &TestApp, sid: &str, runner: &str) -> u16 {
    app.fetch_credential(sid, runner, "")
        .await
        .status()
        .as_u16()
}

/// A world and a session served once (so cached).
async fn served_session() -> (World, String, String) {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    assert_eq!(status(&w.app, &sid, &runner).await, 200);
    (w, sid, runner)
}

/// Just under 2 s, the session read from memory is served; at 2 s it is read again and found
/// stopped. The bound is the contract's, and it is the clock's: no real time passes.
#[tokio::test]
async fn a_change_made_elsewhere_is_seen_when_two_seconds_have_passed() {
    let (w, sid, runner) = served_session().await;
    stop_elsewhere(&w.app, &sid).await;
    let ttl = chrono::Duration::from_std(SESSION_TTL).unwrap();
    w.clock.advance(ttl - chrono::Duration::milliseconds(1));
    assert_eq!(
        status(&w.app, &sid, &runner).await,
        200,
        "read again before its 2 s were up"
    );
    w.clock.advance(chrono::Duration::milliseconds(1));
    assert_eq!(status(&w.app, &sid, &runner).await, 410);
}

/// A stop made through this replica forgets that session at once, and only that one: the
/// team's other sessions stay trusted from memory.
#[tokio::test]
async fn a_local_stop_is_seen_at_once_and_leaves_the_teams_other_sessions_in_memory() {
    let (w, first, first_runner) = served_session().await;
    let (second, second_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    assert_eq!(status(&w.app, &second, &second_runner).await, 200);
    w.app.stop_session(&w.team, &first).await;
    assert_eq!(status(&w.app, &first, &first_runner).await, 410);
    stop_elsewhere(&w.app, &second).await;
    assert_eq!(
        status(&w.app, &second, &second_runner).await,
        200,
        "another session's stop made this one be read again"
    );
}

/// A token revoked through one replica is not served by another that still holds it: a
/// session read there after the revocation finds another live token (or none) and drops it.
/// A session it read before is trusted until its 2 s are up, and then drops it too.
#[tokio::test]
async fn a_token_revoked_on_one_replica_leaves_the_others_within_two_seconds() {
    let (w, first, first_runner) = served_session().await;
    let other = w.app.replica(&[]).await;
    let revoked = credential(&w, &first, &first_runner).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The other replica holds the token, for a second session of the same scope.
    let (second, second_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let r = other.fetch_credential(&second, &second_runner, "").await;
    let held: serde_json::Value = r.json().await.unwrap();
    assert_eq!(held["token"], revoked.as_str());
    // Both sessions stop through this replica: the token is revoked at GitHub.
    w.app.stop_session(&w.team, &second).await;
    w.app.stop_session(&w.team, &first).await;
    assert!(!w.fake.token_is_live(&revoked));
    // A new session of the scope, first read by the other replica after the revocation: it
    // is served a new, live token at once.
    let (third, third_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let r = other.fetch_credential(&third, &third_runner, "").await;
    assert_eq!(r.status(), 200);
    let served: serde_json::Value = r.json().await.unwrap();
    let served = served["token"].as_str().unwrap();
    assert_ne!(
        served, revoked,
        "the other replica served the revoked token"
    );
    assert!(w.fake.token_is_live(served));
}

/// A connection deleted through one replica: another that read the session less than 2 s ago
/// serves its cached answer until then, and refuses it once they are up.
#[tokio::test]
async fn a_deleted_connection_reaches_another_replica_when_its_read_expires() {
    let (w, sid, runner) = served_session().await;
    let other = w.app.replica(&[]).await;
    assert_eq!(status(&other, &sid, &runner).await, 200);
    delete_the_connection(&w).await;
    w.clock
        .advance(chrono::Duration::from_std(SESSION_TTL).unwrap());
    let r = other.fetch_credential(&sid, &runner, "").await;
    expect_error(r, "repo_not_connected", &other.public_url()).await;
}

/// Polls until a query waits on `lock`.
async fn until_waiting(lock: &TableLock) {
    let started = Instant::now();
    while lock.waiters().await == 0 {
        assert!(started.elapsed() < BOUND, "no read ever waited on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A session read that overlaps a forgetting (here, a change to its team through this replica)
/// may hold the state from before that change, so it is served but not kept: the next request
/// reads again. Holds the read mid-way with a lock on the sessions table, so Postgres only.
#[tokio::test]
async fn a_read_overlapping_a_change_is_not_kept() {
    let w = world().await;
    if w.app.database_url.dialect() != Dialect::Postgres {
        eprintln!("SQLite readers never wait on a writer: nothing to hold the read with");
        return;
    }
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let app = std::sync::Arc::new(w.app);

    // The first read waits on the lock while the team changes.
    let lock = TableLock::take(&app.database_url, "sessions").await;
    let first = {
        let (app, sid, runner) = (app.clone(), sid.clone(), runner.clone());
        tokio::spawn(async move { app.fetch_credential(&sid, &runner, "").await.status() })
    };
    until_waiting(&lock).await;
    let r = app
        .patch("/v1/me")
        .bearer_auth(&w.team.api_key)
        .json(&serde_json::json!({"notification_email": "ops@acme.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
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
