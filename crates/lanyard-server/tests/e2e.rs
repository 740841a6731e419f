//! Guarded ephemeral test accounts (CONTRACT §8), the whole matrix.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lanyard_core::Tier;
use lanyard_testkit::{expect_error, TestApp};

fn token() -> String {
    format!("e2e-{}", uuid::Uuid::new_v4().simple())
}

async fn enabled() -> (TestApp, String) {
    let t = token();
    let app = TestApp::builder()
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &t)
        .spawn()
        .await;
    (app, t)
}

async fn create(app: &TestApp, t: &str, body: Option<serde_json::Value>) -> reqwest::Response {
    let mut req = app.post("/internal/e2e/account").header("x-e2e-token", t);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn reap(app: &TestApp, t: &str, id: &str) -> reqwest::Response {
    app.delete(&format!("/internal/e2e/account/{id}"))
        .header("x-e2e-token", t)
        .send()
        .await
        .unwrap()
}

/// Status, headers (bar request id and date) and body (bar request id) of a response.
async fn shape(r: reqwest::Response) -> (u16, Vec<(String, String)>, serde_json::Value) {
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != "x-request-id" && *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    let mut body: serde_json::Value = r.json().await.unwrap();
    body.as_object_mut().unwrap().remove("request_id");
    (status, headers, body)
}

#[tokio::test]
async fn inert_without_a_configured_token() {
    let app = TestApp::spawn().await;
    let unknown = shape(app.post("/internal/e2e/nothing").send().await.unwrap()).await;
    for r in [
        create(&app, "", None).await,
        create(&app, &"x".repeat(40), Some(serde_json::json!({}))).await,
        reap(&app, &"x".repeat(40), &uuid::Uuid::new_v4().to_string()).await,
    ] {
        assert_eq!(shape(r).await, unknown);
    }
}

#[tokio::test]
async fn a_refused_guard_is_indistinguishable_from_an_unknown_route() {
    let (app, t) = enabled().await;
    let unknown = shape(app.post("/internal/e2e/nothing").send().await.unwrap()).await;
    assert_eq!(unknown.0, 404);
    let wrong = format!("{t}x");
    let attempts = vec![
        app.post("/internal/e2e/account").send().await.unwrap(),
        app.post("/internal/e2e/account")
            .header("x-e2e-token", &wrong)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap(),
        app.post("/internal/e2e/account")
            .header("x-e2e-token", &t[..t.len() - 1])
            .send()
            .await
            .unwrap(),
        app.post("/internal/e2e/account")
            .body("{not json")
            .header("content-type", "text/plain")
            .send()
            .await
            .unwrap(),
        app.post("/internal/e2e/account")
            .body("x".repeat(200_000))
            .send()
            .await
            .unwrap(),
        app.get("/internal/e2e/account").send().await.unwrap(),
        app.delete("/internal/e2e/account/not-a-uuid")
            .send()
            .await
            .unwrap(),
        app.delete(&format!("/internal/e2e/account/{}", uuid::Uuid::new_v4()))
            .header("x-e2e-token", &wrong)
            .send()
            .await
            .unwrap(),
        app.client
            .put(app.url("/internal/e2e/account/x"))
            .send()
            .await
            .unwrap(),
    ];
    for r in attempts {
        assert_eq!(shape(r).await, unknown);
    }
    // With the token, a wrong method is still just "no such route".
    let r = app
        .get("/internal/e2e/account")
        .header("x-e2e-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(shape(r).await, unknown);
}

#[tokio::test]
async fn every_allowed_tier_creates_a_test_team_whose_jwt_authenticates() {
    let (app, t) = enabled().await;
    for tier in ["anonymous", "free", "hobby", "hobby_plus", "pro"] {
        let r = create(&app, &t, Some(serde_json::json!({"tier": tier}))).await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["tier"], tier);
        assert_eq!(body["seeded_tokens"], serde_json::json!([]));
        assert_eq!(body["seeded_count"], 0);
        let email = body["email"].as_str().unwrap();
        let (local, _) = email.split_once('@').unwrap();
        let hex = local
            .strip_prefix("e2e-cohort+")
            .expect("e2e-cohort+<hex>@<domain>");
        assert!(
            !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{email}"
        );

        let jwt = body["session_jwt"].as_str().unwrap();
        let payload: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["uid"], body["user_id"]);
        assert_eq!(payload["tid"], body["team_id"]);
        assert_eq!(payload["email"], email);
        assert_eq!(payload["aud"], app.public_url());
        assert!(payload["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(
            payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
            3600
        );
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "HS256");
        let expires: chrono::DateTime<chrono::Utc> =
            body["expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(expires.timestamp(), payload["exp"].as_i64().unwrap());

        let me: serde_json::Value = app.get_json("/v1/me", jwt).await;
        assert_eq!(me["team_id"], body["team_id"]);
        assert_eq!(me["user_id"], body["user_id"]);
        assert_eq!(me["is_test_cohort"], true);
        assert_eq!(me["tier"], tier);
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_named_codes() {
    let (app, t) = enabled().await;
    let url = app.public_url();
    for tier in ["team", "growth"] {
        let r = create(&app, &t, Some(serde_json::json!({"tier": tier}))).await;
        expect_error(r, "tier_not_allowed", &url).await;
    }
    for bad in [
        serde_json::json!({"tier": "platinum"}),
        serde_json::json!({"tier": "Free"}),
        serde_json::json!({"tier": 5}),
    ] {
        expect_error(create(&app, &t, Some(bad)).await, "invalid_tier", &url).await;
    }
    let r = app
        .post("/internal/e2e/account")
        .header("x-e2e-token", &t)
        .body("{\"tier\": ")
        .send()
        .await
        .unwrap();
    expect_error(r, "invalid_body", &url).await;
    let r = app
        .post("/internal/e2e/account")
        .header("x-e2e-token", &t)
        .body("[1]")
        .send()
        .await
        .unwrap();
    expect_error(r, "invalid_body", &url).await;
    // An empty body means free.
    let r = app
        .post("/internal/e2e/account")
        .header("x-e2e-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["tier"], "free");
    expect_error(reap(&app, &t, "not-a-uuid").await, "invalid_team_id", &url).await;
}

#[tokio::test]
async fn with_resources_seeds_a_live_session() {
    let (app, t) = enabled().await;
    let body: serde_json::Value =
        create(&app, &t, Some(serde_json::json!({"with_resources": true})))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(body["seeded_count"], 1);
    let seeded = &body["seeded_tokens"][0];
    assert!(seeded["token"].as_str().unwrap().starts_with("lrt_"));
    let jwt = body["session_jwt"].as_str().unwrap();
    let sessions: serde_json::Value = app.get_json("/v1/sessions", jwt).await;
    assert_eq!(sessions["sessions"][0]["session_id"], seeded["session_id"]);
    assert_eq!(sessions["sessions"][0]["status"], "active");
}

#[tokio::test]
async fn reaping_deletes_test_teams_only_and_keeps_the_audit() {
    let (app, t) = enabled().await;
    let url = app.public_url();
    let real = app.create_team("Customer", Tier::Pro).await;
    let r = reap(&app, &t, &real.id.to_string()).await;
    expect_error(r, "not_test_cohort", &url).await;
    assert_eq!(
        app.get("/v1/me")
            .bearer_auth(&real.api_key)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "untouched"
    );
    let audit = app.store().list_audit(real.id, 100, None).await.unwrap();
    assert!(audit.iter().all(|a| !a.kind.starts_with("e2e.")));

    let body: serde_json::Value =
        create(&app, &t, Some(serde_json::json!({"with_resources": true})))
            .await
            .json()
            .await
            .unwrap();
    let team_id = body["team_id"].as_str().unwrap().to_string();
    let jwt = body["session_jwt"].as_str().unwrap().to_string();
    let r = reap(&app, &t, &team_id).await;
    assert_eq!(r.status(), 200);
    let reaped: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        reaped,
        serde_json::json!({"ok": true, "team_id": team_id, "sessions_stopped": 1, "team_deleted": true})
    );
    expect_error(
        app.get("/v1/me").bearer_auth(&jwt).send().await.unwrap(),
        "unauthorized",
        &url,
    )
    .await;
    let again: serde_json::Value = reap(&app, &t, &team_id).await.json().await.unwrap();
    assert_eq!(
        again,
        serde_json::json!({"ok": true, "team_id": team_id, "already_gone": true})
    );

    let id: uuid::Uuid = team_id.parse().unwrap();
    let kinds: Vec<String> = app
        .store()
        .list_audit(id, 100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("e2e.account.reaped")
    );
    for kind in [
        "e2e.account.created",
        "team.created",
        "session.created",
        "session.stopped",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} survived the reap: {kinds:?}"
        );
    }
}

#[tokio::test]
async fn metrics_count_each_outcome_with_the_contract_labels() {
    let (app, t) = enabled().await;
    create(&app, &t, None).await;
    create(&app, &t, Some(serde_json::json!({"tier": "growth"}))).await;
    create(&app, "wrong", None).await;
    let real = app.create_team("Real", Tier::Free).await;
    reap(&app, &t, &real.id.to_string()).await;
    reap(&app, &t, &uuid::Uuid::new_v4().to_string()).await;
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    use lanyard_server::workers::run_once;
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

    assert_eq!(
        run_once(Worker::TestCohortSweep, app.services())
            .await
            .unwrap(),
        1
    );
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
        run_once(Worker::TestCohortSweep, app.services())
            .await
            .unwrap(),
        0,
        "idempotent"
    );
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"lanyard_worker_runs_total{worker="test_cohort_sweep",result="ok"}"#),
        "{text}"
    );
}
