//! One upstream call for a scope, owned by a task of its own: the provider's credential, checked
//! against the floor, sealed and stored with its holder check, or revoked when nobody may hold
//! it; and a refresh token the provider rotated, committed before any of it is served. It holds
//! the provider's slot and the scope's lock until then, extending the lock while it runs.

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::github::RepoName;
use lanyard_core::{Actor, Host};
use lanyard_store::{ConnectionRecord, Rotated, Rotation, Stored, TokenRecord};
use secrecy::SecretString;
use uuid::Uuid;

use crate::cache::CachedToken;
use crate::lock::{MintLock, LOCK_EXTEND_EVERY};
use crate::metrics::BrokerMetrics;
use crate::provider::{Ask, Obtained, Provider, ProviderError, Renewal};
use crate::revoke::revoke_one;
use crate::slots::SlotPermit;
use crate::token::Freshness;
use crate::{refresh_aad, token_aad, BrokerError};

/// How often a running mint looks whether its lock is due for extending (by the injected
/// clock, so a test's clock moves it too).
const EXTEND_POLL: Duration = Duration::from_millis(500);

/// How long a mint's lock is extended at most: well past a provider's timeouts and the retries
/// of a rotation's commit.
const MAX_EXTENDED: Duration = Duration::from_secs(120);

/// Attempts at committing a rotated refresh token whose first commit failed, and the wait
/// before the first retry (doubling after each, up to [`MAX_ROTATION_RETRY`]): about a minute in
/// all, with the lock held, since a refresh token the provider rotated exists nowhere else.
const ROTATION_ATTEMPTS: u32 = 12;
const ROTATION_RETRY: Duration = Duration::from_millis(100);
const MAX_ROTATION_RETRY: Duration = Duration::from_secs(8);

/// One mint with everything it needs owned, so it runs to its end on a task of its own.
pub(crate) struct MintJob {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) store: lanyard_store::Store,
    pub(crate) sealer: crate::crypto::Sealer,
    pub(crate) clock: Arc<dyn lanyard_core::Clock>,
    pub(crate) metrics: BrokerMetrics,
    pub(crate) rule: Freshness,
    pub(crate) team_id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) cache_key: String,
    pub(crate) host: Host,
    pub(crate) connection: ConnectionRecord,
    pub(crate) repositories: Vec<RepoName>,
    pub(crate) permissions: lanyard_core::github::PermissionSet,
}

/// What a mint holds while it runs: a slot of the provider, and the scope's cross-replica lock.
pub(crate) struct Held {
    pub(crate) lock: MintLock,
    pub(crate) slot: SlotPermit,
}

impl MintJob {
    /// The mint, its lock extended while it runs, then its slot and lock given back.
    pub(crate) async fn run(self, held: Held) -> (bool, Result<CachedToken, BrokerError>) {
        // Side by side: the mint never waits for an extension.
        let done = tokio::select! {
            done = self.mint_and_store() => done,
            never = self.keep_extended(&held.lock) => match never {},
        };
        held.lock.release().await;
        drop(held.slot);
        done
    }

    /// Extends the lock every [`LOCK_EXTEND_EVERY`] of the injected clock, for at most
    /// [`MAX_EXTENDED`]: a mint hung past that lets its lock lapse rather than hold the scope (or
    /// the connection) for ever. Never returns.
    async fn keep_extended(&self, lock: &MintLock) -> std::convert::Infallible {
        let started = self.clock.now();
        let mut extended_at = started;
        let every = chrono::Duration::from_std(LOCK_EXTEND_EVERY).unwrap_or(chrono::Duration::MAX);
        let most = chrono::Duration::from_std(MAX_EXTENDED).unwrap_or(chrono::Duration::MAX);
        let mut poll = tokio::time::interval(EXTEND_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            let now = self.clock.now();
            if now - extended_at < every {
                continue;
            }
            if now - started >= most {
                tracing::warn!(host = %self.host, connection = %self.connection.id, "a mint has run too long; its lock is left to lapse");
                return std::future::pending().await;
            }
            if lock.extend().await {
                extended_at = now;
            } else {
                tracing::warn!(host = %self.host, connection = %self.connection.id, "a mint could not extend its lock; another replica may take it");
            }
        }
    }

