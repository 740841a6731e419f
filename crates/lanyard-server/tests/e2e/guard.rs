//! The guard: inert until configured, and a refusal looks exactly like an unknown route.

use crate::*;

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
