//! A faithful fake OAuth 2.0 authorization server: a real HTTP server on 127.0.0.1 that behaves
//! as the documents describe, for Lanyard's tests of its OAuth connections (CONTRACT §14: the
//! `[[oauth2]]` providers, and GitLab's OAuth, whose endpoints are the same shape).
//!
//! - `GET /oauth/authorize` (RFC 6749 §4.1.1, PKCE per RFC 7636): approves at once as the
//!   configured account, or denies when told to, redirecting to a registered `redirect_uri` with
//!   `code` (single use, 10 minutes, bound to the client, the redirect URI and the challenge) or
//!   `error`, and the `state` it was given. An unknown client or redirect URI is answered 400
//!   and never redirected (§4.1.2.1).
//! - `POST /oauth/token` (§4.1.3, §6): the authorization-code and refresh-token grants, with
//!   client authentication by HTTP Basic or in the body (§2.3.1). Errors are §5.2's JSON. A code
//!   used twice ends the grant it made (§4.1.2). Refresh tokens rotate unless configured not
//!   to, and a refresh can end the previous access token (GitLab's does). A refresh token used
//!   after it was rotated is `invalid_grant`.
//! - `POST /oauth/revoke` (RFC 7009): ends the whole grant of the token given, access or refresh
//!   (as Google's does), and answers 200 for a token it does not know.
//! - `GET /oauth/userinfo`: the account of a live access token, else 401 with
//!   `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3).
//!
//! Every expiry reads the injected clock. Failures (a status, N times or until cleared) and a
//! delay can be injected on the token endpoint.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use lanyard_core::Clock;

mod endpoints;

pub const CLIENT_ID: &str = "lanyard-test-client";
pub const CLIENT_SECRET: &str = "lanyard-test-client-secret-0123456789";

/// How the server issues and renews tokens.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long an access token lives.
    pub access_lifetime: Duration,
    /// Whether a refresh hands out a new refresh token and retires the one used (GitLab's do;
    /// Google's keep theirs).
    pub rotate_refresh_tokens: bool,
    /// Whether a refresh ends the grant's earlier access tokens (GitLab's does).
    pub refresh_revokes_previous: bool,
    /// Whether an authorization request without a PKCE challenge is refused.
    pub require_pkce: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            access_lifetime: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
            refresh_revokes_previous: false,
            require_pkce: true,
        }
    }
}

/// Who approves an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub sub: String,
    pub email: String,
}

/// An authorization code not yet exchanged.
#[derive(Debug, Clone)]
struct Code {
    account: Account,
    scopes: String,
    redirect_uri: String,
    /// The PKCE challenge and whether its method is S256 (else `plain`, RFC 7636 §4.3).
    challenge: Option<(String, bool)>,
    expires_at: DateTime<Utc>,
    used: bool,
    /// The grant its exchange made, ended if it is used again.
    grant: Option<u64>,
}

/// What one authorization granted: its account and scopes, and its current refresh token.
#[derive(Debug, Clone)]
struct Grant {
    account: Account,
    scopes: String,
    refresh_token: Option<String>,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct AccessToken {
    grant: u64,
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

#[derive(Debug, Default)]
struct Tokens {
    codes: HashMap<String, Code>,
    grants: HashMap<u64, Grant>,
    /// Each grant's current refresh token.
    refresh: HashMap<String, u64>,
    /// Refresh tokens rotated away: using one is `invalid_grant`.
    retired: HashSet<String>,
    access: HashMap<String, AccessToken>,
    next_grant: u64,
}

struct State {
    clock: Arc<dyn Clock>,
    options: Mutex<Options>,
    redirect_uris: Mutex<HashSet<String>>,
    account: Mutex<Account>,
    deny_next: AtomicBool,
    offline: AtomicBool,
    tokens: Mutex<Tokens>,
    failure: Mutex<Failure>,
    exchanges: AtomicU64,
    refreshes: AtomicU64,
    invalid_grants: AtomicU64,
    revocations: AtomicU64,
}

/// The authorization server itself, to serve on a listener of its own ([`FakeOauth`]) or within
/// another fake's (a fake GitLab's `/oauth/...`): its routes, knobs and records.
#[derive(Clone)]
pub struct Authority {
    state: Arc<State>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// A running fake authorization server. Dropping it stops the server. Its knobs and records
/// are its [`Authority`]'s.
pub struct FakeOauth {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    authority: Authority,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for FakeOauth {
    type Target = Authority;

    fn deref(&self) -> &Authority {
        &self.authority
    }
}

impl std::fmt::Debug for FakeOauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOauth")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeOauth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOauth {
    /// Starts on a free port with the default [`Options`], approving as `user-1`.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        Self::start_with(clock, Options::default()).await
    }

    pub async fn start_with(clock: Arc<dyn Clock>, options: Options) -> Self {
        let authority = Authority::new(clock, options);
        let app = authority.router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OAuth server");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let base_url = format!("http://{addr}");
        Self {
            addr,
            authorize_url: format!("{base_url}/oauth/authorize"),
            token_url: format!("{base_url}/oauth/token"),
            revoke_url: format!("{base_url}/oauth/revoke"),
            userinfo_url: format!("{base_url}/oauth/userinfo"),
            base_url,
            authority,
            task,
        }
    }
}

impl Authority {
    /// An authorization server on `clock`, approving as `user-1`.
    pub fn new(clock: Arc<dyn Clock>, options: Options) -> Self {
        let state = Arc::new(State {
            clock,
            options: Mutex::new(options),
            redirect_uris: Mutex::default(),
            account: Mutex::new(Account {
                sub: "user-1".into(),
                email: "user-1@example.test".into(),
            }),
            deny_next: AtomicBool::new(false),
            offline: AtomicBool::new(true),
            tokens: Mutex::default(),
            failure: Mutex::default(),
            exchanges: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            invalid_grants: AtomicU64::new(0),
            revocations: AtomicU64::new(0),
        });
        Self { state }
    }

    /// `/oauth/authorize`, `/oauth/token`, `/oauth/revoke` and `/oauth/userinfo`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/authorize", get(endpoints::authorize))
            .route("/oauth/token", post(endpoints::token))
            .route("/oauth/revoke", post(endpoints::revoke))
            .route("/oauth/userinfo", get(endpoints::userinfo))
            .with_state(self.state.clone())
    }

    /// The account and granted scopes (space-separated) of a live access token.
    pub fn bearer(&self, token: &str) -> Option<(Account, String)> {
        let now = self.state.clock.now();
        let tokens = self.state.tokens.lock().unwrap();
        let access = tokens.access.get(token).filter(|t| live(&tokens, t, now))?;
        let grant = tokens.grants.get(&access.grant)?;
        Some((grant.account.clone(), grant.scopes.clone()))
    }

    /// Registers a redirect URI; authorization requests name one of these exactly.
    pub fn allow_redirect_uri(&self, uri: &str) {
        self.state.redirect_uris.lock().unwrap().insert(uri.into());
    }

    /// Who approves the next authorization requests.
    pub fn set_account(&self, sub: &str, email: &str) {
        *self.state.account.lock().unwrap() = Account {
            sub: sub.into(),
            email: email.into(),
        };
    }

    /// The next authorization request is denied by the user (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.state.deny_next.store(true, Ordering::SeqCst);
    }

