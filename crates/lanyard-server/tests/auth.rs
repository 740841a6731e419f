//! Authentication (CONTRACT §3): API keys, session JWTs and every way to be refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lanyard_core::{BearerSecret, SecretKind, Tier};
use lanyard_testkit::{expect_error, TestApp, TestTeam};

async fn me(app: &TestApp, credential: &str) -> reqwest::Response {
    app.get("/v1/me")
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
}

fn claims(app: &TestApp, team: &TestTeam) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "uid": team.user_id, "tid": team.id, "email": team.email, "jti": "j1",
        "iat": now, "exp": now + 3600, "aud": app.public_url(),
    })
}

fn sign(app: &TestApp, alg: Algorithm, claims: &serde_json::Value) -> String {
    // The server generated its secret into the data dir on first start.
    let secret = std::fs::read_to_string(app.data_dir.path().join("jwt_secret")).unwrap();
    let secret = secret.trim().as_bytes().to_vec();
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(&secret),
    )
    .unwrap()
}

#[tokio::test]
async fn api_key_authenticates_its_team() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Acme", Tier::Hobby).await;
    let r = me(&app, &team.api_key).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["team_id"], team.id.to_string());
    assert_eq!(body["team_name"], "Acme");
    assert_eq!(body["tier"], "hobby");
    assert_eq!(body["is_test_cohort"], false);
    assert!(body.get("user_id").is_none(), "an API key is not a user");
}

#[tokio::test]
async fn session_jwt_authenticates_its_user() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Jwt", Tier::Pro).await;
    let r = me(&app, &app.jwt_for(&team)).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["user_id"], team.user_id.to_string());
    assert_eq!(body["team_id"], team.id.to_string());
}

#[tokio::test]
async fn missing_and_malformed_credentials_are_401() {
    let app = TestApp::spawn().await;
    let url = app.public_url();
    expect_error(
        app.get("/v1/me").send().await.unwrap(),
        "unauthorized",
        &url,
    )
    .await;
    for header in [
        "Basic dXNlcjpwdw==",
        "Bearer",
        "Bearer ",
        "lk_abc",
        "Token x",
    ] {
        let r = app
            .get("/v1/me")
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        expect_error(r, "unauthorized", &url).await;
    }
    for credential in ["garbage", "a.b.c", "lk_short"] {
        expect_error(me(&app, credential).await, "unauthorized", &url).await;
    }
    // A placeholder pasted from a guide is named as the API key it stands for, not tried as a
    // session token; a runner token cut short is named as one.
    let body = expect_error(me(&app, "lk_...").await, "unauthorized", &url).await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("API key is not well formed") && !message.contains("session token"),
        "{message}"
    );
    let sid = uuid::Uuid::new_v4();
    let r = app
        .get(&format!("/v1/sessions/{sid}/credentials/github"))
        .bearer_auth("lrt_abc")
        .send()
        .await
        .unwrap();
    let body = expect_error(r, "unauthorized", &url).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("runner token is not well formed"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_or_tampered_api_keys_are_401() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Keys", Tier::Free).await;
    let url = app.public_url();
    // Same lookup id, wrong secret: finds the row, fails the constant-time hash check.
    let mut tampered = team.api_key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    expect_error(me(&app, &tampered).await, "unauthorized", &url).await;
    let stranger = BearerSecret::generate(SecretKind::ApiKey);
    expect_error(me(&app, stranger.expose()).await, "unauthorized", &url).await;
    // A runner token is never a team credential.
    let runner = BearerSecret::generate(SecretKind::RunnerToken);
    expect_error(me(&app, runner.expose()).await, "unauthorized", &url).await;
}

