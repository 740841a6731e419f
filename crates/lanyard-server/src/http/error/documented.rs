//! Errors that document themselves (CONTRACT §17): every error type the edge answers with gives
//! an example of each of its variants, and the codes an operation's OpenAPI entry lists are those
//! examples put through the one mapping in [`super::from_domain`]. So the document cannot list a
//! code the mapping no longer makes, nor miss one it makes.
//!
//! Each `examples` ends with an exhaustive `match`: a new variant does not compile until it is
//! named there, next to the list it must join.

use lanyard_core::github::{Owner, RepoRef};
use lanyard_core::{ErrorCode, Host};
use lanyard_github::GithubError;
use lanyard_store::StoreError;

use super::ApiError;
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

/// An error type the edge answers with.
pub trait Documented: Sized + Into<ApiError> {
    /// One value of every variant, and of every variant of what it wraps.
    fn examples() -> Vec<Self>;

    /// Every code this type can become, sorted.
    fn codes() -> Vec<ErrorCode> {
        codes_of(Self::examples())
    }
}

/// The codes some errors become, sorted: for an operation that can fail in only some of its
/// type's ways.
pub fn codes_of<E: Into<ApiError>>(errors: impl IntoIterator<Item = E>) -> Vec<ErrorCode> {
    let mut codes: Vec<ErrorCode> = errors.into_iter().map(|e| e.into().code).collect();
    codes.sort_by_key(|c| c.as_str());
    codes.dedup();
    codes
}

fn owner() -> Owner {
    Owner::parse("acme").expect("a valid owner")
}

fn wrapped<T: Documented, U>(wrap: impl Fn(T) -> U) -> impl Iterator<Item = U> {
    T::examples().into_iter().map(wrap)
}

impl Documented for StoreError {
    fn examples() -> Vec<Self> {
        StoreError::examples()
    }
}

impl Documented for GithubError {
    fn examples() -> Vec<Self> {
        let all = vec![
            GithubError::Unavailable {
                status: None,
                retry_after: Some(1),
                message: String::new(),
            },
            GithubError::Rejected {
                status: 422,
                message: String::new(),
            },
            GithubError::NoApp(String::new()),
            GithubError::BadKey(String::new()),
        ];
        for e in &all {
            match e {
                GithubError::Unavailable { .. }
                | GithubError::Rejected { .. }
                | GithubError::NoApp(_)
                | GithubError::BadKey(_) => {}
            }
        }
        all
    }
}

impl Documented for AccountError {
    fn examples() -> Vec<Self> {
        let mut all = vec![AccountError::KeyNotFound];
        all.extend(wrapped(AccountError::Store));
        for e in &all {
            match e {
                AccountError::KeyNotFound | AccountError::Store(_) => {}
            }
        }
        all
    }
}

impl Documented for ConnectionError {
    fn examples() -> Vec<Self> {
        use ConnectionError as C;
        let mut all = vec![
            C::InvalidOwner(Owner::parse("").expect_err("an invalid owner")),
            C::MissingHost,
            C::OneCredential,
            C::InvalidPat,
            C::InstallationOutOfRange,
            C::UnknownHost(String::new()),
            C::NoApp(String::new()),
            C::ProofRequired,
            C::InstallationMismatch {
                installation: 1_u64.try_into().expect("a positive id"),
                found: String::new(),
                owner: owner(),
            },
            C::InstallationMissing {
                installation: 1_u64.try_into().expect("a positive id"),
                host: String::new(),
            },
            C::PatInvalid,
            C::Exists {
                host: String::new(),
                owner: owner(),
            },
            C::NotFound,
            C::NotPat,
            C::RateLimited { retry_after: 1 },
        ];
        all.extend(wrapped(C::Github));
        all.extend(wrapped(C::Store));
        for e in &all {
            match e {
                C::InvalidOwner(_)
                | C::MissingHost
                | C::OneCredential
                | C::InvalidPat
                | C::InstallationOutOfRange
                | C::UnknownHost(_)
                | C::NoApp(_)
                | C::ProofRequired
                | C::InstallationMismatch { .. }
                | C::InstallationMissing { .. }
                | C::PatInvalid
                | C::Exists { .. }
                | C::NotFound
                | C::NotPat
                | C::RateLimited { .. }
                | C::Github(_)
                | C::Store(_) => {}
            }
        }
        all
    }
}

impl Documented for SessionError {
    fn examples() -> Vec<Self> {
        use SessionError as S;
        let mut all = vec![
            S::RepoCount,
            S::InvalidRepo(RepoRef::parse("").expect_err("an invalid repository")),
            S::UnknownHost {
                repo: String::new(),
                host: String::new(),
            },
            S::WrongScheme {
                repo: String::new(),
                scheme: lanyard_core::github::Scheme::Https,
            },
            S::InvalidPermissions(lanyard_core::github::PermissionError::Empty),
            S::InvalidTtl,
            S::TtlTooLong {
                tier: lanyard_core::Tier::Free,
                max_seconds: 1,
            },
            S::RepoNotConnected {
                repo: String::new(),
                host: String::new(),
                owner: owner(),
            },
            S::QuotaExceeded {
                active: 1,
                tier: lanyard_core::Tier::Free,
            },
            S::NotFound,
            S::RateLimited { retry_after: 1 },
        ];
        all.extend(wrapped(S::Store));
        for e in &all {
            match e {
                S::RepoCount
                | S::InvalidRepo(_)
                | S::UnknownHost { .. }
                | S::WrongScheme { .. }
                | S::InvalidPermissions(_)
                | S::InvalidTtl
                | S::TtlTooLong { .. }
                | S::RepoNotConnected { .. }
                | S::QuotaExceeded { .. }
                | S::NotFound
                | S::RateLimited { .. }
                | S::Store(_) => {}
            }
        }
        all
    }
}

