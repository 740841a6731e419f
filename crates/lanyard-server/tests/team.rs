//! The team surface: audit log, API keys, persistence, and secrets at rest.

use lanyard_core::Tier;
use lanyard_testkit::{dump_text, TestApp};

#[tokio::test]
async fn audit_is_newest_first_and_pages_with_a_cursor() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Audit", Tier::Free).await;
    for label in ["one", "two", "three"] {
        let r = app
            .post("/v1/api-keys")
            .bearer_auth(&team.api_key)
            .json(&serde_json::json!({"label": label}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let all: serde_json::Value = app.get_json("/v1/audit", &team.api_key).await;
    let events = all["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "api_key.created",
            "api_key.created",
            "api_key.created",
            "api_key.created",
            "team.created"
        ]
    );
    assert_eq!(events[0]["data"]["label"], "three");
    assert_eq!(events[0]["actor"], "team", "the actor is a registry kind");
    assert!(events[0]["actor_id"]
        .as_str()
        .unwrap()
        .starts_with("api_key:"));
    assert_eq!(
        events[4]["actor"], "operator",
        "the test team was made as the CLI does"
    );
    assert!(
        all.get("next_cursor").is_none(),
        "one page holds everything"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=2&before={c}"),
            None => "/v1/audit?limit=2".to_string(),
        };
        let page: serde_json::Value = app.get_json(&path, &team.api_key).await;
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<_> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(seen, expected, "pages walk the whole log once, in order");
}

#[tokio::test]
async fn a_team_sees_only_its_own_audit_records() {
    let app = TestApp::spawn().await;
    let a = app.create_team("A", Tier::Free).await;
    let b = app.create_team("B", Tier::Free).await;
    app.post("/v1/api-keys")
        .bearer_auth(&b.api_key)
        .json(&serde_json::json!({"label": "b-only"}))
        .send()
        .await
        .unwrap();
    let page: serde_json::Value = app.get_json("/v1/audit", &a.api_key).await;
    let text = page.to_string();
    assert!(
        !text.contains("b-only") && !text.contains(&b.id.to_string()),
        "{text}"
    );
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn api_key_list_never_shows_secrets() {
    let app = TestApp::spawn().await;
    let team = app.create_team("List", Tier::Free).await;
    let created: serde_json::Value = app
        .post("/v1/api-keys")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({"label": "deploy"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = app
        .get("/v1/api-keys")
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("deploy"));
    assert!(!list.contains(created["api_key"].as_str().unwrap()));
    assert!(!list.contains(&team.api_key));
    assert!(!list.contains("lk_"), "{list}");
}

#[tokio::test]
async fn api_key_plaintext_never_reaches_the_database() {
    let app = TestApp::spawn().await;
    let team = app.create_team("AtRest", Tier::Free).await;
    let created: serde_json::Value = app
        .post("/v1/api-keys")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({"label": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = created["api_key"].as_str().unwrap();
    let dump = dump_text(&app.database_url).await;
    assert!(dump.contains("AtRest"), "the dump reads the real data");
    for key in [team.api_key.as_str(), second] {
        // Neither the key nor its secret half (after the lookup id) is stored.
        assert!(!dump.contains(key), "API key stored in plaintext");
        assert!(
            !dump.contains(&key[13..]),
            "secret part stored in plaintext"
        );
    }
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let mut app = TestApp::spawn().await;
    let team = app.create_team("Durable", Tier::HobbyPlus).await;
    let jwt = app.jwt_for(&team);
    app.restart().await;
    let r = app
        .get("/v1/me")
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["team_name"], "Durable");
    assert_eq!(body["tier"], "hobby_plus");
    let r = app.get("/v1/me").bearer_auth(&jwt).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the JWT secret was persisted, so old JWTs stay valid"
    );
    let page: serde_json::Value = app.get_json("/v1/audit", &jwt).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
}
