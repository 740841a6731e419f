//! Notifications delivered over SMTP to a real listener (the testkit's sink), through lettre.

use chrono::Duration;
use lanyard_core::{Tier, Worker};
use lanyard_testkit::smtp::SmtpSink;

use crate::*;

async fn smtp_world(sink: &SmtpSink) -> World {
    let url = sink.url();
    world_with(move |b| {
        b.env("LANYARD_SMTP_URL", &url)
            .env("LANYARD_SMTP_FROM", "Lanyard <noreply@lanyard.test>")
    })
    .await
}

#[tokio::test]
async fn each_notification_goes_out_once_to_the_teams_address_with_its_id_as_message_id() {
    let sink = SmtpSink::start().await;
    let w = smtp_world(&sink).await;
    let with_address = w.team("Ops", Tier::Anonymous, false).await;
    let plain = w.team("Plain", Tier::Anonymous, false).await;
    let r = w
        .app
        .patch("/v1/me")
        .bearer_auth(&with_address.api_key)
        .json(&serde_json::json!({"notification_email": "ops@ops.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["notification_email"], "ops@ops.test");
    let r = w
        .app
        .patch("/v1/me")
        .bearer_auth(&plain.api_key)
        .json(&serde_json::json!({"notification_email": "not an address"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // One live session is the anonymous tier's whole limit: both teams are nudged.
    w.session(&with_address, 3600).await;
    w.session(&plain, 3600).await;
    assert_eq!(w.run(Worker::QuotaNudge).await.done, 2);
    assert_eq!(w.run(Worker::QuotaNudge).await.done, 0, "one a day");
    assert_eq!(w.run(Worker::NotificationDelivery).await.done, 2);
    assert_eq!(w.run(Worker::NotificationDelivery).await.done, 0);

    let received = sink.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    for (team, address) in [
        (&with_address, "ops@ops.test".to_string()),
        (&plain, plain.email.clone()),
    ] {
        let listed = notifications(&w.app, team).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["kind"], "quota_nudge");
        assert_eq!(listed[0]["status"], "sent");
        assert!(listed[0]["sent_at"].is_string());
        let id = listed[0]["id"].as_str().unwrap();
        let message_id = format!("<{id}@lanyard.test>");
        let mail: Vec<_> = received
            .iter()
            .filter(|m| m.header("Message-ID").as_deref() == Some(message_id.as_str()))
            .collect();
        assert_eq!(mail.len(), 1, "{message_id}");
        assert_eq!(mail[0].to, [address]);
        assert_eq!(mail[0].from, "noreply@lanyard.test");
        assert!(mail[0].data.contains("active agent sessions"));
    }
    let audit = w.app.get_json("/v1/audit", &plain.api_key).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"notification.queued") && kinds.contains(&"notification.sent"));

    // A new day, still at the limit: one more nudge each.
    w.advance(Duration::days(1));
    w.session(&plain, 3600).await;
    assert_eq!(w.run(Worker::QuotaNudge).await.done, 1);
}

#[tokio::test]
async fn a_refused_message_is_retried_after_a_backoff_and_sent_once() {
    let sink = SmtpSink::start().await;
    let w = smtp_world(&sink).await;
    let team = w.team("Acme", Tier::Anonymous, false).await;
    w.session(&team, 3600).await;
    w.run(Worker::QuotaNudge).await;
    sink.fail_next(1);
    assert_eq!(w.run(Worker::NotificationDelivery).await.done, 0);
    assert_eq!(notifications(&w.app, &team).await[0]["status"], "queued");
    assert_eq!(
        w.run(Worker::NotificationDelivery).await.done,
        0,
        "not due again before its backoff"
    );
    w.advance(Duration::seconds(31));
    assert_eq!(w.run(Worker::NotificationDelivery).await.done, 1);
    assert_eq!(sink.received().len(), 1);
    assert_eq!(notifications(&w.app, &team).await[0]["status"], "sent");
    let text = w.app.metrics_text().await;
    for line in [
        r#"lanyard_notifications_total{kind="quota_nudge",result="retry"} 1"#,
        r#"lanyard_notifications_total{kind="quota_nudge",result="sent"} 1"#,
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[tokio::test]
async fn a_message_sent_but_never_marked_is_not_sent_again() {
    let sink = SmtpSink::start().await;
    let w = smtp_world(&sink).await;
    let team = w.team("Acme", Tier::Anonymous, false).await;
    w.session(&team, 3600).await;
    w.run(Worker::QuotaNudge).await;
    let svc = w.app.services();
    // A delivery that claimed the row and sent it, then stopped before the mark.
    let now = w.now();
    let claimed = svc
        .store()
        .claim_notifications(now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let n = &claimed[0];
    svc.mailer()
        .send(n.id, n.recipient.as_deref().unwrap(), &n.subject, &n.body)
        .await
        .unwrap();
    assert_eq!(notifications(&w.app, &team).await[0]["status"], "queued");
    assert_eq!(
        w.run(Worker::NotificationDelivery).await.done,
        0,
        "claimed rows are left alone while their lease lasts"
    );

    // Once the claim runs out, the next run marks it from what the server accepted.
    w.advance(Duration::minutes(6));
    assert_eq!(w.run(Worker::NotificationDelivery).await.done, 1);
    assert_eq!(sink.received().len(), 1, "sent once");
    assert_eq!(notifications(&w.app, &team).await[0]["status"], "sent");
}

#[tokio::test]
async fn a_refresh_that_keeps_failing_at_github_notifies_the_team_once() {
    let w = world().await;
    let team = w.team("Acme", Tier::Pro, false).await;
    let (sid, runner) = w.session(&team, 3600).await;
    w.fake.fail_with(503, None);
    for _ in 0..lanyard_server::broker::REFRESH_FAILURES_TO_NOTIFY + 2 {
        let r = w.app.fetch_credential(&sid, &runner, "").await;
        assert_eq!(r.status(), 503);
        w.advance(Duration::seconds(6));
    }
    let mut waited = 0;
    let listed = loop {
        let listed = notifications(&w.app, &team).await;
        if !listed.is_empty() || waited > 100 {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    };
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["kind"], "refresh_failing");
}

#[tokio::test]
async fn a_message_refused_for_good_or_too_often_is_given_up_as_failed() {
    let sink = SmtpSink::start().await;
    let w = smtp_world(&sink).await;
    let rejected = w.team("Rejected", Tier::Anonymous, false).await;
    w.session(&rejected, 3600).await;
    w.run(Worker::QuotaNudge).await;
    sink.reject_next(1);
    assert_eq!(w.run(Worker::NotificationDelivery).await.done, 0);
    assert_eq!(
        notifications(&w.app, &rejected).await[0]["status"],
        "failed"
    );
    w.advance(Duration::days(1));
    assert_eq!(
        w.run(Worker::NotificationDelivery).await.done,
        0,
        "a failed notification is never tried again"
    );

    let flaky = w.team("Flaky", Tier::Anonymous, false).await;
    w.session(&flaky, 3600).await;
    w.run(Worker::QuotaNudge).await;
    let max = lanyard_server::workers::MAX_ATTEMPTS;
    sink.fail_next(usize::try_from(max).unwrap());
    for attempt in 1..=max {
        assert_eq!(
            notifications(&w.app, &flaky).await[0]["status"],
            "queued",
            "before attempt {attempt}"
        );
        assert_eq!(w.run(Worker::NotificationDelivery).await.done, 0);
        w.advance(Duration::hours(7));
    }
    assert_eq!(notifications(&w.app, &flaky).await[0]["status"], "failed");
    assert!(sink.received().is_empty(), "{:?}", sink.received());
    let text = w.app.metrics_text().await;
    assert!(
        text.contains(r#"lanyard_notifications_total{kind="quota_nudge",result="failed"} 2"#),
        "{text}"
    );
}
