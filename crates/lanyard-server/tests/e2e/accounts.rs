//! Creating and reaping test accounts.

use crate::*;

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
    // Without an [e2e_seed] the session has no repositories: its token authenticates (no 401)
    // and fetches nothing.
    let r = app
        .fetch_credential(
            seeded["session_id"].as_str().unwrap(),
            seeded["token"].as_str().unwrap(),
            "",
        )
        .await;
    expect_error(r, "not_found", &app.public_url()).await;
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
