//! The four endpoints, as RFC 6749, 7636, 7009 and 6750 describe them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Query, State as Extract};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{end_grant, AccessToken, Code, Grant, State, Tokens, CLIENT_ID, CLIENT_SECRET};

type Params = HashMap<String, String>;

/// How long an authorization code may wait for its exchange.
const CODE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `redirect_uri` with `pairs` added to its query.
fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = uri.to_string();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let sep = if i == 0 && !uri.contains('?') {
            '?'
        } else {
            '&'
        };
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&encode(v));
    }
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body)).into_response()
}

pub(crate) async fn authorize(
    Extract(state): Extract<Arc<State>>,
    Query(q): Query<Params>,
) -> Response {
    let param = |k: &str| q.get(k).map(String::as_str);
    // An unknown client or redirect URI is never redirected to (RFC 6749 §4.1.2.1).
    if param("client_id") != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    if !state.redirect_uris.lock().unwrap().contains(redirect_uri) {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not registered").into_response();
    }
    let state_param = param("state").unwrap_or_default();
    let refuse = |error: &str| redirect(redirect_uri, &[("error", error), ("state", state_param)]);
    if param("response_type") != Some("code") {
        return refuse("unsupported_response_type");
    }
    // A challenge without a method is `plain` (RFC 7636 §4.3), and checked as such.
    let s256 = match param("code_challenge_method") {
        None | Some("plain") => false,
        Some("S256") => true,
        Some(_) => return refuse("invalid_request"),
    };
    let challenge = param("code_challenge").map(|c| (c.to_string(), s256));
    let require_pkce = state.options.lock().unwrap().require_pkce;
    if require_pkce && challenge.is_none() {
        return refuse("invalid_request");
    }
    if state.deny_next.swap(false, Ordering::SeqCst) {
        return refuse("access_denied");
    }
    let code = random_token("code-");
    let entry = Code {
        account: state.account.lock().unwrap().clone(),
        scopes: param("scope").unwrap_or_default().to_string(),
        redirect_uri: redirect_uri.to_string(),
        challenge,
        expires_at: state.clock.now() + CODE_LIFETIME,
        used: false,
        grant: None,
    };
    state
        .tokens
        .lock()
        .unwrap()
        .codes
        .insert(code.clone(), entry);
    redirect(redirect_uri, &[("code", &code), ("state", state_param)])
}

/// The client, authenticated by HTTP Basic or in the body (RFC 6749 §2.3.1).
fn client_authenticated(headers: &HeaderMap, form: &Params) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    // Basic credentials are form-urlencoded first (RFC 6749 §2.3.1).
    let basic: Option<(String, String)> = basic.and_then(|pair| {
        let (id, secret) = pair.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    });
    let (id, secret) = match &basic {
        Some((id, secret)) => (Some(id.as_str()), Some(secret.as_str())),
        None => (
            form.get("client_id").map(String::as_str),
            form.get("client_secret").map(String::as_str),
        ),
    };
    id == Some(CLIENT_ID) && secret == Some(CLIENT_SECRET)
}

pub(crate) async fn token(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    let failure = {
        let mut failure = state.failure.lock().unwrap();
        let status = failure.status.filter(|_| failure.remaining != Some(0));
        if let (Some(_), Some(n)) = (status, failure.remaining.as_mut()) {
            *n -= 1;
        }
        (status, failure.delay)
    };
    if !failure.1.is_zero() {
        tokio::time::sleep(failure.1).await;
    }
    if let Some(status) = failure.0 {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return oauth_error(status, "temporarily_unavailable", "injected by the test");
    }
    if !client_authenticated(&headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange(&state, &form),
        Some("refresh_token") => refresh(&state, &form),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code or refresh_token",
        ),
    }
}

fn invalid_grant(state: &State, why: &str) -> Response {
    state.invalid_grants.fetch_add(1, Ordering::SeqCst);
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why)
}

