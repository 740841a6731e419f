//! A faithful fake GitLab: a real HTTP server on 127.0.0.1 that behaves as GitLab documents,
//! for Lanyard's GitLab connections (CONTRACT §14).
//!
//! - API v4: `GET /api/v4/personal_access_tokens/self` (a revoked or expired token is 401),
//!   `GET /api/v4/namespaces/{url-encoded path}` (404 unless the caller is a member of it or of
//!   a parent group) and `GET /api/v4/user`. Callers authenticate with `PRIVATE-TOKEN` or
//!   `Authorization: Bearer` (a PAT or an OAuth access token); API calls need the `api` or
//!   `read_api` scope, else 403 `insufficient_scope`.
//! - OAuth at `/oauth/authorize`, `/oauth/token`, `/oauth/revoke` and `/oauth/userinfo`
//!   ([`lanyard_fake_oauth`], configured as GitLab's: refresh tokens rotate, and a refresh ends
//!   the previous access token; access tokens live two hours).
//! - Git over smart HTTP at `/{namespace path}/{project}.git/...`: user `oauth2` with an OAuth
//!   token, or any user with a PAT; fetching needs `read_repository`, `write_repository` or
//!   `api`, pushing `write_repository` or `api`, and the token's user a member of the project's
//!   namespace or a parent. Else 401 with `WWW-Authenticate`.
//!
//! A PAT's expiry is a date: GitLab ends it at 00:00 UTC of that day, by the injected clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use lanyard_core::Clock;
use lanyard_fake_oauth::{Authority, Options};
use tempfile::TempDir;

mod api;
mod git;

/// A personal access token as GitLab keeps it.
#[derive(Debug, Clone)]
pub struct FakePat {
    pub user: String,
    pub scopes: Vec<String>,
    /// GitLab ends it at 00:00 UTC of this day.
    pub expires_at: Option<NaiveDate>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
struct User {
    id: u64,
    email: Option<String>,
}

#[derive(Debug, Clone)]
struct Namespace {
    id: u64,
    kind: &'static str,
    members: BTreeSet<String>,
}

struct State {
    clock: Arc<dyn Clock>,
    oauth: Authority,
    users: Mutex<HashMap<String, User>>,
    pats: Mutex<HashMap<String, FakePat>>,
    namespaces: Mutex<BTreeMap<String, Namespace>>,
    /// Projects by full path (`group/sub/project`).
    projects: Mutex<BTreeSet<String>>,
    next_id: AtomicU64,
    git_served: AtomicU64,
    git_rejections: AtomicU64,
    repo_root: PathBuf,
}

/// Who a request's token belongs to, and what it may do.
#[derive(Debug, Clone)]
struct Caller {
    user: String,
    scopes: Vec<String>,
}

impl Caller {
    fn may(&self, any_of: &[&str]) -> bool {
        self.scopes.iter().any(|s| any_of.contains(&s.as_str()))
    }
}

impl State {
    /// The caller a token stands for: a live PAT, or a live OAuth access token.
    fn caller(&self, token: &str) -> Option<Caller> {
        let now = self.clock.now();
        if let Some(pat) = self.pats.lock().unwrap().get(token) {
            let expired = pat
                .expires_at
                .is_some_and(|d| now >= d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
            return (!pat.revoked && !expired).then(|| Caller {
                user: pat.user.clone(),
                scopes: pat.scopes.clone(),
            });
        }
        let (account, scopes) = self.oauth.bearer(token)?;
        Some(Caller {
            user: account.sub,
            scopes: scopes.split_whitespace().map(String::from).collect(),
        })
    }

    /// Whether `user` is a member of the namespace at `path` or of a parent group.
    fn member(&self, user: &str, path: &str) -> bool {
        let namespaces = self.namespaces.lock().unwrap();
        let mut at = path;
        loop {
            if namespaces.get(at).is_some_and(|n| n.members.contains(user)) {
                return true;
            }
            match at.rsplit_once('/') {
                Some((parent, _)) => at = parent,
                None => return false,
            }
        }
    }
}

/// A running fake GitLab. Dropping it stops the server.
pub struct FakeGitlab {
    pub addr: SocketAddr,
    /// `127.0.0.1:<port>`, as it appears in repository URLs.
    pub host: String,
    /// `http://127.0.0.1:<port>/api/v4`.
    pub api_url: String,
    /// `http://127.0.0.1:<port>`: the OAuth endpoints live here.
    pub web_url: String,
    /// Its OAuth authorization server: knobs and records.
    pub oauth: Authority,
    state: Arc<State>,
    _repos: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeGitlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitlab")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGitlab {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitlab {
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let repos = TempDir::new().expect("temp dir for repos");
        let oauth = Authority::new(
            clock.clone(),
            Options {
                access_lifetime: Duration::from_secs(2 * 3600),
                rotate_refresh_tokens: true,
                refresh_revokes_previous: true,
                require_pkce: false,
            },
        );
        let state = Arc::new(State {
            clock,
            oauth: oauth.clone(),
            users: Mutex::default(),
            pats: Mutex::default(),
            namespaces: Mutex::default(),
            projects: Mutex::default(),
            next_id: AtomicU64::new(1),
            git_served: AtomicU64::new(0),
            git_rejections: AtomicU64::new(0),
            repo_root: repos.path().to_path_buf(),
        });
        let app = Router::new()
            .route("/api/v4/personal_access_tokens/self", get(api::pat_self))
            .route("/api/v4/namespaces/{id}", get(api::namespace))
            .route("/api/v4/user", get(api::user))
            .fallback(git::git)
            .with_state(state.clone())
            .merge(oauth.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitLab");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let host = addr.to_string();
        Self {
            addr,
            api_url: format!("http://{host}/api/v4"),
            web_url: format!("http://{host}"),
            host,
            oauth,
            state,
            _repos: repos,
            task,
        }
    }

