//! Two replicas' workers on one database do nothing twice: each scheduled run is claimed by one,
//! and even runs forced on both at once expire, revoke, meter and email each thing once.

use chrono::Duration;
use lanyard_core::{Tier, Worker};
use lanyard_server::workers::{minutes_by_day, run_now, tick, Ticked};
use lanyard_testkit::smtp::SmtpSink;

use crate::*;

#[tokio::test]
async fn two_replicas_never_expire_revoke_meter_or_email_twice() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let w = world_with(move |b| b.env("LANYARD_SMTP_URL", &url)).await;
    let other = w.app.replica(&[]).await;
    let (a, b) = (w.app.services(), other.services());

    // A scheduled run is claimed by exactly one replica.
    let (x, y) = tokio::join!(tick(Worker::ChurnScore, a), tick(Worker::ChurnScore, b));
    let ran = [&x, &y]
        .iter()
        .filter(|t| matches!(t, Ticked::Ran(_)))
        .count();
    assert_eq!(ran, 1, "{x:?} {y:?}");

    let team = w.team("Acme", Tier::Anonymous, false).await;
    let t0 = w.now();
    let (sid, runner) = w.session(&team, 60).await;
    let token = w.token(&sid, &runner).await;
    w.advance(Duration::seconds(61));
    for _ in 0..3 {
        let (x, y) = tokio::join!(
            run_now(Worker::SessionExpiry, a),
            run_now(Worker::SessionExpiry, b)
        );
        let done = x.unwrap().done + y.unwrap().done;
        assert!(done <= 1, "one replica expires the session");
    }
    assert!(!w.fake.token_is_live(&token));
    assert_eq!(w.fake.revocation_count(), 1, "revoked once");

    let t1 = w.now();
    w.session(&team, 3600).await;
    w.advance(Duration::minutes(10));
    let (x, y) = tokio::join!(
        run_now(Worker::QuotaNudge, a),
        run_now(Worker::QuotaNudge, b)
    );
    assert_eq!(x.unwrap().done + y.unwrap().done, 1, "queued once");
    for _ in 0..3 {
        let (x, y) = tokio::join!(
            run_now(Worker::NotificationDelivery, a),
            run_now(Worker::NotificationDelivery, b)
        );
        x.unwrap();
        y.unwrap();
    }
    assert_eq!(sink.received().len(), 1, "emailed once");

    for _ in 0..3 {
        let (x, y) = tokio::join!(
            run_now(Worker::UsageMeter, a),
            run_now(Worker::UsageMeter, b)
        );
        x.unwrap();
        y.unwrap();
    }
    let expected: i64 = minutes_by_day(t0, t0 + Duration::seconds(60))
        .into_iter()
        .chain(minutes_by_day(t1, w.now()))
        .map(|(_, m)| m)
        .sum();
    let usage = w.app.get_json("/v1/usage", &team.api_key).await;
    let days = usage["days"].as_array().unwrap();
    let minutes: i64 = days
        .iter()
        .map(|d| d["session_minutes"].as_i64().unwrap())
        .sum();
    let mints: i64 = days.iter().map(|d| d["mints"].as_i64().unwrap()).sum();
    assert_eq!(minutes, expected, "metered once: {usage}");
    assert_eq!(mints, 1, "{usage}");
}
