//! The refresh engine on an injected clock, against the real server and the fake GitHub: hours
//! of token life in milliseconds.

use lanyard_core::wire::CredentialSource;
use std::sync::Arc;

use chrono::Duration;
use lanyard_core::{Clock, ManualClock, Tier};
use lanyard_runner::client::{ApiClient, EndCause};
use lanyard_runner::engine::{Engine, EngineError};
use lanyard_runner::policy::Policy;
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::TestApp;
use secrecy::ExposeSecret;

#[tokio::test]
async fn refreshes_by_interval_and_expiry_and_survives_failures() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(3, "acme", &["widgets"]);
    let app = TestApp::builder().clock(&clock).github(&fake).spawn().await;
    let team = app.create_team("Engine", Tier::Pro).await;
    let r = app.connect_installation(&team, &fake.host, "acme", 3).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (sid, runner_token) = app
        .start_session(&team, &[fake.repo_url("acme", "widgets")])
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    let token_file = dir.path().join("token");
    lanyard_testkit::write_private(&token_file, &runner_token);

    let client = ApiClient::new(&app.base_url, &sid, token_file.clone()).unwrap();
    let engine = Engine::start(client, Arc::new(clock.clone()), Policy::default())
        .await
        .unwrap();
    let s = &engine.status()[0];
    let to_next = s.next_refresh - clock.now();
    assert!(
        to_next >= Duration::seconds(54) && to_next <= Duration::seconds(66),
        "interval ± jitter: {to_next}"
    );
    assert_eq!(s.source, CredentialSource::GithubApp);
    let first = engine.token(None, None).await.unwrap();

    // Not due yet: no refresh.
    clock.advance(Duration::seconds(30));
    engine.token(None, None).await.unwrap();
    assert_eq!(engine.status()[0].last_refresh, s.last_refresh);

    // Past the interval: refreshed (the server's cache still holds the same token).
    clock.advance(Duration::seconds(40));
    let again = engine.token(None, None).await.unwrap();
    assert!(engine.status()[0].last_refresh > s.last_refresh);
    assert_eq!(again.token.expose_secret(), first.token.expose_secret());

    // 44 minutes on, the token nears the server's 15 m floor: the refresh brings a new one.
    clock.advance(Duration::minutes(44));
    let renewed = engine.token(None, None).await.unwrap();
    assert_ne!(renewed.token.expose_secret(), first.token.expose_secret());
    assert!(renewed.expires_at.unwrap() - clock.now() >= Duration::minutes(55));
    assert_eq!(fake.mint_count(), 2);

    // git never waits on a due refresh while the token it would get is valid: it gets the
    // current one and the background loop (not running here) is left to refresh.
    clock.advance(Duration::seconds(70));
    let before = engine.status()[0].last_refresh;
    let host = fake.host.clone();
    let git = engine
        .for_git(&host, Some("acme"), Some("http"))
        .await
        .unwrap();
    assert_eq!(git.token.expose_secret(), renewed.token.expose_secret());
    assert_eq!(engine.status()[0].last_refresh, before, "git did not wait");
    // Only over the host's own scheme.
    assert!(matches!(
        engine.for_git(&host, Some("acme"), Some("https")).await,
        Err(EngineError::NoCredential(_))
    ));
    assert!(matches!(
        engine.for_git(&host, Some("acme"), None).await,
        Err(EngineError::NoCredential(_))
    ));

    // A token file caught empty mid-rotation makes refreshes fail: the failure shows in status,
    // backoff applies, and the current token is still served while it is valid.
    std::fs::write(&token_file, "").unwrap();
    let during = engine.token(None, None).await.unwrap();
    assert_eq!(during.token.expose_secret(), renewed.token.expose_secret());
    let s = &engine.status()[0];
    assert_eq!(s.consecutive_failures, 1);
    assert!(
        s.last_error.as_deref().unwrap().contains("is empty"),
        "{s:?}"
    );
    assert!(
        engine.ended().borrow().is_none(),
        "a transient failure ends nothing"
    );
    let backoff = s.next_refresh - clock.now();
    assert!(
        backoff <= Duration::milliseconds(1100),
        "first retry after about 1 s: {backoff}"
    );
    clock.advance(Duration::seconds(2));
    engine.token(None, None).await.unwrap();
    let s = &engine.status()[0];
    assert_eq!(s.consecutive_failures, 2);
    assert!(
        s.next_refresh - clock.now() >= Duration::milliseconds(1800),
        "backoff doubles"
    );

    // Once expired, nothing is served rather than a dead token.
    clock.advance(Duration::hours(2));
    assert!(matches!(
        engine.token(None, None).await,
        Err(EngineError::Expired(_))
    ));

    // The file is fixed: the next attempt recovers.
    std::fs::write(&token_file, &runner_token).unwrap();
    clock.advance(Duration::minutes(2));
    let recovered = engine.token(None, None).await.unwrap();
    assert!(recovered.expires_at.unwrap() > clock.now());
    let s = &engine.status()[0];
    assert_eq!(s.consecutive_failures, 0);
    assert!(s.last_error.is_none());

    // A refused runner token (revoked, or another one) is permanent: the engine ends with the
    // cause, and serves nothing more.
    std::fs::write(
        &token_file,
        "lrt_0000000000000000000000000000000000000000xx",
    )
    .unwrap();
    clock.advance(Duration::minutes(2));
    assert!(matches!(
        engine.token(None, None).await,
        Err(EngineError::Ended(_))
    ));
    let ended = engine.ended().borrow().clone().expect("ended");
    assert_eq!(ended.cause, EndCause::TokenRefused);
    assert_eq!(ended.cause.exit_code(), 5);
    assert!(ended.message.contains("401"), "{}", ended.message);
}