#[tokio::test]
async fn revoked_api_key_stops_working() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Revoke", Tier::Free).await;
    let r = app
        .post("/v1/api-keys")
        .bearer_auth(&team.api_key)
        .json(&serde_json::json!({"label": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let second = created["api_key"].as_str().unwrap().to_string();
    assert!(second.starts_with("lk_"));
    assert_eq!(me(&app, &second).await.status(), 200);

    let key_id = created["key_id"].as_str().unwrap();
    let r = app
        .delete(&format!("/v1/api-keys/{key_id}"))
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect_error(me(&app, &second).await, "unauthorized", &app.public_url()).await;
    assert_eq!(
        me(&app, &team.api_key).await.status(),
        200,
        "the other key still works"
    );
    let r = app
        .delete(&format!("/v1/api-keys/{key_id}"))
        .bearer_auth(&team.api_key)
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &app.public_url()).await;
}

#[tokio::test]
async fn jwt_rejections() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Rejections", Tier::Free).await;
    let url = app.public_url();
    let good = claims(&app, &team);
    assert_eq!(
        me(&app, &sign(&app, Algorithm::HS256, &good))
            .await
            .status(),
        200,
        "baseline"
    );

    // alg=none, unsigned.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    for none in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        expect_error(me(&app, &none).await, "unauthorized", &url).await;
    }
    // Another HMAC algorithm with the right key.
    expect_error(
        me(&app, &sign(&app, Algorithm::HS512, &good)).await,
        "unauthorized",
        &url,
    )
    .await;
    // An RS256 header on an HMAC signature (algorithm confusion).
    let hs = sign(&app, Algorithm::HS256, &good);
    let rs_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let confused = format!("{rs_header}.{}", hs.split_once('.').unwrap().1);
    expect_error(me(&app, &confused).await, "unauthorized", &url).await;
    // Tampered payload, original signature.
    let mut evil = good.clone();
    evil["tid"] = serde_json::json!(uuid::Uuid::new_v4());
    let parts: Vec<&str> = hs.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(evil.to_string()),
        parts[2]
    );
    expect_error(me(&app, &tampered).await, "unauthorized", &url).await;
    // Wrong audience.
    let mut other_aud = good.clone();
    other_aud["aud"] = "https://other.example".into();
    expect_error(
        me(&app, &sign(&app, Algorithm::HS256, &other_aud)).await,
        "unauthorized",
        &url,
    )
    .await;
    // Missing exp.
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    expect_error(
        me(&app, &sign(&app, Algorithm::HS256, &no_exp)).await,
        "unauthorized",
        &url,
    )
    .await;
    // Signed with another secret.
    let foreign = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(&[7u8; 32]),
    )
    .unwrap();
    expect_error(me(&app, &foreign).await, "unauthorized", &url).await;
    // A user that does not belong to the claimed team.
    let other = app.create_team("Other", Tier::Free).await;
    let mut cross = good.clone();
    cross["tid"] = serde_json::json!(other.id);
    expect_error(
        me(&app, &sign(&app, Algorithm::HS256, &cross)).await,
        "unauthorized",
        &url,
    )
    .await;
}

#[tokio::test]
async fn jwt_expires_by_the_injected_clock() {
    let app = TestApp::spawn().await;
    let team = app.create_team("Clock", Tier::Free).await;
    let token = app.jwt_for(&team);
    app.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(me(&app, &token).await.status(), 200);
    app.clock.advance(chrono::Duration::minutes(1));
    let body = expect_error(me(&app, &token).await, "unauthorized", &app.public_url()).await;
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn another_teams_key_is_invisible() {
    let app = TestApp::spawn().await;
    let a = app.create_team("A", Tier::Free).await;
    let b = app.create_team("B", Tier::Free).await;
    let r = app
        .post("/v1/api-keys")
        .bearer_auth(&b.api_key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let b_key: serde_json::Value = r.json().await.unwrap();
    let path = format!("/v1/api-keys/{}", b_key["key_id"].as_str().unwrap());
    let r = app
        .delete(&path)
        .bearer_auth(&a.api_key)
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &app.public_url()).await;
    // Still live for B.
    assert_eq!(
        me(&app, b_key["api_key"].as_str().unwrap()).await.status(),
        200
    );
}