    /// Whether code exchanges hand out a refresh token (offline access granted).
    pub fn issue_refresh_tokens(&self, yes: bool) {
        self.state.offline.store(yes, Ordering::SeqCst);
    }

    pub fn set_options(&self, options: Options) {
        *self.state.options.lock().unwrap() = options;
    }

    /// The token endpoint answers `status` for the next `times` calls (`None`: until cleared).
    pub fn fail_token_endpoint(&self, status: u16, times: Option<u32>) {
        let mut failure = self.state.failure.lock().unwrap();
        failure.status = Some(status);
        failure.remaining = times;
    }

    /// The token endpoint waits this long before answering.
    pub fn delay_token_endpoint(&self, delay: Duration) {
        self.state.failure.lock().unwrap().delay = delay;
    }

    pub fn clear_failures(&self) {
        *self.state.failure.lock().unwrap() = Failure::default();
    }

    /// The user revokes every grant of `sub` at the provider: its refresh tokens are
    /// `invalid_grant` from now on, and its access tokens dead.
    pub fn revoke_grants_of(&self, sub: &str) {
        let mut tokens = self.state.tokens.lock().unwrap();
        let ids: Vec<u64> = (tokens.grants.iter())
            .filter(|(_, g)| g.account.sub == sub)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            end_grant(&mut tokens, id);
        }
    }

    /// Code exchanges made (successful ones).
    pub fn exchanges(&self) -> u64 {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    /// Refreshes made (successful ones).
    pub fn refreshes(&self) -> u64 {
        self.state.refreshes.load(Ordering::SeqCst)
    }

    /// Token requests refused as `invalid_grant`.
    pub fn invalid_grants(&self) -> u64 {
        self.state.invalid_grants.load(Ordering::SeqCst)
    }

    /// Revocation requests that ended a grant.
    pub fn revocations(&self) -> u64 {
        self.state.revocations.load(Ordering::SeqCst)
    }

    /// Whether `token` is an access token that works now.
    pub fn access_token_live(&self, token: &str) -> bool {
        let now = self.state.clock.now();
        let tokens = self.state.tokens.lock().unwrap();
        tokens
            .access
            .get(token)
            .is_some_and(|t| live(&tokens, t, now))
    }

    /// Whether `token` is a refresh token that a refresh would accept now.
    pub fn refresh_token_live(&self, token: &str) -> bool {
        let tokens = self.state.tokens.lock().unwrap();
        let grant = tokens
            .refresh
            .get(token)
            .and_then(|id| tokens.grants.get(id));
        grant.is_some_and(|g| !g.revoked)
    }
}

fn live(tokens: &Tokens, token: &AccessToken, now: DateTime<Utc>) -> bool {
    let grant = tokens.grants.get(&token.grant);
    !token.revoked && now < token.expires_at && grant.is_some_and(|g| !g.revoked)
}

/// Ends a grant: its refresh token and every access token it issued.
fn end_grant(tokens: &mut Tokens, id: u64) {
    let Some(grant) = tokens.grants.get_mut(&id) else {
        return;
    };
    grant.revoked = true;
    if let Some(refresh) = grant.refresh_token.take() {
        tokens.refresh.remove(&refresh);
        tokens.retired.insert(refresh);
    }
    for token in tokens.access.values_mut().filter(|t| t.grant == id) {
        token.revoked = true;
    }
}