    fn next_id(&self) -> u64 {
        self.state.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// A user, with the email `/user` shows (GitLab shows a user their own), and their own
    /// namespace (`kind: user`).
    pub fn add_user(&self, username: &str, email: Option<&str>) {
        let user = User {
            id: self.next_id(),
            email: email.map(String::from),
        };
        self.state
            .users
            .lock()
            .unwrap()
            .insert(username.into(), user);
        let namespace = Namespace {
            id: self.next_id(),
            kind: "user",
            members: BTreeSet::from([username.to_string()]),
        };
        let path = username.to_ascii_lowercase();
        self.state
            .namespaces
            .lock()
            .unwrap()
            .insert(path, namespace);
    }

    /// A group (or subgroup: `acme/platform`) whose members are `members`.
    pub fn add_group(&self, path: &str, members: &[&str]) {
        let namespace = Namespace {
            id: self.next_id(),
            kind: "group",
            members: members.iter().map(|m| m.to_string()).collect(),
        };
        self.state
            .namespaces
            .lock()
            .unwrap()
            .insert(path.to_ascii_lowercase(), namespace);
    }

    /// A project in `namespace`, as a bare repository with one commit; its URL.
    pub fn add_project(&self, namespace: &str, name: &str) -> String {
        let path = format!("{namespace}/{name}").to_ascii_lowercase();
        lanyard_fake_github::create_bare_repo(&self.state.repo_root, &path);
        self.state.projects.lock().unwrap().insert(path.clone());
        format!("http://{}/{path}", self.host)
    }

    /// A personal access token of `pat.user`.
    pub fn add_pat(&self, token: &str, pat: FakePat) {
        self.state.pats.lock().unwrap().insert(token.into(), pat);
    }

    pub fn revoke_pat(&self, token: &str) {
        if let Some(pat) = self.state.pats.lock().unwrap().get_mut(token) {
            pat.revoked = true;
        }
    }

    /// Git requests served, and refused for their credentials.
    pub fn git_counts(&self) -> (u64, u64) {
        (
            self.state.git_served.load(Ordering::SeqCst),
            self.state.git_rejections.load(Ordering::SeqCst),
        )
    }
}
