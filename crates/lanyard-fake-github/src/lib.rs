//! A faithful fake GitHub: a real HTTP server on 127.0.0.1 that
//!
//! - verifies the app JWT (RS256) against the app's public key, its issuer and lifetime;
//! - serves `GET /app`, `GET /app/installations/{id}`, `POST /app/installations/{id}/access_tokens` and
//!   `DELETE /installation/token` under `/api/v3`, minting tokens that expire by its clock;
//! - records every mint and revocation, and can inject failures (a status, for N calls or until
//!   cleared, and a delay);
//! - serves git over smart HTTP from bare repositories through `git http-backend`, only to live,
//!   unrevoked, in-scope tokens (or a registered PAT), answering 401 with `WWW-Authenticate`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use lanyard_core::Clock;
use tempfile::TempDir;

mod api;
mod fixtures;
mod git;
mod users;
pub mod webhooks;

pub use fixtures::{
    app_private_key_path, client_secret_path, webhook_secret_path, write_secrets, SecretFiles,
};

use api::{app, installation, mint, revoke};
pub use git::{create_bare_repo, http_backend};
use git::{create_repo, git};
use users::{exchange, user, user_installations, FakePat, Users};
pub use users::{CLIENT_ID, CLIENT_SECRET};
pub use webhooks::WEBHOOK_SECRET;

pub const APP_ID: u64 = 424_242;
/// The App's URL name: its install page is `{web_url}/apps/lanyard-test/installations/new`.
pub const APP_SLUG: &str = "lanyard-test";

/// One recorded mint.
#[derive(Debug, Clone)]
pub struct MintRecord {
    pub installation_id: u64,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct FakeToken {
    installation: u64,
    owner: String,
    repositories: Option<BTreeSet<String>>,
    expires_at: DateTime<Utc>,
    revoked: bool,
    minted_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone)]
struct Failure {
    status: Option<u16>,
    /// `None`: until cleared.
    remaining: Option<u32>,
    delay: Duration,
}

/// An installation of the App: on whose account, over which repositories.
#[derive(Debug, Clone)]
struct FakeInstallation {
    account: String,
    repos: BTreeSet<String>,
    suspended: bool,
}

struct FakeState {
    clock: Arc<dyn Clock>,
    public_key: DecodingKey,
    token_lifetime: Mutex<Duration>,
    installations: Mutex<HashMap<u64, FakeInstallation>>,
    tokens: Mutex<HashMap<String, FakeToken>>,
    pats: Mutex<HashMap<String, FakePat>>,
    users: Mutex<Users>,
    mints: Mutex<Vec<MintRecord>>,
    revocations: Mutex<Vec<DateTime<Utc>>>,
    failure: Mutex<Failure>,
    /// API calls waiting out the injected delay right now.
    delayed: AtomicU64,
    /// The most API calls ever waiting out the delay at once.
    most_delayed: AtomicU64,
    git_rejections: AtomicU64,
    git_served: AtomicU64,
    repo_root: PathBuf,
}

impl std::fmt::Debug for FakeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeState")
            .field("repo_root", &self.repo_root)
            .finish_non_exhaustive()
    }
}

