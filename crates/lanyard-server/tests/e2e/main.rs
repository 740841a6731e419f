//! Guarded ephemeral test accounts (CONTRACT §8), the whole matrix.

mod accounts;
mod guard;
mod operations;
mod seed;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lanyard_core::Tier;
use lanyard_testkit::{expect_error, TestApp};

pub(crate) fn token() -> String {
    format!("e2e-{}", uuid::Uuid::new_v4().simple())
}

pub(crate) async fn enabled() -> (TestApp, String) {
    let t = token();
    let app = TestApp::builder()
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &t)
        .spawn()
        .await;
    (app, t)
}

pub(crate) async fn create(
    app: &TestApp,
    t: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = app.post("/internal/e2e/account").header("x-e2e-token", t);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub(crate) async fn reap(app: &TestApp, t: &str, id: &str) -> reqwest::Response {
    app.delete(&format!("/internal/e2e/account/{id}"))
        .header("x-e2e-token", t)
        .send()
        .await
        .unwrap()
}

/// Status, headers (bar request id and date) and body (bar request id) of a response.
pub(crate) async fn shape(r: reqwest::Response) -> (u16, Vec<(String, String)>, serde_json::Value) {
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
