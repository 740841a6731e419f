//! A faithful fake GitHub: a real HTTP server on 127.0.0.1 that
//!
//! - verifies the app JWT (RS256) against the app's public key, its issuer and lifetime;
//! - serves `GET /app/installations/{id}`, `POST /app/installations/{id}/access_tokens` and
//!   `DELETE /installation/token` under `/api/v3`, minting tokens that expire by its clock;
//! - records every mint and revocation, and can inject failures (a status, for N calls or until
//!   cleared, and a delay);
//! - serves git over smart HTTP from bare repositories through `git http-backend`, only to live,
//!   unrevoked, in-scope tokens (or a registered PAT), answering 401 with `WWW-Authenticate`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lanyard_core::Clock;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

pub const APP_ID: u64 = 424_242;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The app's private key (PKCS#1 PEM), as Lanyard is configured with it.
pub fn app_private_key_path() -> PathBuf {
    fixture("app-key.pem")
}

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
    owner: String,
    repositories: Option<BTreeSet<String>>,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Debug, Default, Clone)]
struct Failure {
    status: Option<u16>,
    /// `None`: until cleared.
    remaining: Option<u32>,
    delay: Duration,
}

struct FakeState {
    clock: Arc<dyn Clock>,
    public_key: DecodingKey,
    token_lifetime: Mutex<Duration>,
    installations: Mutex<HashMap<u64, (String, BTreeSet<String>)>>,
    tokens: Mutex<HashMap<String, FakeToken>>,
    pats: Mutex<HashMap<String, String>>,
    mints: Mutex<Vec<MintRecord>>,
    revocations: Mutex<Vec<DateTime<Utc>>>,
    failure: Mutex<Failure>,
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
        let pem = std::fs::read(fixture("app-key.pub.pem")).expect("public key fixture");
        let repos = TempDir::new().expect("temp dir for repos");
        let state = Arc::new(FakeState {
            clock,
            public_key: DecodingKey::from_rsa_pem(&pem).expect("public key parses"),
            token_lifetime: Mutex::new(Duration::from_secs(3600)),
            installations: Mutex::default(),
            tokens: Mutex::default(),
            pats: Mutex::default(),
            mints: Mutex::default(),
            revocations: Mutex::default(),
            failure: Mutex::default(),
            git_rejections: AtomicU64::new(0),
            git_served: AtomicU64::new(0),
            repo_root: repos.path().to_path_buf(),
        });
        let app = Router::new()
            .route("/api/v3/app/installations/{id}", get(installation))
            .route("/api/v3/app/installations/{id}/access_tokens", post(mint))
            .route("/api/v3/installation/token", delete(revoke))
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
        let names = repos.iter().map(|r| r.to_ascii_lowercase()).collect();
        self.state
            .installations
            .lock()
            .unwrap()
            .insert(id, (account.to_string(), names));
    }

    /// A personal access token that git accepts for every repository of `owner`.
    pub fn add_pat(&self, pat: &str, owner: &str, repos: &[&str]) {
        for repo in repos {
            create_repo(&self.state.repo_root, owner, repo);
        }
        self.state
            .pats
            .lock()
            .unwrap()
            .insert(pat.to_string(), owner.to_ascii_lowercase());
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

    /// Git requests that presented a credential and were refused.
    pub fn git_auth_failures(&self) -> u64 {
        self.state.git_rejections.load(Ordering::SeqCst)
    }

    /// Git requests that were authorised and served.
    pub fn git_requests_served(&self) -> u64 {
        self.state.git_served.load(Ordering::SeqCst)
    }
}

fn run_git(args: &[&str], dir: &Path) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create_repo(root: &Path, owner: &str, repo: &str) {
    let bare = root
        .join(owner.to_ascii_lowercase())
        .join(format!("{}.git", repo.to_ascii_lowercase()));
    if bare.exists() {
        return;
    }
    let work = TempDir::new().expect("work tree");
    run_git(&["init", "-q", "-b", "main"], work.path());
    std::fs::write(work.path().join("README.md"), format!("# {owner}/{repo}\n")).unwrap();
    run_git(&["add", "README.md"], work.path());
    run_git(
        &[
            "-c",
            "user.name=Fake",
            "-c",
            "user.email=fake@example.test",
            "commit",
            "-q",
            "-m",
            "init",
        ],
        work.path(),
    );
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    run_git(
        &["clone", "-q", "--bare", ".", bare.to_str().unwrap()],
        work.path(),
    );
}

