//! `ApiError`: the one error type handlers return, rendered as the envelope of CONTRACT §5, and
//! the one place where every domain error becomes an envelope.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lanyard_core::wire::{ErrorEnvelope, HostOwner};
use lanyard_core::ErrorCode;
use lanyard_github::GithubError;
use lanyard_store::StoreError;

use crate::broker::BrokerError;
use crate::domain::accounts::AccountError;
use crate::domain::admin::AdminError;
use crate::domain::connections::ConnectionError;
use crate::domain::credentials::CredentialError;
use crate::domain::e2e::E2eError;
use crate::domain::installations::InstallError;
use crate::domain::sessions::SessionError;
use crate::domain::webhooks::WebhookError;

/// Per-request facts the error renderer needs, set by the request middleware.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub public_url: Arc<str>,
}

tokio::task_local! {
    pub static REQUEST: RequestContext;
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    message: Cow<'static, str>,
    retry_after: Option<u32>,
    choices: Option<Vec<HostOwner>>,
    details: serde_json::Map<String, serde_json::Value>,
    /// For 5xx: the cause, logged but never sent.
    cause: Option<anyhow::Error>,
}

/// What a 5xx says to the client; the cause stays in the log.
const OPAQUE_MESSAGE: &str =
    "Lanyard could not complete the request; the server log has the cause under this request id.";

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: code.spec().retry_after_seconds,
            choices: None,
            details: serde_json::Map::new(),
            cause: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "No such resource.")
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// An unexpected failure: logged with its cause chain, answered opaquely.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(ErrorCode::InternalError, OPAQUE_MESSAGE);
        e.cause = Some(cause.into());
        e
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.spec().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The unknown-route answer. The e2e guard answers with exactly this too.
pub fn unknown_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No such route.")
}

/// A sentence from a domain error's text: capitalised, with a full stop.
fn sentence(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                let mut err = ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "The database is not answering; retry shortly.",
                );
                err.cause = Some(e.into());
                err
            }
            other => ApiError::internal(other),
        }
    }
}

/// GitHub errors as answers: down is 503 with Retry-After, refused is 502.
impl From<GithubError> for ApiError {
    fn from(e: GithubError) -> Self {
        match e {
            GithubError::Unavailable { retry_after, .. } => {
                let err = ApiError::new(
                    ErrorCode::GithubUnavailable,
                    "GitHub is not answering; retry shortly.",
                );
                match retry_after {
                    Some(s) => err.with_retry_after(u32::try_from(s).unwrap_or(u32::MAX)),
                    None => err,
                }
            }
            GithubError::Rejected { message, .. } => ApiError::new(
                ErrorCode::GithubRejected,
                format!("GitHub refused the request: {message}"),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::KeyNotFound => ApiError::not_found(),
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        use ConnectionError as C;
        let code = match &e {
            C::InvalidOwner(_)
            | C::MissingHost
            | C::OneCredential
            | C::InvalidPat
            | C::InstallationOutOfRange => Some(ErrorCode::InvalidConnection),
            C::UnknownHost(_) | C::NoApp(_) => Some(ErrorCode::UnknownGithubHost),
            C::InstallationMismatch { .. } | C::InstallationMissing { .. } => {
                Some(ErrorCode::InstallationMismatch)
            }
            C::Exists { .. } => Some(ErrorCode::ConnectionExists),
            C::ProofRequired => Some(ErrorCode::InstallationProofRequired),
            C::PatInvalid => Some(ErrorCode::PatInvalid),
            C::NotPat => Some(ErrorCode::InvalidConnection),
            C::RateLimited { .. } => Some(ErrorCode::RateLimited),
            C::NotFound | C::Github(_) | C::Store(_) => None,
        };
        match (code, e) {
            (Some(code), C::RateLimited { retry_after }) => {
                ApiError::new(code, sentence(&C::RateLimited { retry_after }))
                    .with_retry_after(retry_after)
            }
            (Some(code), e) => ApiError::new(code, sentence(&e)),
            (None, C::Github(g)) => g.into(),
            (None, C::Store(s)) => s.into(),
            (None, _) => ApiError::not_found(),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        use SessionError as S;
        let code = match &e {
            S::RepoCount | S::InvalidRepo(_) | S::WrongScheme { .. } => {
                Some(ErrorCode::InvalidRepoUrl)
            }
            S::UnknownHost { .. } => Some(ErrorCode::UnknownGithubHost),
            S::InvalidPermissions(_) => Some(ErrorCode::InvalidPermissions),
            S::InvalidTtl => Some(ErrorCode::InvalidTtl),
            S::TtlTooLong { .. } => Some(ErrorCode::TtlTooLong),
            S::RepoNotConnected { .. } => Some(ErrorCode::RepoNotConnected),
            S::QuotaExceeded { .. } => Some(ErrorCode::QuotaExceeded),
            S::RateLimited { .. } => Some(ErrorCode::RateLimited),
            S::NotFound | S::Store(_) => None,
        };
        match (code, e) {
            (Some(code), S::RateLimited { retry_after }) => {
                ApiError::new(code, sentence(&S::RateLimited { retry_after }))
                    .with_retry_after(retry_after)
            }
            (Some(code), S::RepoNotConnected { repo, host, owner }) => {
                let e = S::RepoNotConnected {
                    repo: repo.clone(),
                    host,
                    owner,
                };
                ApiError::new(code, sentence(&e)).with_detail("repo", repo.into())
            }
            (Some(code), e) => ApiError::new(code, sentence(&e)),
            (None, S::Store(s)) => s.into(),
            (None, _) => ApiError::not_found(),
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Unavailable { retry_after } => {
                let err = ApiError::new(
                    ErrorCode::GithubUnavailable,
                    "GitHub is unavailable and no cached token has enough life left; retry shortly.",
                );
                match retry_after {
                    Some(s) => err.with_retry_after(u32::try_from(s).unwrap_or(u32::MAX)),
                    None => err,
                }
            }
            BrokerError::Rejected(rejected) => rejected.into(),
            BrokerError::NotConnected { host, owner } => ApiError::new(
                ErrorCode::RepoNotConnected,
                format!("{owner} is no longer connected to this team on {host}."),
            ),
            e @ BrokerError::Revoked { .. } => {
                ApiError::new(ErrorCode::ConnectionRevoked, sentence(&e))
            }
            e @ BrokerError::Suspended { .. } => {
                ApiError::new(ErrorCode::ConnectionSuspended, sentence(&e))
            }
            e @ BrokerError::PatExpired { .. } => {
                ApiError::new(ErrorCode::PatExpired, sentence(&e))
            }
            e @ BrokerError::RateLimited { retry_after } => {
                ApiError::new(ErrorCode::RateLimited, sentence(&e)).with_retry_after(retry_after)
            }
            BrokerError::Store(e) => match Arc::try_unwrap(e) {
                Ok(e) => e.into(),
                Err(shared) => ApiError::internal(anyhow::anyhow!("{shared}")),
            },
            BrokerError::Internal(m) => ApiError::internal(anyhow::anyhow!(m)),
        }
    }
}

impl From<CredentialError> for ApiError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::NotFound => ApiError::new(ErrorCode::NotFound, sentence(&e)),
            CredentialError::SessionEnded => ApiError::new(ErrorCode::SessionEnded, sentence(&e)),
            CredentialError::OwnerRequired(choices) => {
                let message = sentence(&CredentialError::OwnerRequired(Vec::new()));
                let mut err = ApiError::new(ErrorCode::OwnerRequired, message);
                err.choices = Some(choices);
                err
            }
            CredentialError::Broker(b) => b.into(),
        }
    }
}

