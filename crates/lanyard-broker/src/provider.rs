//! What a credential provider does, as the broker sees it: obtain a credential for a scope (a
//! mint, or a refresh), revoke one, and say how its credentials live and renew (CONTRACT §14's
//! table). The broker does the rest once, for every provider: the cache, the floor, single-flight
//! on this replica and across replicas, fair upstream concurrency, cooldowns, failure counting,
//! storing, and revoking what no live session holds.
//!
//! A provider is registered per host (or provider name) and connection kind in [`Providers`],
//! with the bound on its concurrent upstream calls.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lanyard_core::github::{PermissionSet, RepoName};
use lanyard_core::wire::CredentialSource;
use lanyard_store::{ConnectionKind, ConnectionRecord};
use secrecy::SecretString;

use crate::slots::FairSlots;

/// A provider's answer, still to come. Boxed, so providers of every kind sit behind one
/// `dyn Provider`.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a provider's credentials live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Obtained upstream with a true expiry (a GitHub App installation token, an OAuth access
    /// token): cached, renewed ahead of the floor, obtained once per scope across replicas, and
    /// revoked upstream once no live session holds it.
    Expiring,
    /// Held by the connection itself (a personal access token, a stored secret): opened on each
    /// request, never cached, obtained or revoked by Lanyard. It may carry an expiry set by whoever
    /// made it, past which it is never served.
    Static,
}

/// How a provider's credentials are renewed, and what that does to the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Minted anew for each scope, the previous living out its own life (GitHub App
    /// installation tokens). Each scope is minted by one caller at a time across replicas, and
    /// distinct scopes side by side.
    Mint,
    /// Refreshed with the connection's refresh token (an OAuth refresh-token grant): one refresh
    /// per connection at a time across replicas, whichever scope asks, since the refresh token
    /// may rotate. `revokes_previous` when the refresh ends the previous access token (GitLab's
    /// does): such a token is served with the instant it is rotated as its expiry, and the
    /// connection's scopes must share one cache key ([`crate::scope::cache_key`] for its
    /// connection kind), since a second access token would end the first.
    Refresh { revokes_previous: bool },
}

impl Renewal {
    /// Whether renewing a credential ends the one before it.
    pub fn ends_previous(self) -> bool {
        matches!(
            self,
            Renewal::Refresh {
                revokes_previous: true
            }
        )
    }
}

/// What a provider is asked to obtain.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The team's connection the scope is served through.
    pub connection: &'a ConnectionRecord,
    pub repositories: &'a [RepoName],
    pub permissions: &'a PermissionSet,
    /// For a [`Renewal::Refresh`] provider, the connection's refresh token, opened by the
    /// broker from the connection as it stands under the connection's lock. `None` for every
    /// other provider, and for a connection that has none.
    pub refresh_token: Option<&'a SecretString>,
}

/// A credential as a provider handed it over.
pub struct Obtained {
    pub secret: SecretString,
    /// When it stops working; `None` for a credential that does not expire on its own.
    pub expires_at: Option<DateTime<Utc>>,
    /// The repositories it covers as the provider granted them (empty: as asked).
    pub repositories: Vec<String>,
    /// Its permissions as the provider granted them (empty: as asked).
    pub permissions: BTreeMap<String, String>,
    /// The connection's new refresh token, when the refresh rotated it. The broker commits it,
    /// sealed, before any part of the answer is served, whatever becomes of the credential.
    /// A provider hands it over as soon as its token endpoint answered: a check that fails
    /// afterwards (a missing expiry, a short life) is the broker's to make, so an error never
    /// drops a rotated refresh token the provider has already ended the previous one for.
    pub rotated: Option<SecretString>,
}

impl std::fmt::Debug for Obtained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obtained")
            .field("expires_at", &self.expires_at)
            .field("repositories", &self.repositories)
            .field("rotated", &self.rotated.is_some())
            .finish_non_exhaustive()
    }
}

