//! The client against the fake GitLab: a PAT's details and missing scopes, namespaces by full
//! path (a subgroup's slash encoded), the user, and each failure told apart.

use std::sync::Arc;

use chrono::NaiveDate;
use lanyard_core::{Clock, ManualClock};
use lanyard_fake_gitlab::{FakeGitlab, FakePat};
use lanyard_gitlab::{GitlabClient, GitlabError, Token};
use secrecy::SecretString;

async fn start() -> FakeGitlab {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
    let fake = FakeGitlab::start(clock).await;
    fake.add_user("alice", Some("alice@example.test"));
    fake.add_group("acme", &["alice"]);
    fake.add_group("acme/platform", &[]);
    fake.add_group("other", &[]);
    fake
}

fn pat(scopes: &[&str], expires_at: Option<NaiveDate>) -> FakePat {
    FakePat {
        user: "alice".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at,
        revoked: false,
    }
}

#[tokio::test]
async fn a_pat_is_described_and_its_missing_scopes_named() {
    let fake = start().await;
    let day = NaiveDate::from_ymd_opt(2031, 5, 1).unwrap();
    fake.add_pat(
        "glpat-full",
        pat(&["read_api", "read_repository"], Some(day)),
    );
    fake.add_pat("glpat-git", pat(&["write_repository"], None));
    fake.add_pat("glpat-api", pat(&["api"], None));
    let client = GitlabClient::new(&format!("{}/", fake.api_url)).unwrap();
    let full = client.pat_self(&"glpat-full".into()).await.unwrap();
    assert!(full.active && full.missing_scopes().is_empty());
    assert_eq!(
        full.ends_at().unwrap().to_rfc3339(),
        "2031-05-01T00:00:00+00:00"
    );
    let git_only = client.pat_self(&"glpat-git".into()).await.unwrap();
    assert_eq!(git_only.missing_scopes(), ["read_repository", "read_api"]);
    let api = client.pat_self(&"glpat-api".into()).await.unwrap();
    assert!(api.missing_scopes().is_empty(), "api covers both");
    fake.revoke_pat("glpat-api");
    let refused = client.pat_self(&"glpat-api".into()).await;
    assert_eq!(refused, Err(GitlabError::Unauthorized));
}

#[tokio::test]
async fn namespaces_and_users_and_each_failure() {
    let fake = start().await;
    fake.add_pat("glpat-a", pat(&["read_api"], None));
    fake.add_pat("glpat-git", pat(&["read_repository"], None));
    let client = GitlabClient::new(&fake.api_url).unwrap();
    let token: SecretString = "glpat-a".into();
    let found = client
        .namespace(Token::Pat(&token), "acme/platform")
        .await
        .unwrap();
    assert_eq!(found.full_path, "acme/platform");
    let hidden = client.namespace(Token::Pat(&token), "other").await;
    assert_eq!(hidden, Err(GitlabError::NotFound));
    let git: SecretString = "glpat-git".into();
    let scoped = client.namespace(Token::Pat(&git), "acme").await;
    assert_eq!(scoped, Err(GitlabError::InsufficientScope));
    let me = client.user(Token::Pat(&token)).await.unwrap();
    assert_eq!(
        (me.username.as_str(), me.email.as_deref()),
        ("alice", Some("alice@example.test"))
    );
    // GitLab takes a PAT as a Bearer too.
    assert!(client.user(Token::Oauth(&token)).await.is_ok());
    // A token no GitLab issues is refused as GitLab would, never sent as a broken header.
    let broken: SecretString = "glpat-a\r\nX-Injected: 1".into();
    assert_eq!(
        client.user(Token::Pat(&broken)).await,
        Err(GitlabError::Unauthorized)
    );
    let shown = format!("{:?}", Token::Pat(&token));
    assert!(!shown.contains("glpat"), "{shown}");
    let gone = GitlabClient::new("http://127.0.0.1:9/api/v4").unwrap();
    let unreachable = gone.user(Token::Pat(&token)).await;
    assert!(
        matches!(unreachable, Err(GitlabError::Unavailable { .. })),
        "{unreachable:?}"
    );
}