fn exchange(state: &State, form: &Params) -> Response {
    let now = state.clock.now();
    let mut tokens = state.tokens.lock().unwrap();
    let Some(code) = form.get("code").and_then(|c| tokens.codes.get(c)).cloned() else {
        return invalid_grant(state, "unknown code");
    };
    let key = form.get("code").cloned().unwrap_or_default();
    if code.used {
        // A code used twice: whatever it granted is ended (RFC 6749 §4.1.2).
        if let Some(grant) = code.grant {
            end_grant(&mut tokens, grant);
        }
        return invalid_grant(state, "the code was used already");
    }
    if now >= code.expires_at {
        return invalid_grant(state, "the code expired");
    }
    if form.get("redirect_uri") != Some(&code.redirect_uri) {
        return invalid_grant(
            state,
            "redirect_uri differs from the authorization request's",
        );
    }
    if let Some((challenge, s256)) = &code.challenge {
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        let ok_shape = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        let computed = if *s256 {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_string()
        };
        if !ok_shape || &computed != challenge {
            return invalid_grant(state, "code_verifier does not match the challenge");
        }
    }
    let id = tokens.next_grant;
    tokens.next_grant += 1;
    let offline = state.offline.load(Ordering::SeqCst);
    let refresh_token = offline.then(|| random_token("refresh-"));
    if let Some(r) = &refresh_token {
        tokens.refresh.insert(r.clone(), id);
    }
    let grant = Grant {
        account: code.account.clone(),
        scopes: code.scopes.clone(),
        refresh_token: refresh_token.clone(),
        revoked: false,
    };
    tokens.grants.insert(id, grant);
    if let Some(c) = tokens.codes.get_mut(&key) {
        c.used = true;
        c.grant = Some(id);
    }
    state.exchanges.fetch_add(1, Ordering::SeqCst);
    issue(state, &mut tokens, id, refresh_token, &code.scopes)
}

fn refresh(state: &State, form: &Params) -> Response {
    let options = state.options.lock().unwrap().clone();
    let mut tokens = state.tokens.lock().unwrap();
    let given = form.get("refresh_token").cloned().unwrap_or_default();
    let Some(&id) = tokens.refresh.get(&given) else {
        let why = if tokens.retired.contains(&given) {
            "the refresh token was rotated or revoked"
        } else {
            "unknown refresh token"
        };
        return invalid_grant(state, why);
    };
    if options.refresh_revokes_previous {
        for token in tokens.access.values_mut().filter(|t| t.grant == id) {
            token.revoked = true;
        }
    }
    // A provider that keeps its refresh tokens leaves one out of the answer (Google's does).
    let mut refresh_token = None;
    if options.rotate_refresh_tokens {
        let next = random_token("refresh-");
        tokens.refresh.remove(&given);
        tokens.retired.insert(given);
        tokens.refresh.insert(next.clone(), id);
        if let Some(grant) = tokens.grants.get_mut(&id) {
            grant.refresh_token = Some(next.clone());
        }
        refresh_token = Some(next);
    }
    let scopes = tokens
        .grants
        .get(&id)
        .map(|g| g.scopes.clone())
        .unwrap_or_default();
    state.refreshes.fetch_add(1, Ordering::SeqCst);
    issue(state, &mut tokens, id, refresh_token, &scopes)
}

/// A new access token for grant `id`, answered with `refresh_token` (RFC 6749 §5.1).
fn issue(
    state: &State,
    tokens: &mut Tokens,
    id: u64,
    refresh_token: Option<String>,
    scopes: &str,
) -> Response {
    let lifetime = state.options.lock().unwrap().access_lifetime;
    let access = random_token("access-");
    let expires_at =
        state.clock.now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
    let token = AccessToken {
        grant: id,
        expires_at,
        revoked: false,
    };
    tokens.access.insert(access.clone(), token);
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "scope": scopes,
    });
    if let Some(r) = refresh_token {
        body["refresh_token"] = r.into();
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

pub(crate) async fn revoke(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    if !client_authenticated(&headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let given = form.get("token").cloned().unwrap_or_default();
    let mut tokens = state.tokens.lock().unwrap();
    let grant = (tokens.refresh.get(&given).copied())
        .or_else(|| tokens.access.get(&given).map(|t| t.grant));
    if let Some(id) = grant {
        end_grant(&mut tokens, id);
        state.revocations.fetch_add(1, Ordering::SeqCst);
    }
    // An unknown or dead token is answered 200 as well (RFC 7009 §2.2).
    StatusCode::OK.into_response()
}

pub(crate) async fn userinfo(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let now = state.clock.now();
    let tokens = state.tokens.lock().unwrap();
    let account = tokens
        .access
        .get(bearer)
        .filter(|t| crate::live(&tokens, t, now))
        .and_then(|t| tokens.grants.get(&t.grant))
        .map(|g| g.account.clone());
    match account {
        Some(a) => {
            Json(json!({ "sub": a.sub, "email": a.email, "email_verified": true })).into_response()
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response(),
    }
}