/// What a revocation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Revoked,
    /// The provider says it was dead already (expired, or revoked before).
    AlreadyDead,
}

/// The provider families of CONTRACT §14, as errors name them at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Github,
}

impl ProviderKind {
    /// As a person names it.
    pub fn title(self) -> &'static str {
        match self {
            ProviderKind::Github => "GitHub",
        }
    }
}

/// Why a provider did not hand a credential over.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// Down, slow or throttling: retry later.
    #[error("unavailable: {message}")]
    Unavailable {
        retry_after: Option<u64>,
        message: String,
    },
    /// Refused the request itself: retrying will not help.
    #[error("refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The connection's own credential is past its expiry.
    #[error("the credential has expired")]
    Expired,
    /// Misconfigured, or a stored value that cannot be used.
    #[error("{0}")]
    Internal(String),
}

/// One credential provider. Implementations talk to their upstream; everything time-, cache-
/// or replica-related is the broker's.
pub trait Provider: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> ProviderKind;
    /// What the credentials it serves are, on the wire and in metrics.
    fn source(&self) -> CredentialSource;
    fn lifetime(&self) -> Lifetime;
    /// How its credentials are renewed; not asked of a [`Lifetime::Static`] provider.
    fn renewal(&self) -> Renewal {
        Renewal::Mint
    }
    /// A credential for the scope: minted, refreshed, or (for a [`Lifetime::Static`] one) opened.
    fn obtain<'a>(&'a self, ask: Ask<'a>) -> Pending<'a, Result<Obtained, ProviderError>>;
    /// Ends a credential it handed over. Only called for [`Lifetime::Expiring`] providers.
    fn revoke<'a>(
        &'a self,
        secret: &'a SecretString,
    ) -> Pending<'a, Result<Revoked, ProviderError>>;
}

/// A provider as registered: what serves a host's connections of one kind, and the bound on
/// its concurrent upstream calls.
#[derive(Debug, Clone)]
pub struct Registered {
    pub provider: Arc<dyn Provider>,
    /// Fair between teams (see [`crate::slots`]).
    pub slots: Arc<FairSlots>,
}

/// Every configured provider, by the host (or provider name) its connections name and their
/// kind. Built at start-up; read-only afterwards.
#[derive(Debug, Default)]
pub struct Providers {
    by_host: HashMap<String, Vec<(ConnectionKind, Registered)>>,
}

impl Providers {
    /// Registers `provider` for `host`'s connections of `kind`, with at most `max_concurrent`
    /// upstream calls in flight at once.
    pub fn register(
        &mut self,
        host: &str,
        kind: ConnectionKind,
        provider: Arc<dyn Provider>,
        max_concurrent: usize,
    ) {
        let registered = Registered {
            provider,
            slots: FairSlots::new(max_concurrent),
        };
        let kinds = self.by_host.entry(host.to_string()).or_default();
        kinds.retain(|(k, _)| *k != kind);
        kinds.push((kind, registered));
    }

    /// How `host`'s credentials of `kind` are renewed ([`Renewal::Mint`] when no provider
    /// serves them: such a scope is never obtained).
    pub fn renewal(&self, host: &str, kind: ConnectionKind) -> Renewal {
        let registered = self.get(host, kind);
        registered.map_or(Renewal::Mint, |r| r.provider.renewal())
    }

    pub fn get(&self, host: &str, kind: ConnectionKind) -> Option<&Registered> {
        let kinds = self.by_host.get(host)?;
        kinds.iter().find(|(k, _)| *k == kind).map(|(_, r)| r)
    }

    /// The provider whose credentials `host`'s stored tokens are: the one there that obtains
    /// expiring credentials (each host has at most one, CONTRACT §14).
    pub fn expiring(&self, host: &str) -> Option<&Registered> {
        let kinds = self.by_host.get(host)?;
        kinds
            .iter()
            .map(|(_, r)| r)
            .find(|r| r.provider.lifetime() == Lifetime::Expiring)
    }
}
