//! The test-cohort guards, walked through the registry: with one real team and one test team set
//! up so that every worker has something to do for both, each worker touches the test team
//! exactly when the registry says it may, and counts its skips when it may not.

use std::collections::BTreeMap;

use chrono::{Duration, SubsecRound};
use lanyard_core::{Tier, Worker};
use lanyard_server::workers::{tick, Ticked};
use lanyard_testkit::execute_script;

use crate::*;

const PATS: [(&str, &str); 3] = [
    (
        "github_pat_11AAAAreal0123456789abcdefghijklmnopqrstu",
        "solo-real",
    ),
    (
        "github_pat_11AAAAtest0123456789abcdefghijklmnopqrstu",
        "solo-test",
    ),
    (
        "github_pat_11AAAAflip0123456789abcdefghijklmnopqrstu",
        "solo-flip",
    ),
];

/// What a worker did: to the real team, to the test team, and the skips it reported.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    real: bool,
    test: bool,
    skipped: u64,
}

async fn kinds(w: &World, team: &lanyard_testkit::TestTeam) -> Vec<String> {
    notifications(&w.app, team)
        .await
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn minutes(w: &World, team: &lanyard_testkit::TestTeam) -> i64 {
    let usage = w.app.get_json("/v1/usage", &team.api_key).await;
    usage["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["session_minutes"].as_i64().unwrap())
        .sum()
}

async fn session_status(w: &World, team: &lanyard_testkit::TestTeam, sid: &str) -> String {
    let s = w
        .app
        .get_json(&format!("/v1/sessions/{sid}"), &team.api_key)
        .await;
    s["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_worker_skips_test_teams_exactly_when_the_registry_says() {
    let w = world().await;
    let real = w.team("Real", Tier::Free, false).await;
    let test = w.team("Test", Tier::Free, true).await;
    // A third real team whose queued notification is later turned into a test team's.
    let flip = w.team("Flipped", Tier::Free, false).await;
    let expires = (w.now() + Duration::days(3)).trunc_subsecs(0);
    for (team, (pat, owner)) in [(&real, PATS[0]), (&test, PATS[1]), (&flip, PATS[2])] {
        w.fake
            .add_pat_expiring(pat, owner, &["notes"], Some(expires));
        let r = w
            .app
            .post("/v1/github/connections")
            .bearer_auth(&team.api_key)
            .json(&serde_json::json!({
                "host": w.fake.host, "owner": owner, "pat": pat,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    // Free allows 3 live sessions: 3 is past 80 %. The first of each ends after a minute.
    let mut first = BTreeMap::new();
    for team in [&real, &test] {
        let (sid, runner) = w.session(team, 60).await;
        w.token(&sid, &runner).await;
        first.insert(team.id, sid);
        w.session(team, 3000).await;
        w.session(team, 3000).await;
    }
    let mut seen: BTreeMap<Worker, Seen> = BTreeMap::new();

    // Through the schedule, so the skip is counted in the metric too.
    let report = match tick(Worker::QuotaNudge, w.app.services()).await {
        Ticked::Ran(report) => report,
        other => panic!("{other:?}"),
    };
    let text = w.app.metrics_text().await;
    assert!(
        text.contains(r#"lanyard_worker_skipped_test_cohort_total{worker="quota_nudge"} 1"#),
        "{text}"
    );
    seen.insert(
        Worker::QuotaNudge,
        Seen {
            real: kinds(&w, &real).await == ["quota_nudge"],
            test: !kinds(&w, &test).await.is_empty(),
            skipped: report.skipped_test,
        },
    );

    w.advance(Duration::seconds(61));
    let report = w.run(Worker::SessionExpiry).await;
    assert_eq!(report.done, 2);
    seen.insert(
        Worker::SessionExpiry,
        Seen {
            real: session_status(&w, &real, &first[&real.id]).await == "expired",
            test: session_status(&w, &test, &first[&test.id]).await == "expired",
            skipped: report.skipped_test,
        },
    );

    let report = w.run(Worker::UsageMeter).await;
    seen.insert(
        Worker::UsageMeter,
        Seen {
            real: minutes(&w, &real).await > 0,
            test: minutes(&w, &test).await > 0,
            skipped: report.skipped_test,
        },
    );

    let report = w.run(Worker::PatExpiryWarning).await;
    seen.insert(
        Worker::PatExpiryWarning,
        Seen {
            real: kinds(&w, &real).await.contains(&"pat_expiring".to_string()),
            test: !kinds(&w, &test).await.is_empty(),
            skipped: report.skipped_test,
        },
    );

    // The flipped team's queued notification must not go out once it is a test team's.
    assert!(kinds(&w, &flip).await.contains(&"pat_expiring".to_string()));
    execute_script(
        &w.app.database_url,
        "UPDATE teams SET is_test_cohort = TRUE WHERE name = 'Flipped'",
    )
    .await;
    let report = w.run(Worker::NotificationDelivery).await;
    let statuses = |list: Vec<serde_json::Value>| -> Vec<String> {
        list.iter()
            .map(|n| n["status"].as_str().unwrap().to_string())
            .collect()
    };
    let real_status = statuses(notifications(&w.app, &real).await);
    let flip_status = statuses(notifications(&w.app, &flip).await);
    seen.insert(
        Worker::NotificationDelivery,
        Seen {
            // No SMTP here: kept, marked undeliverable.
            real: real_status.iter().all(|s| s == "undeliverable") && real_status.len() == 2,
            test: flip_status.iter().any(|s| s != "queued"),
            skipped: report.skipped_test,
        },
    );

    w.advance(Duration::days(15));
    let report = w.run(Worker::ChurnScore).await;
    seen.insert(
        Worker::ChurnScore,
        Seen {
            real: kinds(&w, &real).await.contains(&"churn_risk".to_string()),
            test: !kinds(&w, &test).await.is_empty(),
            skipped: report.skipped_test,
        },
    );
    assert_eq!(w.run(Worker::ChurnScore).await.done, 0, "flagged once");

    let report = w.run(Worker::TestCohortSweep).await;
    seen.insert(
        Worker::TestCohortSweep,
        Seen {
            real: false,
            test: w.app.store().get_team(test.id).await.unwrap().is_none(),
            skipped: report.skipped_test,
        },
    );
    assert!(
        w.app.store().get_team(real.id).await.unwrap().is_some(),
        "the sweep never touches a real team"
    );

    for &worker in Worker::ALL {
        let s = seen
            .get(&worker)
            .unwrap_or_else(|| panic!("{worker} was not exercised"));
        if worker.skips_test_cohort() {
            assert!(s.real, "{worker} did its work for the real team: {s:?}");
            assert!(!s.test, "{worker} must skip the test team: {s:?}");
            assert!(s.skipped >= 1, "{worker} counted its skip: {s:?}");
        } else {
            assert!(s.test, "{worker} cleans test teams up: {s:?}");
        }
    }
}
