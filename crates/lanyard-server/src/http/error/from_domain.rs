//! Every domain error becomes an [`ApiError`] here, and nowhere else: its code, status, message
//! and, where it has one, `Retry-After` or the choices an ambiguous request had.

use std::sync::Arc;

use lanyard_core::ErrorCode;
use lanyard_github::GithubError;
use lanyard_store::{ConnectionKind, StoreError};

use super::{unknown_route, ApiError};
use crate::broker::provider::ProviderKind;
use crate::broker::BrokerError;
use crate::domain::accounts::AccountError;
use crate::domain::admin::AdminError;
use crate::domain::connections::ConnectionError;
use crate::domain::credentials::CredentialError;
use crate::domain::e2e::E2eError;
use crate::domain::installations::InstallError;
use crate::domain::sessions::SessionError;
use crate::domain::webhooks::WebhookError;

/// A sentence from a domain error's text: with a full stop, and capitalised when it starts with a
/// plain word. A value it starts with (`https://…`, `ttl_seconds`, `lk_…`) is left as written.
fn sentence(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let first_word = text.split(' ').next().unwrap_or_default();
    let mut out = if first_word.chars().all(|c| c.is_ascii_lowercase()) {
        let mut chars = text.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    } else {
        text
    };
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
            BrokerError::Rejected { kind, message, .. } => match kind {
                ProviderKind::Github => ApiError::new(
                    ErrorCode::GithubRejected,
                    format!("GitHub refused the request: {message}"),
                ),
            },
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
            e @ BrokerError::Expired { kind, .. } => match kind {
                ConnectionKind::Pat | ConnectionKind::GithubApp => {
                    ApiError::new(ErrorCode::PatExpired, sentence(&e))
                }
            },
            e @ BrokerError::HolderEnded => ApiError::new(ErrorCode::SessionEnded, sentence(&e)),
            e @ BrokerError::RateLimited { retry_after } => {
                ApiError::new(ErrorCode::RateLimited, sentence(&e)).with_retry_after(retry_after)
            }
            BrokerError::Store(e) => match Arc::try_unwrap(e) {
                Ok(e) => e.into(),
                Err(shared) => ApiError::internal(anyhow::anyhow!("{shared}")),
            },
            BrokerError::Internal(m) => ApiError::internal(anyhow::anyhow!(m)),
            // Handled inside the broker; reaching the edge would be a bug.
            e @ BrokerError::Stale => ApiError::internal(anyhow::anyhow!(e.to_string())),
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
            AdminError::Account(a) => a.into(),
            AdminError::Connection(c) => c.into(),
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
            E2eError::Seed(_)
            | E2eError::SeedConnection(_)
            | E2eError::Session(_)
            | E2eError::Store(_) => None,
        };
        match (code, e) {
            (Some(code), e) => ApiError::new(code, sentence(&e)),
            // GitHub down or limiting is worth a retry; any other refusal is the operator's seed.
            (None, E2eError::SeedConnection(c @ ConnectionError::Github(_))) => c.into(),
            (None, E2eError::Session(s)) => s.into(),
            (None, E2eError::Store(s)) => s.into(),
            (None, seed) => ApiError::internal(anyhow::anyhow!("{seed}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn a_sentence_capitalises_a_word_but_never_a_value() {
        assert_eq!(sentence(&"the session ended"), "The session ended.");
        assert_eq!(
            sentence(&"ttl_seconds must be positive"),
            "ttl_seconds must be positive."
        );
        assert_eq!(
            sentence(&"https://github.com/acme is not connected."),
            "https://github.com/acme is not connected."
        );
    }
}