fn github_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

/// Applies injected delay and failure; `Some(response)` short-circuits the call.
async fn injected(state: &FakeState) -> Option<Response> {
    let (delay, status) = {
        let mut f = state.failure.lock().unwrap();
        let status = f.status;
        if let Some(n) = f.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                f.status = None;
                f.remaining = None;
            }
        }
        (f.delay, status)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(status?).ok()?;
    let mut response = github_error(status, "injected failure");
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("2"));
    }
    Some(response)
}

#[derive(Debug, Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// Verifies the app JWT like GitHub: RS256 by the app's key, issuer, at most 10 minutes long.
/// `Err` carries GitHub's 401 message.
fn verify_app_jwt(state: &FakeState, headers: &HeaderMap) -> Result<(), &'static str> {
    let unauthorized = |m: &'static str| m;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("A JSON web token could not be decoded"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iat", "exp", "iss"]);
    let claims = jsonwebtoken::decode::<AppClaims>(token, &state.public_key, &validation)
        .map_err(|_| unauthorized("A JSON web token could not be decoded"))?
        .claims;
    let now = state.clock.now().timestamp();
    if claims.iss != APP_ID.to_string() {
        return Err(unauthorized("Integration not found"));
    }
    if claims.exp <= now || claims.iat > now + 60 || claims.exp - claims.iat > 660 {
        return Err(unauthorized(
            "'Expiration time' claim ('exp') is too far in the future or expired",
        ));
    }
    Ok(())
}

async fn installation(
    State(state): State<Arc<FakeState>>,
    UrlPath(id): UrlPath<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    if let Err(message) = verify_app_jwt(&state, &headers) {
        return github_error(StatusCode::UNAUTHORIZED, message);
    }
    match state.installations.lock().unwrap().get(&id) {
        Some((account, _)) => Json(serde_json::json!({
            "id": id, "account": {"login": account, "type": "Organization"}, "app_id": APP_ID,
        }))
        .into_response(),
        None => github_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

#[derive(Debug, Default, Deserialize)]
struct MintRequest {
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
}

async fn mint(
    State(state): State<Arc<FakeState>>,
    UrlPath(id): UrlPath<u64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    if let Err(message) = verify_app_jwt(&state, &headers) {
        return github_error(StatusCode::UNAUTHORIZED, message);
    }
    let request: MintRequest = if body.is_empty() {
        MintRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(_) => return github_error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    let Some((account, repos)) = state.installations.lock().unwrap().get(&id).cloned() else {
        return github_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let wanted: BTreeSet<String> = request
        .repositories
        .iter()
        .map(|r| r.to_ascii_lowercase())
        .collect();
    if let Some(missing) = wanted.iter().find(|r| !repos.contains(*r)) {
        return github_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("There is at least one repository that does not exist or is not accessible to the parent installation: {missing}"),
        );
    }
    if request
        .permissions
        .values()
        .any(|l| !matches!(l.as_str(), "read" | "write" | "admin"))
    {
        return github_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid permission level");
    }
    let now = state.clock.now();
    let lifetime = *state.token_lifetime.lock().unwrap();
    let expires_at = now + chrono::Duration::from_std(lifetime).unwrap();
    let token = format!(
        "ghs_{}",
        rand::thread_rng()
            .sample_iter(Alphanumeric)
            .take(36)
            .map(char::from)
            .collect::<String>()
    );
    state.tokens.lock().unwrap().insert(
        token.clone(),
        FakeToken {
            owner: account.to_ascii_lowercase(),
            repositories: (!wanted.is_empty()).then(|| wanted.clone()),
            expires_at,
            revoked: false,
        },
    );
    state.mints.lock().unwrap().push(MintRecord {
        installation_id: id,
        repositories: wanted.iter().cloned().collect(),
        permissions: request.permissions.clone(),
        expires_at,
        at: now,
    });
    let repositories: Vec<_> = wanted
        .iter()
        .map(|r| serde_json::json!({"name": r, "full_name": format!("{account}/{r}")}))
        .collect();
    (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "token": token,
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": request.permissions,
            "repository_selection": if wanted.is_empty() { "all" } else { "selected" },
            "repositories": repositories,
        })),
    )
        .into_response()
}