impl From<InstallError> for ApiError {
    fn from(e: InstallError) -> Self {
        use InstallError as I;
        let code = match &e {
            I::UnknownHost(_) => Some(ErrorCode::UnknownGithubHost),
            I::Unconfigured(_) => Some(ErrorCode::InstallationFlowUnconfigured),
            I::InvalidReturnTo => Some(ErrorCode::InvalidReturnTo),
            I::InvalidState | I::MissingCode => Some(ErrorCode::InvalidState),
            I::NotOwned => Some(ErrorCode::InstallationNotOwned),
            I::RateLimited { .. } => Some(ErrorCode::RateLimited),
            I::Github(_) | I::Store(_) => None,
        };
        match (code, e) {
            (Some(code), I::RateLimited { retry_after }) => {
                ApiError::new(code, sentence(&I::RateLimited { retry_after }))
                    .with_retry_after(retry_after)
            }
            (Some(code), e) => ApiError::new(code, sentence(&e)),
            (None, I::Github(g)) => g.into(),
            (None, I::Store(s)) => s.into(),
            (None, other) => ApiError::internal(anyhow::anyhow!("{other}")),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotConfigured => unknown_route(),
            WebhookError::InvalidSignature => {
                ApiError::new(ErrorCode::InvalidSignature, sentence(&e))
            }
            WebhookError::MissingDelivery | WebhookError::InvalidPayload { .. } => {
                ApiError::new(ErrorCode::InvalidBody, sentence(&e))
            }
            WebhookError::Store(s) => s.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::InvalidName(_)
            | AdminError::InvalidExternalId
            | AdminError::InvalidEmail => ApiError::new(ErrorCode::InvalidTeam, sentence(&e)),
            AdminError::InvalidTier => ApiError::new(ErrorCode::InvalidTier, sentence(&e)),
            AdminError::NotFound => ApiError::not_found(),
            AdminError::Session(s) => s.into(),
            AdminError::Store(s) => s.into(),
        }
    }
}

impl From<E2eError> for ApiError {
    fn from(e: E2eError) -> Self {
        let code = match &e {
            E2eError::InvalidTier => Some(ErrorCode::InvalidTier),
            E2eError::TierNotAllowed(_) => Some(ErrorCode::TierNotAllowed),
            E2eError::NotTestCohort => Some(ErrorCode::NotTestCohort),
            E2eError::Seed(_) | E2eError::Session(_) | E2eError::Store(_) => None,
        };
        match (code, e) {
            (Some(code), e) => ApiError::new(code, sentence(&e)),
            (None, E2eError::Session(s)) => s.into(),
            (None, E2eError::Store(s)) => s.into(),
            (None, seed) => ApiError::internal(anyhow::anyhow!("{seed}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let ctx = REQUEST.try_with(Clone::clone).ok();
        let request_id: Cow<'_, str> = ctx.as_ref().map_or(Cow::Borrowed("none"), |c| {
            Cow::Owned(c.request_id.to_string())
        });
        let public_url = ctx.as_ref().map_or("", |c| &c.public_url);
        let message = if status.is_server_error() {
            match &self.cause {
                Some(cause) => {
                    tracing::error!(code = %self.code, error = format!("{cause:#}"), "request failed")
                }
                None => {
                    tracing::error!(code = %self.code, message = %self.message, "request failed")
                }
            }
            if self.code == ErrorCode::InternalError {
                OPAQUE_MESSAGE.into()
            } else {
                self.message
            }
        } else {
            self.message
        };
        let body = ErrorEnvelope {
            ok: false,
            error: Cow::Borrowed(self.code.as_str()),
            message,
            request_id,
            agent_action: self.code.agent_action(public_url),
            retry_after_seconds: self.retry_after,
            choices: self.choices,
            details: self.details,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
