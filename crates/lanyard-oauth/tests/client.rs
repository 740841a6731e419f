//! The client against the fake authorization server: the code exchange with PKCE, refreshes
//! and their errors told apart, revocation, and every bound.

use std::sync::Arc;

use lanyard_core::{Clock, ManualClock};
use lanyard_fake_oauth::{FakeOauth, Options, CLIENT_ID, CLIENT_SECRET};
use lanyard_oauth::{OauthClient, OauthError, Pkce};
use secrecy::{ExposeSecret, SecretString};

const REDIRECT: &str = "http://127.0.0.1:9/v1/oauth/callback";

async fn start(options: Options) -> FakeOauth {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
    let fake = FakeOauth::start_with(clock, options).await;
    fake.allow_redirect_uri(REDIRECT);
    fake
}

fn client(fake: &FakeOauth) -> OauthClient {
    let secret = SecretString::from(CLIENT_SECRET);
    OauthClient::new(&fake.token_url, Some(&fake.revoke_url), CLIENT_ID, secret).unwrap()
}

/// A code from the fake's authorization endpoint, for `pkce`'s challenge.
async fn code(fake: &FakeOauth, pkce: &Pkce) -> String {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&fake.authorize_url)
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("state", "s"),
            ("scope", "openid email"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&location).unwrap();
    let (_, code) = url.query_pairs().find(|(k, _)| k == "code").unwrap();
    code.into_owned()
}

#[tokio::test]
async fn a_code_is_exchanged_with_its_verifier_and_refreshed_as_it_rotates() {
    let fake = start(Options::default()).await;
    let client = client(&fake);
    let pkce = Pkce::new();
    assert_eq!(pkce.verifier.expose_secret().len(), 43);
    let wrong = Pkce::new();
    let refused = client
        .exchange_code(&code(&fake, &pkce).await, REDIRECT, Some(&wrong.verifier))
        .await;
    assert!(
        matches!(refused, Err(OauthError::InvalidGrant { .. })),
        "{refused:?}"
    );
    let tokens = client
        .exchange_code(&code(&fake, &pkce).await, REDIRECT, Some(&pkce.verifier))
        .await
        .unwrap();
    assert_eq!(tokens.expires_in, Some(3600));
    assert_eq!(tokens.scope.as_deref(), Some("openid email"));
    let first_refresh = tokens.refresh_token.unwrap();
    let next = client.refresh(&first_refresh).await.unwrap();
    let rotated = next.refresh_token.unwrap();
    assert_ne!(rotated.expose_secret(), first_refresh.expose_secret());
    // The one before is spent: the grant is told apart from every other refusal.
    match client.refresh(&first_refresh).await {
        Err(OauthError::InvalidGrant { description }) => {
            assert!(description.contains("rotated"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    assert!(client.refresh(&rotated).await.is_ok());
}

#[tokio::test]
async fn failures_are_told_apart_and_no_token_is_shown() {
    let fake = start(Options::default()).await;
    let good = client(&fake);
    let pkce = Pkce::new();
    let tokens = good
        .exchange_code(&code(&fake, &pkce).await, REDIRECT, Some(&pkce.verifier))
        .await
        .unwrap();
    let refresh = tokens.refresh_token.as_ref().unwrap();
    let shown = format!("{tokens:?} {pkce:?} {good:?}");
    assert!(!shown.contains(refresh.expose_secret()), "{shown}");
    assert!(
        !shown.contains(tokens.access_token.expose_secret()),
        "{shown}"
    );
    assert!(!shown.contains(pkce.verifier.expose_secret()), "{shown}");
    // A provider that is down: retry later.
    fake.fail_token_endpoint(503, Some(1));
    let down = good.refresh(refresh).await;
    assert!(
        matches!(down, Err(OauthError::Unavailable { .. })),
        "{down:?}"
    );
    // A wrong client secret: configuration, not the grant.
    let wrong = OauthClient::new(&fake.token_url, None, CLIENT_ID, "nope".into()).unwrap();
    let misconfigured = wrong.refresh(refresh).await;
    assert!(
        matches!(misconfigured, Err(OauthError::ClientRejected { .. })),
        "{misconfigured:?}"
    );
    assert_eq!(
        wrong.revoke(refresh).await,
        Ok(false),
        "no revocation endpoint"
    );
    // Nobody listening: unavailable, not a hang.
    let gone = OauthClient::new("http://127.0.0.1:9/token", None, CLIENT_ID, "x".into()).unwrap();
    let unreachable = gone.refresh(refresh).await;
    assert!(
        matches!(unreachable, Err(OauthError::Unavailable { .. })),
        "{unreachable:?}"
    );
    // A provider that stalls past the bound: unavailable, in the bound's time.
    fake.delay_token_endpoint(std::time::Duration::from_secs(5));
    let short = OauthClient::with_timeout(
        &fake.token_url,
        None,
        CLIENT_ID,
        CLIENT_SECRET.into(),
        std::time::Duration::from_millis(200),
    )
    .unwrap();
    match short.refresh(refresh).await {
        Err(OauthError::Unavailable { message, .. }) => assert_eq!(message, "timed out"),
        other => panic!("{other:?}"),
    }
    fake.clear_failures();
    // Revoked: the grant is gone, and the error says so.
    assert_eq!(good.revoke(refresh).await, Ok(true));
    assert!(matches!(
        good.refresh(refresh).await,
        Err(OauthError::InvalidGrant { .. })
    ));
}

#[tokio::test]
async fn an_answer_longer_than_the_bound_is_not_read_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let body = format!(
            "{{\"access_token\":\"{}\",\"token_type\":\"Bearer\"}}",
            "a".repeat(lanyard_oauth::MAX_ANSWER)
        );
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(body.as_bytes()).await;
    });
    let url = format!("http://{addr}/token");
    let greedy = OauthClient::new(&url, None, CLIENT_ID, "x".into()).unwrap();
    match greedy.refresh(&"r".into()).await {
        Err(OauthError::Malformed(why)) => assert!(why.contains("longer than"), "{why}"),
        other => panic!("{other:?}"),
    }
}