async fn revoke(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or_default()
        .to_string();
    let now = state.clock.now();
    let mut tokens = state.tokens.lock().unwrap();
    match tokens.get_mut(&token) {
        Some(t) if !t.revoked && t.expires_at > now => {
            t.revoked = true;
            state.revocations.lock().unwrap().push(now);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => github_error(StatusCode::UNAUTHORIZED, "Bad credentials"),
    }
}

/// The password of a Basic `Authorization` header.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':')?.1.to_string())
}

fn git_unauthorized() -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, "Invalid username or token.\n").into_response();
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"GitHub\""),
    );
    r
}

/// Smart-HTTP git, through `git http-backend`, for authorised callers only.
async fn git(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let mut segments = path.trim_start_matches('/').splitn(3, '/');
    let (Some(owner), Some(repo), Some(rest)) = (segments.next(), segments.next(), segments.next())
    else {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    };
    let owner = owner.to_ascii_lowercase();
    let repo = repo.trim_end_matches(".git").to_ascii_lowercase();
    let Some(password) = basic_password(request.headers()) else {
        // git asks without credentials first, then calls its credential helper.
        return git_unauthorized();
    };
    let now = state.clock.now();
    let allowed = {
        let tokens = state.tokens.lock().unwrap();
        let by_token = tokens.get(&password).is_some_and(|t| {
            !t.revoked
                && t.expires_at > now
                && t.owner == owner
                && t.repositories.as_ref().is_none_or(|r| r.contains(&repo))
        });
        by_token
            || state
                .pats
                .lock()
                .unwrap()
                .get(&password)
                .is_some_and(|o| *o == owner)
    };
    if !allowed {
        state.git_rejections.fetch_add(1, Ordering::SeqCst);
        return git_unauthorized();
    }
    if !state
        .repo_root
        .join(&owner)
        .join(format!("{repo}.git"))
        .exists()
    {
        return (StatusCode::NOT_FOUND, "Repository not found.\n").into_response();
    }
    state.git_served.fetch_add(1, Ordering::SeqCst);
    let method = request.method().as_str().to_string();
    let (content_type, encoding, protocol) = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        (
            header("content-type"),
            header("content-encoding"),
            header("git-protocol"),
        )
    };
    let body = match axum::body::to_bytes(request.into_body(), 256 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad body\n").into_response(),
    };
    let mut child = match tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &state.repo_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("PATH_INFO", format!("/{owner}/{repo}.git/{rest}"))
        .env("REQUEST_METHOD", &method)
        .env("QUERY_STRING", &query)
        .env("CONTENT_TYPE", &content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", &encoding)
        .env("GIT_PROTOCOL", &protocol)
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("git http-backend: {e}\n"),
            )
                .into_response()
        }
    };
    let mut stdin = child.stdin.take().expect("stdin piped");
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("git http-backend: {e}\n"),
            )
                .into_response()
        }
    };
    let _ = writer.await;
    cgi_response(&output.stdout)
}

/// Turns CGI output (headers, blank line, body) into a response.
fn cgi_response(out: &[u8]) -> Response {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            out.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((head_end, body_start)) = split else {
        return (StatusCode::BAD_GATEWAY, "malformed CGI output\n").into_response();
    };
    let head = String::from_utf8_lossy(&out[..head_end]);
    let mut builder = Response::builder().status(StatusCode::OK);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(200);
            builder = builder.status(code);
        } else {
            builder = builder.header(name.trim(), value);
        }
    }
    builder
        .body(Body::from(out[body_start..].to_vec()))
        .unwrap_or_else(|_| (StatusCode::BAD_GATEWAY, "bad CGI headers\n").into_response())
}
