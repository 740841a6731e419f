//! Refreshing a scope: take a token another replica stored, or mint one under the cross-replica
//! lock, seal it, store it, and cache it.

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::github::PermissionSet;
use lanyard_core::Actor;
use lanyard_github::GithubError;
use lanyard_store::{Stored, TokenRecord};
use uuid::Uuid;

use super::cache::CachedToken;
use super::hosts::Host;
use super::lock::{Attempt, MintLock, LOCK_TTL};
use super::revoke::revoke_one;
use super::scope::ScopeKey;
use super::slots::{NoSlot, SlotPermit};
use super::{token_aad, Broker, BrokerError};
use crate::metrics::{Label, MintLabels, MintResult};
use crate::ratelimit::{Decision, LimitKey};

/// How soon a replica waiting for another's mint first looks for its token; the wait doubles
/// after each look, up to [`MAX_WAIT_POLL`].
const WAIT_POLL: Duration = Duration::from_millis(25);
const MAX_WAIT_POLL: Duration = Duration::from_millis(250);

/// The `Retry-After` of a mint that found no upstream slot in time.
const SLOT_RETRY_AFTER: u64 = 5;

/// What minting one scope needs, borrowed from the session asking.
#[derive(Debug, Clone, Copy)]
pub struct MintRequest<'a> {
    pub key: &'a ScopeKey,
    pub team_id: Uuid,
    pub session_id: Uuid,
    pub host: &'a str,
    pub installation_id: i64,
    pub repositories: &'a [String],
    pub permissions: &'a PermissionSet,
    /// The team's tier's limit on upstream mints per hour.
    pub mints_per_hour: u32,
    /// Where the asking session's read began, and the scope's newest live token it found.
    pub read_mark: u64,
    pub live_token: Option<Uuid>,
}

impl Broker {
    /// The newest stored token for the scope if it is fresh (cached on the way); a servable but
    /// not fresh one is offered through `fallback`.
    pub(super) async fn stored_fresh(
        &self,
        key: &ScopeKey,
        fallback: &mut Option<Arc<CachedToken>>,
    ) -> Result<Option<Arc<CachedToken>>, BrokerError> {
        let Some(record) = self.store.latest_token(key.as_str()).await? else {
            return Ok(None);
        };
        // A row sealed under an earlier encryption key (or corrupt) is as good as absent: the
        // scope mints anew, and the old token dies within its hour.
        let token = match self.sealer.open(&record.ciphertext, &token_aad(record.id)) {
            Ok(token) => token,
            Err(e) => {
                // Once a minute at most: a waiter re-reads the row every 25 ms.
                static LAST_WARNED: std::sync::atomic::AtomicI64 =
                    std::sync::atomic::AtomicI64::new(i64::MIN);
                let now = self.clock.now().timestamp();
                let last = LAST_WARNED.load(std::sync::atomic::Ordering::Relaxed);
                if now.saturating_sub(last) >= 60
                    && LAST_WARNED
                        .compare_exchange(
                            last,
                            now,
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    tracing::warn!(token_row = %record.id, error = %e, "a stored token cannot be opened (was LANYARD_ENCRYPTION_KEY changed, or do replicas disagree on it?); minting anew");
                }
                return Ok(None);
            }
        };
        let now = self.clock.now();
        let token = Arc::new(
            CachedToken::new(
                token,
                record.created_at,
                record.expires_at,
                record.repositories,
                record.permissions,
            )
            .stored_as(record.id)
            .marked(self.caches.next_mark()),
        );
        if token.fresh(now, self.floor) {
            self.caches.tokens.insert(key.clone(), token.clone());
            return Ok(Some(token));
        }
        if token.servable(now, self.floor)
            && fallback
                .as_ref()
                .is_none_or(|f| f.expires_at < token.expires_at)
        {
            *fallback = Some(token);
        }
        Ok(None)
    }

