//! Git over smart HTTP at a project's full path, for live tokens of members with a git scope.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::State;

/// The user and password of a Basic `Authorization` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let text = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn denied() -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, "HTTP Basic: Access denied.\n").into_response();
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"GitLab\""),
    );
    r
}

pub(crate) async fn git(Extract(state): Extract<Arc<State>>, request: Request) -> Response {
    let path = request.uri().path().to_ascii_lowercase();
    // `PROJECT.git/info/refs`, or without the `.git`, which GitLab serves too.
    let path = path.trim_start_matches('/');
    let split = path.split_once(".git/").or_else(|| {
        ["/info/refs", "/git-upload-pack", "/git-receive-pack"]
            .iter()
            .find_map(|end| path.find(end))
            .map(|at| (&path[..at], &path[at + 1..]))
    });
    let Some((project, rest)) = split else {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    };
    let (project, rest) = (project.to_string(), rest.to_string());
    let Some((user, password)) = basic(request.headers()) else {
        // git asks without credentials first, then calls its credential helper.
        return denied();
    };
    let push = rest.contains("git-receive-pack")
        || request
            .uri()
            .query()
            .is_some_and(|q| q.contains("service=git-receive-pack"));
    let caller = state.caller(&password);
    // An OAuth token is only taken with the user `oauth2`; a PAT with any user.
    let is_pat = state.pats.lock().unwrap().contains_key(&password);
    let allowed = caller.is_some_and(|c| {
        let scoped = if push {
            c.may(&["write_repository", "api"])
        } else {
            c.may(&["read_repository", "write_repository", "api"])
        };
        let namespace = project.rsplit_once('/').map_or("", |(n, _)| n);
        (is_pat || user == "oauth2") && scoped && state.member(&c.user, namespace)
    });
    if !allowed {
        state.git_rejections.fetch_add(1, Ordering::SeqCst);
        return denied();
    }
    if !state.projects.lock().unwrap().contains(&project) {
        return (StatusCode::NOT_FOUND, "The project could not be found.\n").into_response();
    }
    state.git_served.fetch_add(1, Ordering::SeqCst);
    let path_info = format!("/{project}.git/{rest}");
    lanyard_fake_github::http_backend(&state.repo_root, &path_info, request).await
}
