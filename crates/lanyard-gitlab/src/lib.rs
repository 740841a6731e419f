//! Lanyard's GitLab API client (v4), for CONTRACT §14's GitLab connections: a PAT's own
//! details (`/personal_access_tokens/self`), a namespace by its full path (`/namespaces/{id}`),
//! and the user a token belongs to (`/user`). A PAT is sent as `PRIVATE-TOKEN`, an OAuth access
//! token as a Bearer, as GitLab takes them.
//!
//! Every call is bounded (5 s to connect, 20 s in all, 256 KiB of answer) and its failure told
//! apart: the token refused (401), a namespace not visible (404), a scope missing (403),
//! GitLab down (5xx, 429, a timeout), or an answer that is not GitLab's. No token appears in
//! `Debug` or in an error.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The most of an answer that is read.
pub const MAX_ANSWER: usize = 256 * 1024;

/// What a GitLab call came to, when it handed nothing over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitlabError {
    /// 401: the token is unknown, revoked or expired.
    #[error("GitLab refused the token")]
    Unauthorized,
    /// 403 `insufficient_scope`: the token lacks a scope the call needs.
    #[error("the token lacks a scope this call needs")]
    InsufficientScope,
    /// Any other 403 (a blocked user, an IP restriction, SSO enforcement).
    #[error("GitLab forbids this token the call")]
    Forbidden,
    /// 404: not there, or not visible to the token's user.
    #[error("not found, or not visible to the token's user")]
    NotFound,
    /// Down, slow or throttling: retry later.
    #[error("GitLab is unavailable: {message}")]
    Unavailable {
        retry_after: Option<u64>,
        message: String,
    },
    /// Any other refusal.
    #[error("GitLab refused the request ({status})")]
    Rejected { status: u16 },
    /// An answer that is not GitLab's.
    #[error("GitLab's answer could not be read: {0}")]
    Malformed(String),
}

/// How a token is presented.
#[derive(Clone, Copy)]
pub enum Token<'a> {
    /// A personal access token: `PRIVATE-TOKEN`.
    Pat(&'a SecretString),
    /// An OAuth access token: `Authorization: Bearer`.
    Oauth(&'a SecretString),
}

impl std::fmt::Debug for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Token::Pat(_) => "Token::Pat(..)",
            Token::Oauth(_) => "Token::Oauth(..)",
        })
    }
}

/// A PAT as GitLab describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PatInfo {
    pub active: bool,
    #[serde(default)]
    pub revoked: bool,
    pub scopes: Vec<String>,
    /// The day GitLab ends it, at 00:00 UTC.
    pub expires_at: Option<NaiveDate>,
}

impl PatInfo {
    /// When GitLab ends it: 00:00 UTC of its expiry date.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    }

    /// The scopes missing for what Lanyard needs of a PAT (CONTRACT §14): git access
    /// (`read_repository` or `api`) and API read access (`read_api` or `api`), named as the
    /// least that would do.
    pub fn missing_scopes(&self) -> Vec<&'static str> {
        let has = |s: &str| self.scopes.iter().any(|x| x == s);
        let mut missing = Vec::new();
        if !(has("read_repository") || has("api")) {
            missing.push("read_repository");
        }
        if !(has("read_api") || has("api")) {
            missing.push("read_api");
        }
        missing
    }
}

/// A namespace (group, subgroup or user) as GitLab describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NamespaceInfo {
    pub id: u64,
    pub kind: String,
    pub full_path: String,
}

/// The user a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    pub username: String,
    /// When GitLab shows it (a user's own, or a public one).
    pub email: Option<String>,
}

/// A client for one GitLab host's API.
#[derive(Debug, Clone)]
pub struct GitlabClient {
    http: reqwest::Client,
    api_url: url::Url,
}

fn transport(e: &reqwest::Error) -> GitlabError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    GitlabError::Unavailable {
        retry_after: None,
        message: what.into(),
    }
}

impl GitlabClient {
    /// A client for the API at `api_url` (`https://HOST/api/v4`).
    pub fn new(api_url: &str) -> Result<Self, GitlabError> {
        let mut api_url = url::Url::parse(api_url.trim_end_matches('/'))
            .map_err(|e| GitlabError::Malformed(format!("api_url: {e}")))?;
        if api_url.cannot_be_a_base() {
            return Err(GitlabError::Malformed("api_url cannot hold a path".into()));
        }
        // Segments are pushed after it, so it ends without a slash.
        let path = api_url.path().trim_end_matches('/').to_string();
        api_url.set_path(&path);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GitlabError::Malformed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http, api_url })
    }

    /// `GET /personal_access_tokens/self`.
    pub async fn pat_self(&self, pat: &SecretString) -> Result<PatInfo, GitlabError> {
        self.get(&["personal_access_tokens", "self"], Token::Pat(pat))
            .await
    }

    /// `GET /namespaces/{full path, URL-encoded}`.
    pub async fn namespace(
        &self,
        token: Token<'_>,
        path: &str,
    ) -> Result<NamespaceInfo, GitlabError> {
        self.get(&["namespaces", path], token).await
    }

    /// `GET /user`.
    pub async fn user(&self, token: Token<'_>) -> Result<UserInfo, GitlabError> {
        self.get(&["user"], token).await
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        token: Token<'_>,
    ) -> Result<T, GitlabError> {
        // A token GitLab could never have issued (a control character, a space) is refused as
        // GitLab would refuse it, not sent as a broken header.
        let (Token::Pat(t) | Token::Oauth(t)) = token;
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(t.expose_secret()) {
            return Err(GitlabError::Unauthorized);
        }
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| GitlabError::Malformed("api_url cannot hold a path".into()))?
            .extend(segments);
        let request = self.http.get(url);
        let request = match token {
            Token::Pat(t) => request.header("PRIVATE-TOKEN", t.expose_secret()),
            Token::Oauth(t) => request.bearer_auth(t.expose_secret()),
        };
        let mut response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        match status {
            StatusCode::UNAUTHORIZED => return Err(GitlabError::Unauthorized),
            StatusCode::FORBIDDEN => {
                let body = response.chunk().await.ok().flatten().unwrap_or_default();
                let error: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
                let scope = error.is_some_and(|e| e["error"] == "insufficient_scope");
                return Err(if scope {
                    GitlabError::InsufficientScope
                } else {
                    GitlabError::Forbidden
                });
            }
            StatusCode::NOT_FOUND => return Err(GitlabError::NotFound),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                return Err(GitlabError::Unavailable {
                    retry_after,
                    message: format!("it answered {}", s.as_u16()),
                });
            }
            s if !s.is_success() => return Err(GitlabError::Rejected { status: s.as_u16() }),
            _ => {}
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(GitlabError::Malformed(format!(
                    "longer than {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        // serde's message can quote the answer: it is not repeated.
        serde_json::from_slice(&body)
            .map_err(|_| GitlabError::Malformed("not the JSON GitLab answers".into()))
    }
}