impl Documented for BrokerError {
    fn examples() -> Vec<Self> {
        use BrokerError as B;
        let (host, owner) = (Host::parse("github.com").expect("a host"), String::new());
        let mut all = vec![
            B::Unavailable {
                retry_after: Some(1),
            },
            B::NotConnected {
                host: host.clone(),
                owner: owner.clone(),
            },
            B::Revoked {
                host: host.clone(),
                owner: owner.clone(),
            },
            B::Suspended {
                host: host.clone(),
                owner: owner.clone(),
            },
            B::Expired {
                kind: lanyard_store::ConnectionKind::Pat,
                host,
                owner,
            },
            B::HolderEnded,
            B::Stale,
            B::RateLimited { retry_after: 1 },
            B::Internal(String::new()),
        ];
        all.push(B::Rejected {
            kind: ProviderKind::Github,
            status: 422,
            message: String::new(),
        });
        all.extend(wrapped(|e| B::Store(std::sync::Arc::new(e))));
        for e in &all {
            match e {
                B::Unavailable { .. }
                | B::Rejected { .. }
                | B::NotConnected { .. }
                | B::Revoked { .. }
                | B::Suspended { .. }
                | B::Expired { .. }
                | B::HolderEnded
                | B::Stale
                | B::RateLimited { .. }
                | B::Store(_)
                | B::Internal(_) => {}
            }
        }
        all
    }
}

impl Documented for CredentialError {
    fn examples() -> Vec<Self> {
        use CredentialError as C;
        let mut all = vec![C::NotFound, C::SessionEnded, C::OwnerRequired(Vec::new())];
        all.extend(wrapped(C::Broker));
        for e in &all {
            match e {
                C::NotFound | C::SessionEnded | C::OwnerRequired(_) | C::Broker(_) => {}
            }
        }
        all
    }
}

impl Documented for InstallError {
    fn examples() -> Vec<Self> {
        use InstallError as I;
        let mut all = vec![
            I::UnknownHost(String::new()),
            I::Unconfigured(String::new()),
            I::InvalidReturnTo,
            I::InvalidState,
            I::MissingCode,
            I::NotOwned,
            I::RateLimited { retry_after: 1 },
        ];
        all.extend(wrapped(I::Github));
        all.extend(wrapped(I::Store));
        for e in &all {
            match e {
                I::UnknownHost(_)
                | I::Unconfigured(_)
                | I::InvalidReturnTo
                | I::InvalidState
                | I::MissingCode
                | I::NotOwned
                | I::RateLimited { .. }
                | I::Github(_)
                | I::Store(_) => {}
            }
        }
        all
    }
}

impl Documented for WebhookError {
    fn examples() -> Vec<Self> {
        use WebhookError as W;
        let mut all = vec![
            W::NotConfigured,
            W::InvalidSignature,
            W::MissingDelivery,
            W::InvalidPayload {
                event: "installation",
                reason: String::new(),
            },
        ];
        all.extend(wrapped(W::Store));
        for e in &all {
            match e {
                W::NotConfigured
                | W::InvalidSignature
                | W::MissingDelivery
                | W::InvalidPayload { .. }
                | W::Store(_) => {}
            }
        }
        all
    }
}

impl Documented for AdminError {
    fn examples() -> Vec<Self> {
        use AdminError as A;
        let mut all = vec![
            A::InvalidName(lanyard_core::TeamName::parse("").expect_err("an invalid name")),
            A::InvalidTier,
            A::InvalidExternalId,
            A::InvalidEmail,
            A::NotFound,
        ];
        all.extend(wrapped(A::Account));
        all.extend(wrapped(A::Connection));
        all.extend(wrapped(A::Store));
        for e in &all {
            match e {
                A::InvalidName(_)
                | A::InvalidTier
                | A::InvalidExternalId
                | A::InvalidEmail
                | A::NotFound
                | A::Account(_)
                | A::Connection(_)
                | A::Store(_) => {}
            }
        }
        all
    }
}

impl Documented for E2eError {
    fn examples() -> Vec<Self> {
        use E2eError as E;
        let mut all = vec![
            E::InvalidTier,
            E::TierNotAllowed(lanyard_core::Tier::Growth),
            E::NotTestCohort,
            E::Seed(String::new()),
        ];
        all.extend(wrapped(E::SeedConnection));
        all.extend(wrapped(E::Session));
        all.extend(wrapped(E::Store));
        for e in &all {
            match e {
                E::InvalidTier
                | E::TierNotAllowed(_)
                | E::NotTestCohort
                | E::Seed(_)
                | E::SeedConnection(_)
                | E::Session(_)
                | E::Store(_) => {}
            }
        }
        all
    }
}

#[cfg(test)]
mod tests;
