//! The fake answers as GitLab documents: PAT details and expiry by date, namespaces only to
//! members, scopes enforced on the API and on git, OAuth tokens for the API and for git as
//! `oauth2`, with real git clients.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use lanyard_core::{Clock, ManualClock};
use lanyard_fake_gitlab::{FakeGitlab, FakePat};
use lanyard_fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use serde_json::Value;

async fn start() -> (FakeGitlab, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .unwrap()
            .to_utc(),
    ));
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let fake = FakeGitlab::start(clock_dyn).await;
    fake.add_user("alice", Some("alice@example.test"));
    fake.add_user("mallory", None);
    fake.add_group("acme", &["alice"]);
    fake.add_group("acme/platform", &[]);
    fake.add_group("other", &["mallory"]);
    (fake, clock)
}

fn pat(user: &str, scopes: &[&str], expires_at: Option<&str>) -> FakePat {
    FakePat {
        user: user.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at: expires_at.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        revoked: false,
    }
}

async fn api(fake: &FakeGitlab, path: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", fake.api_url))
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `git ls-remote` against `url` as `user`/`password`, off the runtime's thread (the fake
/// answers on it): whether it was let in.
async fn ls_remote(url: &str, user: &str, password: &str) -> bool {
    let (url, user, password) = (url.to_string(), user.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || ls_remote_now(&url, &user, &password))
        .await
        .unwrap()
}

fn ls_remote_now(url: &str, user: &str, password: &str) -> bool {
    let (scheme, rest) = url.split_once("://").unwrap();
    let with_credentials = format!("{scheme}://{user}:{password}@{rest}");
    let out = std::process::Command::new("git")
        .args(["ls-remote", &with_credentials])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .current_dir(Path::new("/"))
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("refs/heads/main")
}

#[tokio::test]
async fn a_pat_shows_its_scopes_and_dies_at_midnight_utc_of_its_date() {
    let (fake, clock) = start().await;
    fake.add_pat(
        "glpat-a",
        pat(
            "alice",
            &["read_api", "read_repository"],
            Some("2026-12-09"),
        ),
    );
    let (status, body) = api(&fake, "/personal_access_tokens/self", "glpat-a").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["scopes"],
        serde_json::json!(["read_api", "read_repository"])
    );
    assert_eq!(body["expires_at"], "2026-12-09");
    clock.advance(chrono::Duration::hours(35) + chrono::Duration::minutes(59));
    assert_eq!(
        api(&fake, "/personal_access_tokens/self", "glpat-a")
            .await
            .0,
        200
    );
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(
        api(&fake, "/personal_access_tokens/self", "glpat-a")
            .await
            .0,
        401
    );
    fake.add_pat("glpat-b", pat("alice", &["api"], None));
    fake.revoke_pat("glpat-b");
    assert_eq!(
        api(&fake, "/personal_access_tokens/self", "glpat-b")
            .await
            .0,
        401
    );
    assert_eq!(
        api(&fake, "/personal_access_tokens/self", "nope").await.0,
        401
    );
}

#[tokio::test]
async fn namespaces_are_shown_to_members_of_them_or_a_parent_and_need_an_api_scope() {
    let (fake, _) = start().await;
    fake.add_pat("glpat-a", pat("alice", &["read_api"], None));
    fake.add_pat("glpat-m", pat("mallory", &["api"], None));
    fake.add_pat("glpat-git", pat("alice", &["read_repository"], None));
    let (status, body) = api(&fake, "/namespaces/acme%2Fplatform", "glpat-a").await;
    assert_eq!(
        (status, body["full_path"].as_str()),
        (200, Some("acme/platform"))
    );
    assert_eq!(
        api(&fake, "/namespaces/acme%2Fplatform", "glpat-m").await.0,
        404
    );
    assert_eq!(api(&fake, "/namespaces/nowhere", "glpat-a").await.0, 404);
    let (status, body) = api(&fake, "/namespaces/acme", "glpat-git").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, body) = api(&fake, "/user", "glpat-a").await;
    assert_eq!((status, body["username"].as_str()), (200, Some("alice")));
    // A user's own namespace is theirs alone.
    let (status, body) = api(&fake, "/namespaces/alice", "glpat-a").await;
    assert_eq!((status, body["kind"].as_str()), (200, Some("user")));
    assert_eq!(api(&fake, "/namespaces/mallory", "glpat-a").await.0, 404);
}

#[tokio::test]
async fn git_serves_members_with_a_git_scope_and_oauth_tokens_only_as_oauth2() {
    let (fake, _) = start().await;
    let url = fake.add_project("acme/platform", "widgets");
    fake.add_pat("glpat-git", pat("alice", &["read_repository"], None));
    fake.add_pat("glpat-api", pat("alice", &["read_api"], None));
    fake.add_pat("glpat-m", pat("mallory", &["api"], None));
    assert!(ls_remote(&url, "anyone", "glpat-git").await);
    assert!(
        !ls_remote(&url, "anyone", "glpat-api").await,
        "no git scope"
    );
    assert!(!ls_remote(&url, "mallory", "glpat-m").await, "not a member");
    // An OAuth token, through the authorization code flow.
    let redirect = "http://127.0.0.1:9/cb";
    fake.oauth.allow_redirect_uri(redirect);
    fake.oauth.set_account("alice", "alice@example.test");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorized = client
        .get(format!("{}/oauth/authorize", fake.web_url))
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "read_api read_repository"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    let location = authorized.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let query: HashMap<String, String> = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let tokens: Value = client
        .post(format!("{}/oauth/token", fake.web_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", redirect),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["expires_in"], 7200, "GitLab's tokens live two hours");
    assert!(ls_remote(&url, "oauth2", access).await);
    assert!(
        !ls_remote(&url, "alice", access).await,
        "an OAuth token goes with oauth2"
    );
    let (status, body) = api(&fake, "/user", access).await;
    assert_eq!(
        (status, body["email"].as_str()),
        (401, None),
        "PRIVATE-TOKEN is for PATs"
    );
    let by_bearer: Value = client
        .get(format!("{}/user", fake.api_url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_bearer["email"], "alice@example.test");
    let (served, refused) = fake.git_counts();
    assert!(served >= 2, "{served}");
    assert_eq!(refused, 3, "one for each refusal above");
}
