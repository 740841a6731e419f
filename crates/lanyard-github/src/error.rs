//! What can go wrong talking to GitHub, told apart so callers can tell "GitHub is down, retry"
//! from "this request is wrong".

use reqwest::StatusCode;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GithubError {
    /// GitHub is down, slow, or throttling: retry later.
    #[error("GitHub is unavailable: {message}")]
    Unavailable {
        status: Option<u16>,
        retry_after: Option<u64>,
        message: String,
    },
    /// GitHub refused the request itself (404, 422, ...): retrying will not help.
    #[error("GitHub rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// This host has no GitHub App configured.
    #[error("no GitHub App is configured for {0}")]
    NoApp(String),
    #[error("the GitHub App private key is unusable: {0}")]
    BadKey(String),
}

impl GithubError {
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GithubError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub(crate) fn transport_error(e: reqwest::Error) -> GithubError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    GithubError::Unavailable {
        status: None,
        retry_after: None,
        message: what.to_string(),
    }
}

pub(crate) async fn parse<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GithubError> {
    if !response.status().is_success() {
        return Err(status_error(response).await);
    }
    response
        .json::<T>()
        .await
        .map_err(|e| GithubError::Unavailable {
            status: None,
            retry_after: None,
            message: format!("unexpected response body ({e})"),
        })
}

/// 5xx, timeouts and rate limits are "unavailable"; other 4xx are "rejected".
pub(crate) async fn status_error(response: reqwest::Response) -> GithubError {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    let exhausted = header("x-ratelimit-remaining").as_deref() == Some("0");
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (retry_after.is_some() || exhausted));
    // GitHub's error bodies carry a `message`; never echo anything else.
    let message = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(|m| m.chars().take(200).collect())
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    if status.is_server_error() || rate_limited {
        GithubError::Unavailable {
            status: Some(status.as_u16()),
            retry_after,
            message,
        }
    } else {
        GithubError::Rejected {
            status: status.as_u16(),
            message,
        }
    }
}
