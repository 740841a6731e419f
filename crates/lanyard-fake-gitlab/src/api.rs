//! API v4: the three calls Lanyard makes, answered as GitLab answers them.

use std::sync::Arc;

use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::{Caller, State};

/// The token a request carries: `PRIVATE-TOKEN` (a PAT only, as GitLab takes it), or a Bearer
/// (a PAT or an OAuth access token).
fn token<'h>(state: &State, headers: &'h HeaderMap) -> Option<&'h str> {
    let private = headers.get("private-token").and_then(|v| v.to_str().ok());
    if let Some(private) = private.map(str::trim) {
        return state
            .pats
            .lock()
            .unwrap()
            .contains_key(private)
            .then_some(private);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.map(str::trim)
}

type Refusal = (StatusCode, Json<serde_json::Value>);

fn refusal() -> Refusal {
    let body = json!({ "message": "401 Unauthorized" });
    (StatusCode::UNAUTHORIZED, Json(body))
}

fn unauthorized() -> Response {
    refusal().into_response()
}

/// The caller, if its token is live and may read the API.
fn api_caller(state: &State, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let caller = token(state, headers)
        .and_then(|t| state.caller(t))
        .ok_or_else(refusal)?;
    if !caller.may(&["api", "read_api"]) {
        let body = json!({
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": "api read_api",
        });
        return Err((StatusCode::FORBIDDEN, Json(body)));
    }
    Ok(caller)
}

/// `GET /personal_access_tokens/self`: the PAT itself, whatever its scopes; a revoked or
/// expired one, or an OAuth token, is 401.
pub(crate) async fn pat_self(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(given) = token(&state, &headers) else {
        return unauthorized();
    };
    if state.caller(given).is_none() {
        return unauthorized();
    }
    let pats = state.pats.lock().unwrap();
    let Some(pat) = pats.get(given) else {
        return unauthorized();
    };
    let user_id = state.users.lock().unwrap().get(&pat.user).map(|u| u.id);
    Json(json!({
        "id": 1,
        "name": "lanyard",
        "revoked": pat.revoked,
        "active": true,
        "scopes": pat.scopes,
        "user_id": user_id,
        "expires_at": pat.expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
    }))
    .into_response()
}

/// `GET /namespaces/{id}`, the id being the URL-encoded full path: 404 unless the caller can
/// see it (a member of it or of a parent group).
pub(crate) async fn namespace(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    let caller = match api_caller(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let path = path.to_ascii_lowercase();
    let found = state.namespaces.lock().unwrap().get(&path).cloned();
    match found {
        Some(n) if state.member(&caller.user, &path) => {
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            let parent = path.rsplit_once('/').map(|(p, _)| p.to_string());
            Json(json!({
                "id": n.id,
                "name": name,
                "path": name,
                "kind": n.kind,
                "full_path": path,
                "parent_path": parent,
            }))
            .into_response()
        }
        _ => {
            let body = json!({ "message": "404 Namespace Not Found" });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    }
}

/// `GET /user`: who the token belongs to, with their email.
pub(crate) async fn user(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    let caller = match api_caller(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let users = state.users.lock().unwrap();
    let Some(user) = users.get(&caller.user) else {
        return unauthorized();
    };
    Json(json!({
        "id": user.id,
        "username": caller.user,
        "name": caller.user,
        "email": user.email,
    }))
    .into_response()
}