/// A running fake GitHub. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeGithub {
    pub addr: SocketAddr,
    /// `127.0.0.1:<port>`, as it appears in repo URLs.
    pub host: String,
    /// `http://127.0.0.1:<port>/api/v3`.
    pub api_url: String,
    /// `http://127.0.0.1:<port>`: where users sign in (the OAuth web flow).
    pub web_url: String,
    pub app_id: u64,
    state: Arc<FakeState>,
    _repos: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    /// Starts on a free port. Tokens live one hour unless [`FakeGithub::set_token_lifetime`].
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let repos = TempDir::new().expect("temp dir for repos");
        let state = Arc::new(FakeState {
            clock,
            public_key: DecodingKey::from_rsa_pem(fixtures::APP_PUBLIC_KEY)
                .expect("public key parses"),
            token_lifetime: Mutex::new(Duration::from_secs(3600)),
            installations: Mutex::default(),
            tokens: Mutex::default(),
            pats: Mutex::default(),
            users: Mutex::default(),
            mints: Mutex::default(),
            revocations: Mutex::default(),
            failure: Mutex::default(),
            delayed: AtomicU64::new(0),
            most_delayed: AtomicU64::new(0),
            git_rejections: AtomicU64::new(0),
            git_served: AtomicU64::new(0),
            repo_root: repos.path().to_path_buf(),
        });
        let app = Router::new()
            .route("/api/v3/app", get(app))
            .route("/api/v3/app/installations/{id}", get(installation))
            .route("/api/v3/app/installations/{id}/access_tokens", post(mint))
            .route("/api/v3/installation/token", delete(revoke))
            .route("/api/v3/user", get(user))
            .route("/api/v3/user/installations", get(user_installations))
            .route(
                "/api/v3/user/memberships/orgs/{org}",
                get(users::membership),
            )
            .route("/login/oauth/access_token", post(exchange))
            .fallback(git)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake github");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let host = addr.to_string();
        FakeGithub {
            addr,
            api_url: format!("http://{host}/api/v3"),
            web_url: format!("http://{host}"),
            host,
            app_id: APP_ID,
            state,
            _repos: repos,
            task,
        }
    }

    /// The `https?://host/owner/repo` URL of a repository here.
    pub fn repo_url(&self, owner: &str, repo: &str) -> String {
        format!("http://{}/{owner}/{repo}", self.host)
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self.state.token_lifetime.lock().unwrap() = lifetime;
    }

    /// Registers an installation of the app on `account` with these repositories, creating each
    /// as a bare git repository with one commit.
    pub fn add_installation(&self, id: u64, account: &str, repos: &[&str]) {
        for repo in repos {
            create_repo(&self.state.repo_root, account, repo);
        }
        let repos = repos.iter().map(|r| r.to_ascii_lowercase()).collect();
        self.state.installations.lock().unwrap().insert(
            id,
            FakeInstallation {
                account: account.to_string(),
                repos,
                suspended: false,
            },
        );
    }

    /// Suspends (or resumes) an installation: mints are refused while it is suspended.
    pub fn suspend_installation(&self, id: u64, suspended: bool) {
        if let Some(i) = self.state.installations.lock().unwrap().get_mut(&id) {
            i.suspended = suspended;
        }
    }

    /// Uninstalls the App from an account: the installation is gone and its tokens die.
    pub fn delete_installation(&self, id: u64) {
        self.state.installations.lock().unwrap().remove(&id);
        for t in self.state.tokens.lock().unwrap().values_mut() {
            if t.installation == id {
                t.revoked = true;
            }
        }
    }

    /// Takes a repository out of an installation: tokens can no longer be minted for it.
    pub fn remove_repository(&self, id: u64, repo: &str) {
        if let Some(i) = self.state.installations.lock().unwrap().get_mut(&id) {
            i.repos.remove(&repo.to_ascii_lowercase());
        }
    }

    /// A personal access token that git accepts for every repository of `owner`.
    pub fn add_pat(&self, pat: &str, owner: &str, repos: &[&str]) {
        self.add_pat_expiring(pat, owner, repos, None);
    }

    /// A PAT that expires (fine-grained and expiring tokens): `GET /user` reports the expiry in
    /// `GitHub-Authentication-Token-Expiration`, and nothing accepts it after.
    pub fn add_pat_expiring(
        &self,
        pat: &str,
        owner: &str,
        repos: &[&str],
        expires_at: Option<DateTime<Utc>>,
    ) {
        for repo in repos {
            create_repo(&self.state.repo_root, owner, repo);
        }
        self.state.pats.lock().unwrap().insert(
            pat.to_string(),
            FakePat {
                owner: owner.to_ascii_lowercase(),
                expires_at,
            },
        );
    }

    /// A GitHub user who administers the accounts of these installations (an organization
    /// owner), and so can see them.
    pub fn add_user(&self, login: &str, administered_installations: &[u64]) {
        let accounts = {
            let installations = self.state.installations.lock().unwrap();
            administered_installations
                .iter()
                .filter_map(|id| installations.get(id))
                .map(|i| i.account.to_ascii_lowercase())
                .collect()
        };
        let mut users = self.state.users.lock().unwrap();
        users.admins.insert(login.to_string(), accounts);
        users.visible.insert(
            login.to_string(),
            administered_installations.iter().copied().collect(),
        );
    }

    /// A GitHub user who can see these installations without administering their accounts
    /// (an outside collaborator with read access to one repository, say): GitHub lists them in
    /// `/user/installations` all the same.
    pub fn add_collaborator(&self, login: &str, visible_installations: &[u64]) {
        let mut users = self.state.users.lock().unwrap();
        users.admins.entry(login.to_string()).or_default();
        users.visible.insert(
            login.to_string(),
            visible_installations.iter().copied().collect(),
        );
    }

    /// The user completes GitHub's authorization step: the single-use code GitHub hands to the
    /// App's setup URL.
    pub fn authorize(&self, login: &str) -> String {
        let code = users::random("code_", 20);
        self.state
            .users
            .lock()
            .unwrap()
            .codes
            .insert(code.clone(), (login.to_string(), false));
        code
    }

    /// API calls answer `status` for the next `count` calls (`None`: until [`Self::recover`]).
    pub fn fail_with(&self, status: u16, count: Option<u32>) {
        let mut f = self.state.failure.lock().unwrap();
        f.status = Some(status);
        f.remaining = count;
    }

    /// Every API call waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.state.failure.lock().unwrap().delay = delay;
    }

    /// How many API calls are waiting out the delay now: a test that must act while a call is
    /// at GitHub waits for this instead of guessing how long the call takes to get there.
    pub fn calls_delayed(&self) -> u64 {
        self.state.delayed.load(Ordering::SeqCst)
    }

    /// The most API calls that were ever at GitHub at once (waiting out the delay): how much
    /// concurrency a client really used.
    pub fn most_calls_delayed(&self) -> u64 {
        self.state.most_delayed.load(Ordering::SeqCst)
    }

    pub fn recover(&self) {
        *self.state.failure.lock().unwrap() = Failure::default();
    }

    pub fn mints(&self) -> Vec<MintRecord> {
        self.state.mints.lock().unwrap().clone()
    }

    pub fn mint_count(&self) -> usize {
        self.state.mints.lock().unwrap().len()
    }

    pub fn revocation_count(&self) -> usize {
        self.state.revocations.lock().unwrap().len()
    }

    /// Whether this token is known, unrevoked and unexpired by the fake's clock.
    pub fn token_is_live(&self, token: &str) -> bool {
        let now = self.state.clock.now();
        self.state
            .tokens
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|t| !t.revoked && t.expires_at > now)
    }

    /// Tokens minted and neither revoked nor expired (by the fake's clock).
    pub fn live_token_count(&self) -> usize {
        let now = self.state.clock.now();
        self.state
            .tokens
            .lock()
            .unwrap()
            .values()
            .filter(|t| !t.revoked && t.expires_at > now)
            .count()
    }

    /// Each live token (neither revoked nor expired) with when it was minted.
    pub fn live_tokens(&self) -> Vec<(String, DateTime<Utc>)> {
        let now = self.state.clock.now();
        self.state
            .tokens
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, t)| !t.revoked && t.expires_at > now)
            .map(|(token, t)| (token.clone(), t.minted_at))
            .collect()
    }

    /// Git requests that presented a credential and were refused.
    pub fn git_auth_failures(&self) -> u64 {
        self.state.git_rejections.load(Ordering::SeqCst)
    }

    /// Git requests that were authorised and served.
    pub fn git_requests_served(&self) -> u64 {
        self.state.git_served.load(Ordering::SeqCst)
    }
}
