//! The schedule, expiry end to end, metering and isolation.

use chrono::Duration;
use lanyard_core::{Tier, Worker};
use lanyard_server::workers::{tick, Ticked};
use lanyard_testkit::execute_script;

use crate::*;

#[tokio::test]
async fn a_sixty_second_session_expires_on_its_own_and_its_token_is_revoked_at_github() {
    let w = world_with(|b| {
        b.with_workers()
            .env("LANYARD_WORKER_SESSION_EXPIRY_INTERVAL", "1s")
    })
    .await;
    let team = w.team("Acme", Tier::Pro, false).await;
    let (sid, runner) = w.session(&team, 60).await;
    let token = w.token(&sid, &runner).await;
    assert!(w.fake.token_is_live(&token));

    w.advance(Duration::seconds(61));
    // The server's own expiry worker notices within a few of its 1 s periods.
    let mut waited = 0;
    while w.fake.token_is_live(&token) {
        assert!(waited < 200, "the token was not revoked within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let session = w
        .app
        .get_json(&format!("/v1/sessions/{sid}"), &team.api_key)
        .await;
    assert_eq!(session["status"], "expired", "{session}");
    let audit = w.app.get_json("/v1/audit", &team.api_key).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"session.expired"), "{kinds:?}");
    assert!(kinds.contains(&"credential.revoked"), "{kinds:?}");
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 410, "an expired session is served no more");
}

#[tokio::test]
async fn expiry_revokes_a_token_only_when_its_last_holder_has_expired() {
    let w = world().await;
    let team = w.team("Acme", Tier::Pro, false).await;
    let (short, short_runner) = w.session(&team, 60).await;
    let (long, long_runner) = w.session(&team, 600).await;
    let token = w.token(&short, &short_runner).await;
    assert_eq!(
        w.token(&long, &long_runner).await,
        token,
        "one shared scope"
    );

    w.advance(Duration::seconds(61));
    assert_eq!(w.run(Worker::SessionExpiry).await.done, 1);
    assert!(
        w.fake.token_is_live(&token),
        "the longer session still holds it"
    );
    assert_eq!(w.run(Worker::SessionExpiry).await.done, 0, "done once");

    w.advance(Duration::seconds(540));
    assert_eq!(w.run(Worker::SessionExpiry).await.done, 1);
    assert!(!w.fake.token_is_live(&token), "its last holder expired");
    assert_eq!(w.fake.revocation_count(), 1);
    // A stopped session is not expired again.
    let (stopped, _) = w.session(&team, 60).await;
    w.app.stop_session(&team, &stopped).await;
    w.advance(Duration::seconds(61));
    assert_eq!(w.run(Worker::SessionExpiry).await.done, 0);
}

#[tokio::test]
async fn a_run_is_claimed_once_per_period_and_admin_workers_lists_it() {
    let w = world().await;
    let svc = w.app.services();
    assert!(matches!(
        tick(Worker::QuotaNudge, svc).await,
        Ticked::Ran(_)
    ));
    assert!(
        matches!(tick(Worker::QuotaNudge, svc).await, Ticked::NotDue),
        "not due again within its period"
    );
    w.advance(Duration::seconds(61));
    assert!(matches!(
        tick(Worker::QuotaNudge, svc).await,
        Ticked::Ran(_)
    ));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(["admin", "workers", "--json"])
        .env("LANYARD_DATA_DIR", w.app.data_dir.path())
        .env("LANYARD_DATABASE_URL", w.app.database_url.expose())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let workers = listed["workers"].as_array().unwrap();
    assert_eq!(workers.len(), Worker::ALL.len());
    let quota = workers
        .iter()
        .find(|r| r["worker"] == "quota_nudge")
        .unwrap();
    assert_eq!(quota["result"], "ok");
    let last: chrono::DateTime<chrono::Utc> = quota["last_run"].as_str().unwrap().parse().unwrap();
    let next: chrono::DateTime<chrono::Utc> = quota["next_run"].as_str().unwrap().parse().unwrap();
    assert_eq!(next - last, Duration::seconds(60), "{quota}");
    let never = workers
        .iter()
        .find(|r| r["worker"] == "churn_score")
        .unwrap();
    assert!(
        never["last_run"].is_null() && never["result"].is_null(),
        "{never}"
    );

    let text = std::process::Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(["admin", "workers"])
        .env("LANYARD_DATA_DIR", w.app.data_dir.path())
        .env("LANYARD_DATABASE_URL", w.app.database_url.expose())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("WORKER"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("quota_nudge") && l.contains(" ok ")),
        "{text}"
    );
}

