//! Every rejection path answers with the envelope of CONTRACT §5.

use lanyard_core::Tier;
use lanyard_testkit::{expect_error, TestApp};

#[tokio::test]
async fn unknown_route_is_a_404_envelope() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/v1", "/v1/me/extra", "/internal/e2e/account"] {
        let r = app.get(path).send().await.unwrap();
        expect_error(r, "not_found", &app.public_url()).await;
    }
}

#[tokio::test]
async fn wrong_method_is_a_405_envelope() {
    let app = TestApp::spawn().await;
    let r = app.post("/healthz").send().await.unwrap();
    assert!(r.headers().get("allow").is_some());
    expect_error(r, "method_not_allowed", &app.public_url()).await;
    let r = app.client.put(app.url("/v1/me")).send().await.unwrap();
    expect_error(r, "method_not_allowed", &app.public_url()).await;
}

#[tokio::test]
async fn body_rejections_are_envelopes() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Bodies", Tier::Free).await;
    let post = || app.post("/v1/api-keys").bearer_auth(&team.api_key);
    let url = app.public_url();

    let r = post()
        .header("content-type", "application/json")
        .body("{\"label\": ")
        .send()
        .await
        .unwrap();
    expect_error(r, "invalid_body", &url).await;

    let r = post()
        .header("content-type", "application/json")
        .body("{\"label\": 42}")
        .send()
        .await
        .unwrap();
    let body = expect_error(r, "invalid_body", &url).await;
    assert!(
        body["message"].as_str().unwrap().contains("label"),
        "{body}"
    );

    let r = post()
        .header("content-type", "application/json")
        .body("{\"labl\": \"x\"}")
        .send()
        .await
        .unwrap();
    let body = expect_error(r, "invalid_body", &url).await;
    assert!(body["message"].as_str().unwrap().contains("labl"), "{body}");

    let r = post()
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(r, "unsupported_media_type", &url).await;
    let r = post().send().await.unwrap();
    expect_error(r, "unsupported_media_type", &url).await;

    let huge = format!("{{\"label\": \"{}\"}}", "x".repeat(200 * 1024));
    let r = post()
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_error(r, "payload_too_large", &url).await;

    let r = post()
        .json(&serde_json::json!({"label": "\u{7}bell"}))
        .send()
        .await
        .unwrap();
    expect_error(r, "invalid_label", &url).await;

    // None of the rejected calls created a key.
    let r = app
        .get("/v1/api-keys")
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    let keys: serde_json::Value = r.json().await.unwrap();
    assert_eq!(keys["api_keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn query_rejections_are_envelopes() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Queries", Tier::Free).await;
    for q in [
        "limit=abc",
        "limit=0",
        "limit=201",
        "before=xyz",
        "before=-4",
    ] {
        let r = app
            .get(&format!("/v1/audit?{q}"))
            .bearer_auth(&team.api_key)
            .send()
            .await
            .unwrap();
        let body = expect_error(r, "invalid_query", &app.public_url()).await;
        if q == "limit=abc" {
            // The message names the parameter.
            assert!(
                body["message"].as_str().unwrap().contains("limit"),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn malformed_ids_in_paths_are_404() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Paths", Tier::Free).await;
    let r = app
        .delete("/v1/api-keys/not-a-uuid")
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &app.public_url()).await;
}

#[tokio::test]
async fn request_id_is_echoed_when_plain_and_replaced_when_not() {
    let app = TestApp::spawn().await;
    let r = app
        .get("/nope")
        .header("x-request-id", "ci-run-42_a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "ci-run-42_a");
    let body = expect_error(r, "not_found", &app.public_url()).await;
    assert_eq!(body["request_id"], "ci-run-42_a");

    let r = app
        .get("/healthz")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 32);
}

#[tokio::test]
async fn database_outage_is_a_503_with_retry_after_not_a_500() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Outage", Tier::Free).await;
    app.store().close().await;
    let r = app
        .get("/v1/me")
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    let body = expect_error(r, "service_unavailable", &app.public_url()).await;
    assert!(body["retry_after_seconds"].as_u64().unwrap() > 0);
}
