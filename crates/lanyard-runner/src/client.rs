//! The runner's client for Lanyard's credential route. The runner token file is re-read on every
//! call, so it can be rotated under a running runner.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::github::Scheme;
use lanyard_core::wire::{CredentialSource, ErrorEnvelope, GithubCredential};
use lanyard_core::{ApiUrl, ApiUrlError};
use secrecy::SecretString;

/// One fetched credential. `Debug` never shows the token.
#[derive(Clone)]
pub struct Fetched {
    pub token: SecretString,
    /// `None` when the server reports no expiry (a PAT without one).
    pub expires_at: Option<DateTime<Utc>>,
    pub source: CredentialSource,
    /// The only scheme git may use the token over.
    pub scheme: Scheme,
    pub host: String,
    pub owner: String,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("source", &self.source)
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("owner", &self.owner)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the runner token was refused (401): {0}")]
    Unauthorized(String),
    #[error("the session was not found (404): check --session and the runner token")]
    NotFound,
    #[error("the session has ended (410): {0}")]
    SessionEnded(String),
    #[error("the session spans several owners; name one of them")]
    OwnerRequired(Vec<(String, String)>),
    #[error("Lanyard or GitHub is unavailable ({status}): {message}")]
    Unavailable {
        status: u16,
        retry_after: Option<u64>,
        message: String,
    },
    #[error("cannot reach Lanyard at {0}")]
    Transport(String),
    #[error("cannot read the runner token file: {0}")]
    TokenFile(String),
    #[error("unexpected answer from Lanyard ({0}): {1}")]
    Other(u16, String),
}

/// Why the server will never serve this session again: the runner stops the agent on each, with
/// its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// 410: the session was stopped or expired.
    SessionEnded,
    /// 401: the runner token was revoked, or its team is gone.
    TokenRefused,
    /// 404: the session is not this token's, or no longer exists.
    SessionGone,
}

impl EndCause {
    /// The runner's exit status for this cause (documented in `run --help`).
    pub fn exit_code(self) -> i32 {
        match self {
            EndCause::SessionEnded => crate::EXIT_SESSION_ENDED,
            EndCause::TokenRefused => crate::EXIT_TOKEN_REFUSED,
            EndCause::SessionGone => crate::EXIT_SESSION_GONE,
        }
    }
}

impl FetchError {
    /// Errors that no retry will fix: the runner stops on them.
    pub fn end_cause(&self) -> Option<EndCause> {
        match self {
            FetchError::SessionEnded(_) => Some(EndCause::SessionEnded),
            FetchError::Unauthorized(_) => Some(EndCause::TokenRefused),
            FetchError::NotFound => Some(EndCause::SessionGone),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    api: String,
    session: String,
    token_file: PathBuf,
}

impl ApiClient {
    /// A client for Lanyard at `api`: `https://`, or `http://` to loopback only, and it follows
    /// no redirects, so the runner token is never sent anywhere else.
    pub fn new(api: &str, session: &str, token_file: PathBuf) -> Result<Self, ApiUrlError> {
        let api = ApiUrl::parse(api)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lanyard-runner/", env!("CARGO_PKG_VERSION")));
        if api.as_str().starts_with("http://") {
            // Clear text stays on loopback: never through an HTTP proxy from the environment.
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .expect("an HTTP client with default TLS settings builds");
        Ok(Self {
            http,
            api: api.to_string(),
            session: session.to_string(),
            token_file,
        })
    }

    pub fn api(&self) -> &str {
        &self.api
    }

    pub fn session(&self) -> &str {
        &self.session
    }

    fn runner_token(&self) -> Result<String, FetchError> {
        let file = &self.token_file;
        if let Some(problem) = lanyard_core::file_mode::secret_file_problem(file) {
            return Err(FetchError::TokenFile(problem));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| FetchError::TokenFile(format!("{}: {e}", file.display())))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(FetchError::TokenFile(format!(
                "{} is empty",
                self.token_file.display()
            )));
        }
        Ok(token.to_string())
    }

    /// `GET /v1/sessions/{id}/credentials/github?host=&owner=`.
    pub async fn fetch(
        &self,
        host: Option<&str>,
        owner: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let token = self.runner_token()?;
        let mut query = Vec::new();
        if let Some(h) = host {
            query.push(("host", h));
        }
        if let Some(o) = owner {
            query.push(("owner", o));
        }
        let url = format!(
            "{}/v1/sessions/{}/credentials/github",
            self.api, self.session
        );
        let response = self
            .http
            .get(&url)
            .query(&query)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                FetchError::Transport(format!("{} ({why})", self.api))
            })?;
        let status = response.status().as_u16();
        if status == 200 {
            let body: GithubCredential<'static> = response
                .json()
                .await
                .map_err(|e| FetchError::Other(200, format!("unreadable credential ({e})")))?;
            return Ok(Fetched {
                token: SecretString::from(body.token.into_owned()),
                expires_at: body.expires_at,
                source: body.source,
                scheme: body.scheme,
                host: body.host.into_owned(),
                owner: body.owner.into_owned(),
            });
        }
        let retry_header = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let envelope: Option<ErrorEnvelope<'static>> = response.json().await.ok();
        let (code, message, choices, retry_after) = match envelope {
            Some(e) if !e.message.is_empty() => (
                e.error.into_owned(),
                e.message.into_owned(),
                e.choices.unwrap_or_default(),
                e.retry_after_seconds.map(u64::from),
            ),
            _ => (String::new(), format!("HTTP {status}"), Vec::new(), None),
        };
        Err(match (status, code.as_str()) {
            // Only Lanyard's own word ends a session: a proxy's or an ingress's 401/404/410
            // (no envelope, or another code) is a transient failure.
            (401, "unauthorized") => FetchError::Unauthorized(message),
            (404, "not_found") => FetchError::NotFound,
            (410, "session_ended") => FetchError::SessionEnded(message),
            (401 | 404 | 410, _) => FetchError::Unavailable {
                status,
                retry_after: retry_after.or(retry_header),
                message: format!("{message} (not Lanyard's answer: is a proxy in the way?)"),
            },
            (422, "owner_required") => {
                FetchError::OwnerRequired(choices.into_iter().map(|c| (c.host, c.owner)).collect())
            }
            (429 | 500..=599, _) => FetchError::Unavailable {
                status,
                retry_after: retry_after.or(retry_header),
                message,
            },
            _ => FetchError::Other(status, message),
        })
    }
}