#[tokio::test]
async fn a_failing_worker_does_not_stop_the_others() {
    let w = world().await;
    let team = w.team("Acme", Tier::Pro, false).await;
    w.session(&team, 600).await;
    w.advance(Duration::minutes(1));
    execute_script(&w.app.database_url, "DROP TABLE usage_days").await;
    let svc = w.app.services();
    for &worker in Worker::ALL {
        let ticked = tick(worker, svc).await;
        match (worker, ticked) {
            (Worker::UsageMeter, Ticked::Failed(cause)) => {
                assert!(cause.contains("usage_days"), "{cause}");
            }
            (Worker::UsageMeter, other) => panic!("the meter should fail: {other:?}"),
            (_, Ticked::Ran(_)) => {}
            (worker, other) => panic!("{worker} should run: {other:?}"),
        }
    }
    let runs = svc.store().worker_runs().await.unwrap();
    assert_eq!(runs.len(), Worker::ALL.len());
    for run in runs {
        let expect = if run.worker == "usage_meter" {
            "error"
        } else {
            "ok"
        };
        assert_eq!(run.last_result.as_deref(), Some(expect), "{run:?}");
    }
    // The failed worker is due again on its next period, not stopped.
    w.advance(Duration::seconds(61));
    assert!(matches!(
        tick(Worker::UsageMeter, svc).await,
        Ticked::Failed(_)
    ));
    let text = w.app.metrics_text().await;
    assert!(
        text.contains(r#"lanyard_worker_runs_total{worker="usage_meter",result="error"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"lanyard_worker_runs_total{worker="session_expiry",result="ok"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn usage_counts_session_minutes_and_mints_per_day_once_however_often_it_runs() {
    let w = world().await;
    // From the next noon (UTC), on a whole minute: a span that crossed midnight would count a
    // begun minute on each day, and 90 minutes from 23:00:30 are rightly 91.
    let today = w.now().date_naive();
    let noon = (today + Duration::days(1))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    w.clock.set(noon);
    let team = w.team("Acme", Tier::Pro, false).await;
    let (sid, runner) = w.session(&team, 7200).await;
    w.token(&sid, &runner).await;
    let start = w.now();
    w.advance(Duration::minutes(90));
    for _ in 0..3 {
        w.run(Worker::UsageMeter).await;
    }
    let from = start.date_naive().format("%Y-%m-%d").to_string();
    let to = w.now().date_naive().format("%Y-%m-%d").to_string();
    let usage = w
        .app
        .get_json(&format!("/v1/usage?from={from}&to={to}"), &team.api_key)
        .await;
    assert_eq!(usage["team_id"], team.id.to_string());
    let days = usage["days"].as_array().unwrap();
    let sum = |field: &str| days.iter().map(|d| d[field].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("session_minutes"), 90, "{usage}");
    assert_eq!(sum("mints"), 1, "{usage}");

    // The session stops at 100 minutes; later runs count it up to there and no further.
    w.advance(Duration::minutes(10));
    w.app.stop_session(&team, &sid).await;
    w.advance(Duration::minutes(30));
    w.run(Worker::UsageMeter).await;
    w.run(Worker::UsageMeter).await;
    let to = w.now().date_naive().format("%Y-%m-%d").to_string();
    let usage = w
        .app
        .get_json(&format!("/v1/usage?from={from}&to={to}"), &team.api_key)
        .await;
    let days = usage["days"].as_array().unwrap();
    let minutes: i64 = days
        .iter()
        .map(|d| d["session_minutes"].as_i64().unwrap())
        .sum();
    assert_eq!(minutes, 100, "{usage}");

    // The default range is the last 30 days, every day listed; bad ranges are 400s.
    let default = w.app.get_json("/v1/usage", &team.api_key).await;
    assert_eq!(default["days"].as_array().unwrap().len(), 30);
    for query in [
        "?from=2026-02-30",
        "?from=2026-03-02&to=2026-03-01",
        "?from=2024-01-01&to=2025-12-31",
        "?to=yesterday",
    ] {
        let r = w
            .app
            .get(&format!("/v1/usage{query}"))
            .bearer_auth(&team.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_query", "{query}");
    }
}
