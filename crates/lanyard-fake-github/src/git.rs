//! Git over smart HTTP through `git http-backend`, served only to live, in-scope credentials.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

use super::FakeState;

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

pub(super) fn create_repo(root: &Path, owner: &str, repo: &str) {
    create_bare_repo(root, &format!("{owner}/{repo}"));
}

/// Creates `root/PATH.git` (lowercased) as a bare repository with one commit on `main`, unless
/// it exists. `path` is `owner/repo`, or a GitLab project's full path (`group/sub/project`).
pub fn create_bare_repo(root: &Path, path: &str) {
    let path = path.to_ascii_lowercase();
    let bare = root.join(format!("{path}.git"));
    if bare.exists() {
        return;
    }
    let work = TempDir::new().expect("work tree");
    run_git(&["init", "-q", "-b", "main"], work.path());
    std::fs::write(work.path().join("README.md"), format!("# {path}\n")).unwrap();
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
pub(super) async fn git(State(state): State<Arc<FakeState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
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
                .is_some_and(|p| p.owner == owner && p.expires_at.is_none_or(|e| e > now))
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
    http_backend(
        &state.repo_root,
        &format!("/{owner}/{repo}.git/{rest}"),
        request,
    )
    .await
}

/// Serves one smart-HTTP request for the repository at `path_info` under `root` through
/// `git http-backend` (an authorised caller's: the caller checks). Shared with the fake GitLab.
pub async fn http_backend(root: &Path, path_info: &str, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("").to_string();
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
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("PATH_INFO", path_info)
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
