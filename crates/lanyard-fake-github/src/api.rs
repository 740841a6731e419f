//! The GitHub App API: installation lookup, token mint and revocation, with the app JWT checked
//! the way GitHub checks it, and injected failures.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jsonwebtoken::{Algorithm, Validation};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;

use super::{FakeState, FakeToken, MintRecord, APP_ID};

pub(super) fn github_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

struct CountDown<'a>(&'a AtomicU64);

impl Drop for CountDown<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Applies injected delay and failure; `Some(response)` short-circuits the call.
pub(super) async fn injected(state: &FakeState) -> Option<Response> {
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
        let now_delayed = state.delayed.fetch_add(1, SeqCst) + 1;
        state.most_delayed.fetch_max(now_delayed, SeqCst);
        // Counted down however the wait ends, even when the caller gives up mid-delay.
        let _waiting = CountDown(&state.delayed);
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

/// The bearer credential of a request (`Bearer x` or `token x`), or empty.
pub(super) fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or_default()
        .to_string()
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

/// `GET /app`: the authenticated App itself (what `lanyard doctor` asks to prove the key and id).
pub(super) async fn app(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    if let Err(message) = verify_app_jwt(&state, &headers) {
        return github_error(StatusCode::UNAUTHORIZED, message);
    }
    Json(serde_json::json!({
        "id": APP_ID, "slug": super::APP_SLUG, "name": "Lanyard (fake GitHub)",
        "owner": {"login": "lanyard-dev", "type": "Organization"},
    }))
    .into_response()
}

pub(super) async fn installation(
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
    let kind = state
        .users
        .lock()
        .unwrap()
        .account_type(&state_account(&state, id));
    match state.installations.lock().unwrap().get(&id) {
        Some(i) => Json(serde_json::json!({
            "id": id, "account": {"login": i.account, "type": kind}, "app_id": APP_ID,
            "suspended_at": i.suspended.then(|| state.clock.now().to_rfc3339()),
        }))
        .into_response(),
        None => github_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The account an installation is on (empty when there is no such installation).
fn state_account(state: &FakeState, id: u64) -> String {
    state
        .installations
        .lock()
        .unwrap()
        .get(&id)
        .map(|i| i.account.clone())
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
struct MintRequest {
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
}

/// `POST …/access_tokens`. Like GitHub, a mint that has arrived is made even when the client
/// hangs up while it waits (the work runs on a task of its own): a client that gives up does not
/// un-mint a token.
pub(super) async fn mint(
    State(state): State<Arc<FakeState>>,
    UrlPath(id): UrlPath<u64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    tokio::spawn(mint_to_the_end(state, id, headers, body))
        .await
        .unwrap_or_else(|_| github_error(StatusCode::INTERNAL_SERVER_ERROR, "the mint failed"))
}

async fn mint_to_the_end(
    state: Arc<FakeState>,
    id: u64,
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
    let Some(installation) = state.installations.lock().unwrap().get(&id).cloned() else {
        return github_error(StatusCode::NOT_FOUND, "Not Found");
    };
    if installation.suspended {
        return github_error(
            StatusCode::FORBIDDEN,
            "This installation has been suspended",
        );
    }
    let (account, repos) = (installation.account, installation.repos);
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
            installation: id,
            owner: account.to_ascii_lowercase(),
            repositories: (!wanted.is_empty()).then(|| wanted.clone()),
            expires_at,
            revoked: false,
            minted_at: state.clock.now(),
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

pub(super) async fn revoke(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    if let Some(r) = injected(&state).await {
        return r;
    }
    let token = bearer(&headers);
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