    /// One refresh of a scope: what another replica stored, else a mint in turn (see
    /// [`Self::mint_in_turn`]). Says whether it minted. When the mint fails, a stored token
    /// that still meets the floor is served.
    pub(super) async fn refresh(
        &self,
        req: MintRequest<'_>,
    ) -> Result<(Arc<CachedToken>, bool), BrokerError> {
        let mut fallback = None;
        if let Some(t) = self.stored_fresh(req.key, &mut fallback).await? {
            return Ok((t, false));
        }
        match (self.mint_in_turn(req, &mut fallback).await, fallback) {
            (Ok(done), _) => Ok(done),
            (Err(e @ BrokerError::HolderEnded), _) => Err(e),
            (Err(e), fallback) => {
                self.cool_down(&req, &e);
                match fallback {
                    // A stored token that still meets the floor is served while GitHub is down.
                    Some(stored) => {
                        self.caches.tokens.insert(req.key.clone(), stored.clone());
                        Ok((stored, false))
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// A mint that waits its turn without holding anything another request needs. In this
    /// order: the team's hourly mint allowance (checked: a team over it waits for nothing), a
    /// slot of the host's upstream concurrency (fair between teams, see [`super::slots`]), then
    /// the cross-replica lock, each taken and waited for with no pooled connection held. A
    /// token another replica stores meanwhile is taken instead of minting; the allowance is
    /// counted only for a mint that is made.
    async fn mint_in_turn(
        &self,
        req: MintRequest<'_>,
        fallback: &mut Option<Arc<CachedToken>>,
    ) -> Result<(Arc<CachedToken>, bool), BrokerError> {
        let allowance = self
            .mint_limiter
            .peek_limit(LimitKey::Team(req.team_id), req.mints_per_hour)
            .await;
        if let Decision::Limited { retry_after } = allowance {
            return Err(BrokerError::RateLimited { retry_after });
        }
        let host = self
            .hosts
            .get(req.host)
            .ok_or_else(|| GithubError::NoApp(req.host.to_string()))?;
        let slot = host
            .mint_slots
            .acquire(req.team_id)
            .await
            .map_err(|NoSlot::Busy| BrokerError::Unavailable {
                retry_after: Some(SLOT_RETRY_AFTER),
            })?;
        let deadline = tokio::time::Instant::now() + LOCK_TTL;
        let mut poll = WAIT_POLL;
        let lock = loop {
            match self.lock.try_acquire(req.key).await? {
                Attempt::Held(lock) => break lock,
                Attempt::Busy if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(MAX_WAIT_POLL);
                    if let Some(t) = self.stored_fresh(req.key, fallback).await? {
                        return Ok((t, false));
                    }
                }
                Attempt::Busy => {
                    return Err(BrokerError::Unavailable {
                        retry_after: Some(1),
                    })
                }
            }
        };
        // Another replica may have minted while this one waited for the lock.
        match self.stored_fresh(req.key, fallback).await {
            Ok(None) => {}
            done => {
                lock.release().await;
                return done.map(|t| (t.expect("None is handled above"), false));
            }
        }
        let allowance = self
            .mint_limiter
            .check_limit(LimitKey::Team(req.team_id), req.mints_per_hour)
            .await;
        if let Decision::Limited { retry_after } = allowance {
            lock.release().await;
            return Err(BrokerError::RateLimited { retry_after });
        }
        // The mint takes the slot and the lock with it, and gives them back once its token is
        // stored: a caller that goes away frees neither while GitHub still mints.
        self.mint(req, host, Held { lock, slot })
            .await
            .map(|t| (t, true))
    }

    /// The mint itself, run by a task of its own that holds the host slot and the scope's lock
    /// until GitHub's answer is stored (or, unservable or unheld, revoked): once begun, it
    /// finishes even if the caller goes away (its client disconnected, its deadline passed), so
    /// no token is left live at GitHub without a row that says what became of it, and neither
    /// the upstream bound nor the lock is given up while GitHub still mints.
    async fn mint(
        &self,
        req: MintRequest<'_>,
        host: &Host,
        held: Held,
    ) -> Result<Arc<CachedToken>, BrokerError> {
        // Stored as i64 (the store's integer), GitHub's is u64: a negative one is a corrupt row,
        // never installation 0.
        let installation = u64::try_from(req.installation_id).map_err(|_| {
            BrokerError::Internal(format!(
                "the stored installation id {} is not a GitHub installation id",
                req.installation_id
            ))
        })?;
        let job = MintJob {
            client: host.client.clone(),
            label: host.label.clone(),
            store: self.store.clone(),
            sealer: self.sealer.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            floor: self.floor,
            installation,
            installation_id: req.installation_id,
            team_id: req.team_id,
            session_id: req.session_id,
            cache_key: req.key.as_str().to_string(),
            host: req.host.to_string(),
            repositories: req.repositories.to_vec(),
            permissions: req.permissions.clone(),
        };
        let (github_ok, outcome) = tokio::spawn(job.run(held))
            .await
            .map_err(|e| BrokerError::Internal(format!("the mint task failed: {e}")))?;
        self.note_outcome(&req, github_ok);
        let token = Arc::new(outcome?.marked(self.caches.next_mark()));
        self.caches.tokens.insert(req.key.clone(), token.clone());
        Ok(token)
    }
}

/// One mint with everything it needs owned, so it runs to its end on a task of its own.
struct MintJob {
    client: Arc<lanyard_github::GithubHost>,
    label: crate::metrics::Fixed,
    store: lanyard_store::Store,
    sealer: crate::crypto::Sealer,
    clock: Arc<dyn lanyard_core::Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    floor: chrono::Duration,
    installation: u64,
    installation_id: i64,
    team_id: Uuid,
    session_id: Uuid,
    cache_key: String,
    host: String,
    repositories: Vec<String>,
    permissions: PermissionSet,
}

/// What a mint holds while it runs: a slot of the host, and the scope's cross-replica lock.
struct Held {
    lock: MintLock,
    slot: SlotPermit,
}

impl MintJob {
    /// The mint, then its slot and lock given back.
    async fn run(self, held: Held) -> (bool, Result<CachedToken, BrokerError>) {
        let done = self.mint_and_store().await;
        held.lock.release().await;
        drop(held.slot);
        done
    }

    /// GitHub's mint, checked against the floor and stored with its holder check. Says whether
    /// GitHub minted, and the stored token (or why there is none).
    async fn mint_and_store(&self) -> (bool, Result<CachedToken, BrokerError>) {
        let outcome = self
            .client
            .mint(self.installation, &self.repositories, &self.permissions)
            .await;
        let result = match &outcome {
            Ok(_) => MintResult::Ok,
            Err(GithubError::Unavailable { .. }) => MintResult::Unavailable,
            Err(_) => MintResult::Rejected,
        };
        self.metrics
            .github_mints
            .get_or_create(&MintLabels {
                host: self.label.clone(),
                result: Label(result),
            })
            .inc();
        let minted = match outcome {
            Ok(minted) => minted,
            Err(e) => return (false, Err(e.into())),
        };
        (true, self.store_minted(minted).await)
    }

    async fn store_minted(
        &self,
        minted: lanyard_github::MintedToken,
    ) -> Result<CachedToken, BrokerError> {
        let now = self.clock.now();
        let token = CachedToken::new(
            minted.token,
            now,
            minted.expires_at,
            if minted.repositories.is_empty() {
                self.repositories.clone()
            } else {
                minted.repositories
            },
            if minted.permissions.is_empty() {
                self.permissions
                    .iter()
                    .map(|(p, a)| (p.to_string(), a.to_string()))
                    .collect()
            } else {
                minted.permissions
            },
        );
        if !token.servable(now, self.floor) {
            tracing::error!(host = %self.host, "GitHub minted a token that lives less than token_min_remaining; lower LANYARD_TOKEN_MIN_REMAINING");
            // Never served, so never left live.
            revoke_one(&self.client, &token.token, &self.metrics).await;
            return Err(GithubError::Unavailable {
                status: None,
                retry_after: None,
                message: "minted token is shorter-lived than the configured floor".into(),
            }
            .into());
        }
        let id = Uuid::new_v4();
        let record = TokenRecord {
            id,
            team_id: self.team_id,
            cache_key: self.cache_key.clone(),
            host: self.host.clone(),
            installation_id: self.installation_id,
            ciphertext: self.sealer.seal(&token.token, &token_aad(id)),
            repositories: token.repositories.clone(),
            permissions: token.permissions.clone(),
            created_at: now,
            expires_at: token.expires_at,
        };
        // A token exists at GitHub only with a live holder, or on its way to being revoked.
        match self
            .store
            .insert_token(&record, &Actor::runner(self.session_id), now)
            .await
        {
            Ok(Stored::Held) => Ok(token.stored_as(id)),
            Ok(Stored::Orphaned) => {
                tracing::info!(host = %self.host, "every holder of the scope stopped, or its connection was deleted, during the mint; the new token is revoked");
                revoke_one(&self.client, &token.token, &self.metrics).await;
                Err(BrokerError::HolderEnded)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store a minted token; revoking it");
                revoke_one(&self.client, &token.token, &self.metrics).await;
                Err(BrokerError::Unavailable {
                    retry_after: Some(1),
                })
            }
        }
    }
}