    /// The provider's credential, checked against the floor and stored with its holder check.
    /// Says whether the provider handed one over, and the stored token (or why there is none).
    ///
    /// A refresh the provider refuses is tried once more when the connection's refresh token
    /// moved on meanwhile (a refresh elsewhere committed a newer one): refused for using the old
    /// one, it says nothing about the connection.
    async fn mint_and_store(&self) -> (bool, Result<CachedToken, BrokerError>) {
        let mut connection = std::borrow::Cow::Borrowed(&self.connection);
        loop {
            let refresh_token = match self.refresh_token(&connection) {
                Ok(token) => token,
                Err(e) => return (false, Err(e)),
            };
            let ask = Ask {
                connection: &connection,
                repositories: &self.repositories,
                permissions: &self.permissions,
                refresh_token: refresh_token.as_ref(),
            };
            let refused = match self.provider.obtain(ask).await {
                Ok(obtained) => return (true, self.store_obtained(obtained, &connection).await),
                Err(e @ ProviderError::Rejected { .. }) if refresh_token.is_some() => e,
                Err(e) => {
                    return (
                        false,
                        Err(BrokerError::from_provider(self.provider.kind(), e)),
                    )
                }
            };
            match self.moved_on(&connection).await {
                Some(newer) if matches!(connection, std::borrow::Cow::Borrowed(_)) => {
                    connection = std::borrow::Cow::Owned(newer);
                }
                _ => {
                    let e = BrokerError::from_provider(self.provider.kind(), refused);
                    return (false, Err(e));
                }
            }
        }
    }

    /// The connection as stored now, if its refresh token moved on since `read`.
    async fn moved_on(&self, read: &ConnectionRecord) -> Option<ConnectionRecord> {
        let now = self
            .store
            .get_connection(self.team_id, read.id)
            .await
            .ok()??;
        (now.refresh_generation != read.refresh_generation).then_some(now)
    }

