//! Metrics, the rate window, hidden routes and the backstop sweep.

use crate::*;

#[tokio::test]
async fn metrics_count_each_outcome_with_the_contract_labels() {
    let (app, t) = enabled().await;
    create(&app, &t, None).await;
    create(&app, &t, Some(serde_json::json!({"tier": "growth"}))).await;
    create(&app, "wrong", None).await;
    let real = app.create_team("Real", Tier::Free).await;
    reap(&app, &t, &real.id.to_string()).await;
    reap(&app, &t, &uuid::Uuid::new_v4().to_string()).await;
    let text = app.metrics_text().await;
    for line in [
        r#"lanyard_e2e_account_total{op="create",result="ok"} 1"#,
        r#"lanyard_e2e_account_total{op="create",result="bad_request"} 1"#,
        r#"lanyard_e2e_account_total{op="create",result="unauthorized"} 1"#,
        r#"lanyard_e2e_account_total{op="reap",result="not_test_cohort"} 1"#,
        r#"lanyard_e2e_account_total{op="reap",result="ok"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    let allowed = [
        "ok",
        "unauthorized",
        "bad_request",
        "not_test_cohort",
        "rate_limited",
        "error",
    ];
    for line in text
        .lines()
        .filter(|l| l.starts_with("lanyard_e2e_account_total{"))
    {
        let result = line
            .split("result=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(allowed.contains(&result), "{line}");
    }
}

#[tokio::test]
async fn the_window_covers_create_and_reap_and_answers_429() {
    let (app, t) = enabled().await;
    for i in 0..120 {
        let r = if i % 10 == 0 {
            create(&app, &t, None).await
        } else {
            reap(&app, &t, &uuid::Uuid::new_v4().to_string()).await
        };
        assert_eq!(r.status(), 200, "call {i} is within the window");
    }
    let body = expect_error(
        create(&app, &t, None).await,
        "rate_limited",
        &app.public_url(),
    )
    .await;
    assert!(
        body["retry_after_seconds"].as_u64().unwrap() > 3000,
        "the window is an hour"
    );
    expect_error(
        reap(&app, &t, &uuid::Uuid::new_v4().to_string()).await,
        "rate_limited",
        &app.public_url(),
    )
    .await;
    let text = app.metrics_text().await;
    assert!(text.contains(r#"lanyard_e2e_account_total{op="reap",result="rate_limited"} 1"#));
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(
        create(&app, &t, None).await.status(),
        200,
        "the window slid"
    );
}

#[tokio::test]
async fn hidden_routes_are_served_but_not_documented() {
    let (app, t) = enabled().await;
    let doc: serde_json::Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (method, path, reason) in lanyard_server::http::routes::HIDDEN_ROUTES {
        assert!(!reason.is_empty());
        assert!(
            doc["paths"][*path][method.to_lowercase()].is_null(),
            "{method} {path} is hidden"
        );
        let url = app.url(&path.replace("{team_id}", &uuid::Uuid::new_v4().to_string()));
        let r = app
            .client
            .request(method.parse().unwrap(), url)
            .header("x-e2e-token", &t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method} {path} is routed");
    }
}

#[tokio::test]
async fn the_backstop_sweep_reaps_only_stale_test_teams() {
    use lanyard_core::Worker;
    use lanyard_server::workers::{run_now, tick, Ticked};
    let (app, t) = enabled().await;
    let real = app.create_team("Old customer", Tier::Free).await;
    let stale: serde_json::Value =
        create(&app, &t, Some(serde_json::json!({"with_resources": true})))
            .await
            .json()
            .await
            .unwrap();
    app.clock.advance(chrono::Duration::minutes(121));
    let fresh: serde_json::Value = create(&app, &t, None).await.json().await.unwrap();

    match tick(Worker::TestCohortSweep, app.services()).await {
        Ticked::Ran(report) => assert_eq!(report.done, 1),
        other => panic!("{other:?}"),
    }
    let id = |v: &serde_json::Value| {
        v["team_id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .unwrap()
    };
    assert!(
        app.store().get_team(id(&stale)).await.unwrap().is_none(),
        "stale test team reaped"
    );
    assert!(
        app.store().get_team(id(&fresh)).await.unwrap().is_some(),
        "young test team kept"
    );
    assert!(
        app.store().get_team(real.id).await.unwrap().is_some(),
        "real teams are never swept"
    );
    let audit = app.store().list_audit(id(&stale), 10, None).await.unwrap();
    assert_eq!(audit[0].kind, "e2e.account.reaped");
    assert_eq!(audit[0].actor, "sweep", "the sweep audits as itself");
    assert_eq!(
        run_now(Worker::TestCohortSweep, app.services())
            .await
            .unwrap()
            .done,
        0,
        "idempotent"
    );
    let text = app.metrics_text().await;
    assert!(
        text.contains(r#"lanyard_worker_runs_total{worker="test_cohort_sweep",result="ok"}"#),
        "{text}"
    );
}
