//! The fake behaves as the RFCs say a server does, so the tests built on it test Lanyard against
//! what real providers do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lanyard_core::{Clock, ManualClock};
use lanyard_fake_oauth::{FakeOauth, Options, CLIENT_ID, CLIENT_SECRET};
use serde_json::Value;
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:9/v1/oauth/callback";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-long";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start(options: Options) -> (FakeOauth, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let fake = FakeOauth::start_with(clock_dyn, options).await;
    fake.allow_redirect_uri(REDIRECT);
    (fake, clock)
}

/// The redirect's query, after authorizing with `extra` parameters.
async fn authorize(fake: &FakeOauth, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut query = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "s t&ate"),
        ("scope", "openid email"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    let response = client()
        .get(&fake.authorize_url)
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, REDIRECT);
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).unwrap();
    url.query_pairs().into_owned().collect()
}

async fn token(fake: &FakeOauth, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(&fake.token_url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn exchange(fake: &FakeOauth, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    token(fake, &form).await
}

async fn refresh(fake: &FakeOauth, refresh_token: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    token(fake, &form).await
}

async fn userinfo(fake: &FakeOauth, access: &str) -> u16 {
    let response = client()
        .get(&fake.userinfo_url)
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[tokio::test]
async fn the_code_flow_checks_pkce_and_a_code_works_once() {
    let (fake, _) = start(Options::default()).await;
    let query = authorize(&fake, &[]).await;
    assert_eq!(query["state"], "s t&ate");
    let code = &query["code"];
    // A wrong verifier is refused, and the code is not spent by it.
    let (status, body) = exchange(&fake, code, &"x".repeat(43)).await;
    assert_eq!((status, text(&body, "error")), (400, "invalid_grant"));
    let (status, body) = exchange(&fake, code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(text(&body, "token_type"), "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(text(&body, "scope"), "openid email");
    let access = text(&body, "access_token").to_string();
    assert_eq!(userinfo(&fake, &access).await, 200);
    // Used twice: refused, and what it granted is ended.
    let (status, _) = exchange(&fake, code, VERIFIER).await;
    assert_eq!(status, 400);
    assert_eq!(userinfo(&fake, &access).await, 401);
    assert!(!fake.refresh_token_live(text(&body, "refresh_token")));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_rotated_one_is_refused() {
    let options = Options {
        refresh_revokes_previous: true,
        ..Options::default()
    };
    let (fake, _) = start(options).await;
    let query = authorize(&fake, &[]).await;
    let (_, first) = exchange(&fake, &query["code"], VERIFIER).await;
    let (status, second) = refresh(&fake, text(&first, "refresh_token")).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(
        text(&second, "refresh_token"),
        text(&first, "refresh_token")
    );
    // The refresh ended the previous access token, and the old refresh token is spent.
    assert_eq!(userinfo(&fake, text(&first, "access_token")).await, 401);
    assert_eq!(userinfo(&fake, text(&second, "access_token")).await, 200);
    let (status, body) = refresh(&fake, text(&first, "refresh_token")).await;
    assert_eq!((status, text(&body, "error")), (400, "invalid_grant"));
    assert_eq!((fake.refreshes(), fake.invalid_grants()), (1, 1));
}

#[tokio::test]
async fn a_provider_that_keeps_its_refresh_tokens_takes_one_again() {
    let options = Options {
        rotate_refresh_tokens: false,
        ..Options::default()
    };
    let (fake, _) = start(options).await;
    let query = authorize(&fake, &[]).await;
    let (_, first) = exchange(&fake, &query["code"], VERIFIER).await;
    let refresh_token = text(&first, "refresh_token");
    for _ in 0..3 {
        let (status, body) = refresh(&fake, refresh_token).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.get("refresh_token").is_none(),
            "kept, so not sent: {body}"
        );
    }
    // Earlier access tokens live on.
    assert_eq!(userinfo(&fake, text(&first, "access_token")).await, 200);
}

#[tokio::test]
async fn access_tokens_and_codes_expire_by_the_injected_clock() {
    let (fake, clock) = start(Options {
        access_lifetime: Duration::from_secs(7200),
        ..Options::default()
    })
    .await;
    let query = authorize(&fake, &[]).await;
    let (_, body) = exchange(&fake, &query["code"], VERIFIER).await;
    let access = text(&body, "access_token");
    clock.advance(chrono::Duration::seconds(7199));
    assert_eq!(userinfo(&fake, access).await, 200);
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(userinfo(&fake, access).await, 401);
    let in_time = authorize(&fake, &[]).await;
    let late = authorize(&fake, &[]).await;
    clock.advance(chrono::Duration::minutes(10) - chrono::Duration::seconds(1));
    assert_eq!(exchange(&fake, &in_time["code"], VERIFIER).await.0, 200);
    clock.advance(chrono::Duration::seconds(1));
    let (status, body) = exchange(&fake, &late["code"], VERIFIER).await;
    assert_eq!(
        (status, text(&body, "error")),
        (400, "invalid_grant"),
        "a code lives 10 minutes"
    );
}

#[tokio::test]
async fn revoking_any_token_ends_its_grant_and_needs_the_client() {
    let (fake, _) = start(Options::default()).await;
    let query = authorize(&fake, &[]).await;
    let (_, body) = exchange(&fake, &query["code"], VERIFIER).await;
    let (access, refresh_token) = (text(&body, "access_token"), text(&body, "refresh_token"));
    let anonymous = client()
        .post(&fake.revoke_url)
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    for token in [access, "never-issued"] {
        let revoked = client()
            .post(&fake.revoke_url)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
    }
    assert!(!fake.access_token_live(access));
    let (status, _) = refresh(&fake, refresh_token).await;
    assert_eq!(status, 400, "the refresh token went with the access token");
    assert_eq!(fake.revocations(), 1);
}

#[tokio::test]
async fn denials_unknown_redirects_offline_access_and_failures() {
    let (fake, _) = start(Options::default()).await;
    fake.deny_next_authorization();
    let denied = authorize(&fake, &[]).await;
    assert_eq!(
        (denied["error"].as_str(), denied["state"].as_str()),
        ("access_denied", "s t&ate")
    );
    // Never redirected to a URI nobody registered.
    let elsewhere = client()
        .get(&fake.authorize_url)
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "https://evil.test/cb"),
            ("response_type", "code"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 400);
    // Without offline access, no refresh token.
    fake.issue_refresh_tokens(false);
    let query = authorize(&fake, &[]).await;
    let (_, body) = exchange(&fake, &query["code"], VERIFIER).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    // Injected failures, then service again.
    fake.issue_refresh_tokens(true);
    let query = authorize(&fake, &[]).await;
    fake.fail_token_endpoint(503, Some(1));
    let (status, _) = exchange(&fake, &query["code"], VERIFIER).await;
    assert_eq!(status, 503);
    let (status, _) = exchange(&fake, &query["code"], VERIFIER).await;
    assert_eq!(status, 200);
    // The user revokes access at the provider: the grant's tokens all stop working.
    let (_, live) = exchange(&fake, &authorize(&fake, &[]).await["code"], VERIFIER).await;
    fake.revoke_grants_of("user-1");
    assert!(!fake.access_token_live(text(&live, "access_token")));
    let (status, body) = refresh(&fake, text(&live, "refresh_token")).await;
    assert_eq!((status, text(&body, "error")), (400, "invalid_grant"));
    assert_eq!(fake.exchanges(), 3);
}

#[tokio::test]
async fn a_challenge_without_a_method_is_plain() {
    let (fake, _) = start(Options::default()).await;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    // Sent without a method, the challenge is compared as it is (RFC 7636 §4.3): the S256
    // verifier no longer matches it.
    let query = authorize_without_method(&fake, &challenge).await;
    let (status, _) = exchange(&fake, &query["code"], VERIFIER).await;
    assert_eq!(status, 400);
    let query = authorize_without_method(&fake, VERIFIER).await;
    assert_eq!(exchange(&fake, &query["code"], VERIFIER).await.0, 200);
}

async fn authorize_without_method(fake: &FakeOauth, challenge: &str) -> HashMap<String, String> {
    let response = client()
        .get(&fake.authorize_url)
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("code_challenge", challenge),
        ])
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&location).unwrap();
    url.query_pairs().into_owned().collect()
}