    /// The connection's refresh token, opened, for a provider that renews with one.
    fn refresh_token(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<Option<SecretString>, BrokerError> {
        let (Renewal::Refresh { .. }, Some(sealed)) = (
            self.provider.renewal(),
            connection.refresh_ciphertext.as_deref(),
        ) else {
            return Ok(None);
        };
        let opened = self.sealer.open(sealed, &refresh_aad(connection.id));
        opened.map(Some).map_err(|e| {
            tracing::error!(connection = %self.connection.id, error = %e, "a connection's refresh token cannot be opened (was LANYARD_ENCRYPTION_KEY changed?)");
            BrokerError::Internal("the connection's refresh token cannot be opened".into())
        })
    }

    async fn revoke(&self, token: &CachedToken) {
        revoke_one(&*self.provider, &self.host, &token.token, &self.metrics).await;
    }

    /// The provider's rotated refresh token, sealed, to commit over the generation read.
    fn rotation(
        &self,
        connection: &ConnectionRecord,
        rotated: Option<SecretString>,
    ) -> Option<Rotation> {
        let id = connection.id;
        rotated.map(|token| Rotation {
            connection_id: id,
            read_generation: connection.refresh_generation,
            ciphertext: self.sealer.seal(&token, &refresh_aad(id)),
        })
    }

    /// Commits a rotation on its own (the access token it came with is not stored), retrying
    /// a failing store a few times: the provider ended the refresh token before it.
    async fn keep_rotation(&self, rotation: Option<&Rotation>) {
        let Some(rotation) = rotation else { return };
        let mut wait = ROTATION_RETRY;
        for attempt in 1..=ROTATION_ATTEMPTS {
            match self.store.rotate_refresh_token(rotation).await {
                Ok(rotated) => return self.settle_rotation(rotation, rotated).await,
                Err(e) if attempt < ROTATION_ATTEMPTS => {
                    tracing::warn!(connection = %rotation.connection_id, error = %e, attempt, "could not store a rotated refresh token; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_ROTATION_RETRY);
                }
                Err(e) => {
                    tracing::error!(connection = %rotation.connection_id, error = %e, "could not store a rotated refresh token; the connection may need authorising again");
                }
            }
        }
    }

    /// After a rotation's commit: a superseded one is left (the newer stays), and one whose
    /// connection is gone is revoked upstream, since nothing would ever end it.
    async fn settle_rotation(&self, rotation: &Rotation, rotated: Rotated) {
        match rotated {
            Rotated::Committed => {}
            Rotated::Superseded => {
                tracing::warn!(connection = %rotation.connection_id, "another refresh rotated the connection's refresh token first; the newer one is kept");
            }
            Rotated::ConnectionGone => {
                let aad = refresh_aad(rotation.connection_id);
                if let Ok(token) = self.sealer.open(&rotation.ciphertext, &aad) {
                    if let Err(e) = self.provider.revoke(&token).await {
                        tracing::warn!(connection = %rotation.connection_id, error = %e, "could not revoke the refresh token of a connection deleted during its refresh");
                    }
                }
            }
        }
    }

    async fn store_obtained(
        &self,
        mut obtained: Obtained,
        connection: &ConnectionRecord,
    ) -> Result<CachedToken, BrokerError> {
        let now = self.clock.now();
        // Sealed at once: whatever becomes of the access token, the refresh token it came with
        // is committed, since the provider has ended the one before it.
        let rotation = self.rotation(connection, obtained.rotated.take());
        let Some(expires_at) = obtained.expires_at else {
            // Never served, so never left live.
            let why = "an expiring provider handed over a credential without an expiry";
            tracing::error!(host = %self.host, "{why}; revoking it");
            self.keep_rotation(rotation.as_ref()).await;
            revoke_one(&*self.provider, &self.host, &obtained.secret, &self.metrics).await;
            return Err(BrokerError::Internal(why.into()));
        };
        let token = CachedToken::new(
            obtained.secret,
            now,
            expires_at,
            if obtained.repositories.is_empty() {
                self.repositories.iter().map(|r| r.to_string()).collect()
            } else {
                obtained.repositories
            },
            if obtained.permissions.is_empty() {
                self.permissions
                    .iter()
                    .map(|(p, a)| (p.to_string(), a.to_string()))
                    .collect()
            } else {
                obtained.permissions
            },
        );
        if !token.servable(now, self.rule) {
            tracing::error!(host = %self.host, "the provider handed over a token that lives less than token_min_remaining; lower LANYARD_TOKEN_MIN_REMAINING");
            // Never served, so never left live.
            self.keep_rotation(rotation.as_ref()).await;
            self.revoke(&token).await;
            return Err(BrokerError::from_provider(
                self.provider.kind(),
                ProviderError::Unavailable {
                    retry_after: None,
                    message: "the credential is shorter-lived than the configured floor".into(),
                },
            ));
        }
        // Bound to the installation it was minted through (shared by the team's connections to
        // it), or else to the connection it was obtained for.
        let installation_id = connection.installation_id;
        let id = Uuid::new_v4();
        let record = TokenRecord {
            id,
            team_id: self.team_id,
            cache_key: self.cache_key.clone(),
            host: self.host.clone(),
            installation_id,
            connection_id: installation_id.is_none().then_some(connection.id),
            ciphertext: self.sealer.seal(&token.token, &token_aad(id)),
            repositories: token.repositories.clone(),
            permissions: token.permissions.clone(),
            created_at: now,
            expires_at: token.expires_at,
        };
        // A token exists upstream only with a live holder, or on its way to being revoked.
        let actor = Actor::runner(self.session_id);
        let stored = self
            .store
            .insert_token(&record, rotation.as_ref(), &actor, now)
            .await;
        if let (Ok((_, Some(rotated))), Some(rotation)) = (&stored, &rotation) {
            self.settle_rotation(rotation, *rotated).await;
        }
        match stored.map(|(stored, _)| stored) {
            Ok(Stored::Held) => Ok(token.stored_as(id)),
            Ok(Stored::Orphaned) => {
                tracing::info!(host = %self.host, "every holder of the scope stopped, or its connection was deleted, during the mint; the new token is revoked");
                self.revoke(&token).await;
                Err(BrokerError::HolderEnded)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store a minted token; revoking it");
                // The rotation was in the failed transaction: committed on its own.
                self.keep_rotation(rotation.as_ref()).await;
                self.revoke(&token).await;
                Err(BrokerError::Unavailable {
                    retry_after: Some(1),
                })
            }
        }
    }
}
