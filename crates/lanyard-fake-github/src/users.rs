//! Users of the fake GitHub: the OAuth web flow (a code for a chosen user, exchanged for a user
//! token), the installations each user can see, paged like GitHub pages them, and `GET /user`
//! for user tokens and PATs, with the PAT's expiry header when it has one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;

use super::api::{bearer, github_error, injected};
use super::{FakeState, APP_ID};

/// The OAuth client Lanyard is configured with (its secret is in `fixtures/oauth-client-secret`).
pub const CLIENT_ID: &str = "Iv1.fakelanyardclient";
pub const CLIENT_SECRET: &str = "fake-oauth-client-secret-for-tests-only";

/// What the fake knows of its users and tokens.
#[derive(Debug, Default)]
pub(super) struct Users {
    /// login → the installations the user can see.
    pub visible: HashMap<String, BTreeSet<u64>>,
    /// code → (login, used).
    pub codes: HashMap<String, (String, bool)>,
    /// user token → login.
    pub tokens: HashMap<String, String>,
    /// login → the accounts (lower-case) the user administers.
    pub admins: HashMap<String, BTreeSet<String>>,
}

impl Users {
    /// The login a user token belongs to.
    fn login(&self, token: &str) -> Option<String> {
        self.tokens.get(token).cloned()
    }

    /// `User` when the account is a user's own, else `Organization`.
    pub(super) fn account_type(&self, account: &str) -> &'static str {
        let is_user = self
            .visible
            .keys()
            .any(|login| login.eq_ignore_ascii_case(account));
        if is_user {
            "User"
        } else {
            "Organization"
        }
    }
}

/// A PAT: whose repositories it reaches, and when it expires if it does.
#[derive(Debug, Clone)]
pub(super) struct FakePat {
    pub owner: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(super) fn random(prefix: &str, len: usize) -> String {
    let body: String = rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

#[derive(Debug, Deserialize)]
pub(super) struct CodeExchange {
    client_id: String,
    client_secret: String,
    code: String,
}

/// `POST /login/oauth/access_token` (form-encoded, as GitHub takes it). A bad code answers 200
/// with an `error`, as GitHub does.
pub(super) async fn exchange(
    State(state): State<Arc<FakeState>>,
    axum::extract::Form(req): axum::extract::Form<CodeExchange>,
) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    if req.client_id != CLIENT_ID || req.client_secret != CLIENT_SECRET {
        return Json(serde_json::json!({"error": "incorrect_client_credentials"})).into_response();
    }
    let mut users = state.users.lock().unwrap();
    let login = match users.codes.get_mut(&req.code) {
        Some((login, used)) if !*used => {
            *used = true;
            login.clone()
        }
        _ => return Json(serde_json::json!({"error": "bad_verification_code"})).into_response(),
    };
    let token = random("ghu_", 36);
    users.tokens.insert(token.clone(), login);
    Json(serde_json::json!({"access_token": token, "token_type": "bearer", "scope": ""}))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct Paging {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// `GET /user/installations`, paged: the installations of this App the user can see.
pub(super) async fn user_installations(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(paging): Query<Paging>,
) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    let users = state.users.lock().unwrap();
    let Some(login) = users.login(&bearer(&headers)) else {
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    let visible: Vec<u64> = users
        .visible
        .get(&login)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    let installations = state.installations.lock().unwrap();
    let all: Vec<serde_json::Value> = visible
        .iter()
        .filter_map(|id| installations.get(id).map(|i| (id, i)))
        .map(|(id, i)| {
            let kind = users.account_type(&i.account);
            serde_json::json!({
                "id": id, "app_id": APP_ID, "target_type": kind,
                "account": {"login": i.account, "id": id + 10_000, "type": kind},
            })
        })
        .collect();
    drop(users);
    let per_page = paging.per_page.unwrap_or(30).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    let slice: Vec<_> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    Json(serde_json::json!({"total_count": all.len(), "installations": slice})).into_response()
}

/// `GET /user/memberships/orgs/{org}` for a user token: `admin` for the organization's admins,
/// `member` for anyone else who can see one of its installations, 404 for the rest.
pub(super) async fn membership(
    State(state): State<Arc<FakeState>>,
    axum::extract::Path(org): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    let users = state.users.lock().unwrap();
    let Some(login) = users.login(&bearer(&headers)) else {
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    let org_lower = org.to_ascii_lowercase();
    let admin = users
        .admins
        .get(&login)
        .is_some_and(|a| a.contains(&org_lower));
    let installations = state.installations.lock().unwrap();
    let member = users.visible.get(&login).is_some_and(|ids| {
        ids.iter().any(|id| {
            installations
                .get(id)
                .is_some_and(|i| i.account.eq_ignore_ascii_case(&org))
        })
    });
    if !admin && !member {
        return github_error(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(serde_json::json!({
        "state": "active", "role": if admin { "admin" } else { "member" },
        "organization": {"login": org}, "user": {"login": login},
    }))
    .into_response()
}

/// `GET /user` for a user token or a PAT. An expired PAT is refused, as GitHub refuses it.
pub(super) async fn user(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    let presented = bearer(&headers);
    if let Some(login) = state.users.lock().unwrap().tokens.get(&presented) {
        return Json(serde_json::json!({"login": login, "type": "User"})).into_response();
    }
    let Some(pat) = state.pats.lock().unwrap().get(&presented).cloned() else {
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    let now = state.clock.now();
    if pat.expires_at.is_some_and(|e| e <= now) {
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let mut response =
        Json(serde_json::json!({"login": pat.owner, "type": "User"})).into_response();
    if let Some(expires) = pat.expires_at {
        let header = expires.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        response.headers_mut().insert(
            "github-authentication-token-expiration",
            HeaderValue::from_str(&header).expect("a date is a valid header"),
        );
    }
    response
}
