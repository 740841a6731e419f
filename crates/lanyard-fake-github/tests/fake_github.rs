//! The fake GitHub is faithful where Lanyard depends on it: app JWTs are checked, tokens expire
//! by its clock, and revocation is final.

use lanyard_core::github::PermissionSet;
use std::sync::Arc;

fn repo(name: &str) -> lanyard_core::github::RepoName {
    lanyard_core::github::RepoName::parse(name).unwrap()
}

/// An installation id the fake knows.
fn id(n: u64) -> lanyard_core::github::InstallationId {
    n.try_into().unwrap()
}

use lanyard_core::{ManualClock, SystemClock};
use lanyard_fake_github::{app_private_key_path, FakeGithub, APP_ID};
use lanyard_github::{AppCredentials, GithubError, GithubHost, Revocation};

fn client(fake: &FakeGithub, app_id: u64, clock: Arc<dyn lanyard_core::Clock>) -> GithubHost {
    let pem = std::fs::read(app_private_key_path()).unwrap();
    let app = AppCredentials::from_pem(app_id, &pem).unwrap();
    GithubHost::new(&fake.host, &fake.api_url, Some(app), clock).unwrap()
}

#[tokio::test]
async fn app_jwts_are_verified() {
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    fake.add_installation(5, "acme", &["widgets"]);
    let good = client(&fake, APP_ID, Arc::new(SystemClock));
    assert_eq!(
        good.installation(id(5)).await.unwrap().account_login,
        "acme"
    );
    assert_eq!(
        good.app().await.unwrap().id,
        APP_ID,
        "GET /app names the App"
    );
    // Wrong issuer.
    let wrong_app = client(&fake, APP_ID + 1, Arc::new(SystemClock));
    assert!(matches!(
        wrong_app.app().await,
        Err(GithubError::Rejected { status: 401, .. })
    ));
    assert!(matches!(
        wrong_app.installation(id(5)).await,
        Err(GithubError::Rejected { status: 401, .. })
    ));
    // A JWT that expired by the fake's clock.
    let stale_clock = ManualClock::starting_now();
    stale_clock.advance(chrono::Duration::hours(-1));
    let stale = client(&fake, APP_ID, Arc::new(stale_clock));
    assert!(matches!(
        stale.installation(id(5)).await,
        Err(GithubError::Rejected { status: 401, .. })
    ));
    assert!(matches!(
        good.installation(id(6)).await,
        Err(GithubError::Rejected { status: 404, .. })
    ));
}

#[tokio::test]
async fn tokens_expire_and_revoke_and_failures_are_typed() {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(5, "acme", &["widgets"]);
    let gh = client(&fake, APP_ID, Arc::new(clock.clone()));
    let perms = PermissionSet::parse([("contents", "read")]).unwrap();
    let minted = gh.mint(id(5), &[repo("widgets")], &perms).await.unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&minted.token).to_string();
    assert!(token.starts_with("ghs_") && fake.token_is_live(&token));
    assert_eq!(minted.repositories, ["widgets"]);
    assert!(matches!(
        gh.mint(id(5), &[repo("nope")], &perms).await,
        Err(GithubError::Rejected { status: 422, .. })
    ));

    assert_eq!(gh.revoke(&minted.token).await.unwrap(), Revocation::Revoked);
    assert!(!fake.token_is_live(&token));
    assert_eq!(
        gh.revoke(&minted.token).await.unwrap(),
        Revocation::AlreadyDead
    );

    let second = gh.mint(id(5), &[], &perms).await.unwrap();
    clock.advance(chrono::Duration::minutes(61));
    assert!(!fake.token_is_live(secrecy::ExposeSecret::expose_secret(&second.token)));

    fake.fail_with(503, Some(1));
    match gh.mint(id(5), &[], &perms).await {
        Err(GithubError::Unavailable {
            status: Some(503),
            retry_after: Some(2),
            ..
        }) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(
        gh.mint(id(5), &[], &perms).await.is_ok(),
        "the failure was for one call only"
    );
    fake.fail_with(429, Some(1));
    assert!(matches!(
        gh.mint(id(5), &[], &perms).await,
        Err(GithubError::Unavailable {
            status: Some(429),
            ..
        })
    ));
}