#[tokio::test]
async fn a_session_that_vanishes_ends_the_engine_with_its_own_cause() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(4, "acme", &["widgets"]);
    let app = TestApp::builder().clock(&clock).github(&fake).spawn().await;
    let team = app.create_team("Gone", Tier::Pro).await;
    assert_eq!(
        app.connect_installation(&team, &fake.host, "acme", 4)
            .await
            .status(),
        201
    );
    let repo = [fake.repo_url("acme", "widgets")];
    let (sid, runner_token) = app.start_session(&team, &repo).await;
    let (_, other_token) = app.start_session(&team, &repo).await;
    let dir = tempfile::TempDir::new().unwrap();
    let token_file = dir.path().join("token");
    lanyard_testkit::write_private(&token_file, &runner_token);
    let client = ApiClient::new(&app.base_url, &sid, token_file.clone()).unwrap();
    let engine = Engine::start(client, Arc::new(clock.clone()), Policy::default())
        .await
        .unwrap();
    // Another session's token on this session's route: 404, as if the session were gone.
    std::fs::write(&token_file, &other_token).unwrap();
    clock.advance(Duration::minutes(2));
    assert!(engine.token(None, None).await.is_err());
    let ended = engine.ended().borrow().clone().expect("ended");
    assert_eq!(ended.cause, EndCause::SessionGone);
    assert_eq!(ended.cause.exit_code(), 6);
}

#[tokio::test]
async fn a_pat_is_refreshed_by_interval_only() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_pat(
        "ghp_enginepat000000000000000000000000000",
        "solo",
        &["notes"],
    );
    let app = TestApp::builder().clock(&clock).github(&fake).spawn().await;
    let team = app.create_team("Pat", Tier::Pro).await;
    let r = app.post("/v1/github/connections").bearer_auth(&team.api_key)
        .json(&serde_json::json!({"host": fake.host, "owner": "solo", "pat": "ghp_enginepat000000000000000000000000000"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let (sid, runner_token) = app
        .start_session(&team, &[fake.repo_url("solo", "notes")])
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    lanyard_testkit::write_private(dir.path().join("t"), &runner_token);
    let client = ApiClient::new(&app.base_url, &sid, dir.path().join("t")).unwrap();
    let engine = Engine::start(client, Arc::new(clock.clone()), Policy::default())
        .await
        .unwrap();
    let s = &engine.status()[0];
    assert_eq!(s.source, CredentialSource::Pat);
    assert!(s.expires_at.is_none());
    assert!(s.next_refresh - clock.now() <= Duration::seconds(66));
    clock.advance(Duration::hours(20));
    let h = engine.token(Some(&fake.host), Some("solo")).await.unwrap();
    assert_eq!(
        h.token.expose_secret(),
        "ghp_enginepat000000000000000000000000000"
    );
    assert!(h.expires_at.is_none());
}

#[tokio::test]
async fn a_proxy_answering_404_or_401_ends_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Something in front of Lanyard (an ingress mid-deploy, an auth proxy) answers with its own
    // page, not Lanyard's error envelope.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut statuses = ["404 Not Found", "401 Unauthorized", "410 Gone"]
            .into_iter()
            .cycle();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = "<html>default backend</html>";
            let reply = format!(
                "HTTP/1.1 {}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                statuses.next().unwrap(),
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    let dir = tempfile::TempDir::new().unwrap();
    let token_file = dir.path().join("token");
    lanyard_testkit::write_private(
        &token_file,
        "lrt_0000000000000000000000000000000000000000xx",
    );
    let client = ApiClient::new(&url, "5f1d3b9e-0000-4000-8000-000000000000", token_file).unwrap();
    for _ in 0..3 {
        let e = client.fetch(None, None).await.unwrap_err();
        assert_eq!(e.end_cause(), None, "{e}");
        assert!(e.to_string().contains("proxy"), "{e}");
    }
}
