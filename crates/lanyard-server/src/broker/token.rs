//! A token as the broker serves it from memory: the secret, its life, its scope, and its
//! rendered response.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// Tokens are replaced at most this long before they would stop meeting the floor.
const MAX_REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

/// A credential as served: the token, its life, and its scope. `Debug` shows neither the token
/// nor the rendered body that holds it.
pub struct CachedToken {
    pub token: SecretString,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub repositories: Vec<String>,
    /// As GitHub granted them.
    pub permissions: BTreeMap<String, String>,
    /// The credential response for this token, rendered on first use: every session served this
    /// token shares its scope (the cache key), so the body is the same for all of them.
    /// Shared: each response holds a reference to it, not a copy.
    pub rendered: OnceLock<axum::body::Bytes>,
    /// Its row in the store, when it has one: served from memory, it is re-read every
    /// [`RECHECK`] so that a revocation on another replica reaches this one.
    pub stored_id: Option<uuid::Uuid>,
    /// When it was last confirmed unrevoked, in ms of [`process_millis`].
    checked_ms: AtomicU64,
}

/// How long a stored token is served from memory before its row is read again: a stop on
/// another replica reaches this one within this (and a session re-read, 2 s) at most.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Milliseconds since this process first asked: real time, like the caches' own clocks, not
/// the injected one (a revocation on another replica happens in real time).
pub(crate) fn process_millis() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("repositories", &self.repositories)
            .field("rendered", &self.rendered.get().is_some())
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    pub fn new(
        token: SecretString,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        repositories: Vec<String>,
        permissions: BTreeMap<String, String>,
    ) -> Self {
        Self {
            token,
            created_at,
            expires_at,
            repositories,
            permissions,
            rendered: OnceLock::new(),
            stored_id: None,
            checked_ms: AtomicU64::new(process_millis()),
        }
    }

    /// The token as stored under `id`.
    pub fn stored_as(mut self, id: uuid::Uuid) -> Self {
        self.stored_id = Some(id);
        self
    }

    /// The stored id to re-read now, if this token is due a check and this caller is the one to
    /// make it (the others keep serving meanwhile).
    pub fn claim_recheck(&self) -> Option<uuid::Uuid> {
        let id = self.stored_id?;
        let now = process_millis();
        let last = self.checked_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= RECHECK.as_millis() as u64;
        (due && self
            .checked_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok())
        .then_some(id)
    }
}

impl CachedToken {
    fn remaining(&self, now: DateTime<Utc>) -> chrono::Duration {
        self.expires_at - now
    }

    /// Meets the floor: may be served.
    pub fn servable(&self, now: DateTime<Utc>, floor: chrono::Duration) -> bool {
        self.remaining(now) >= floor
    }

    /// Meets the floor with time to spare: served without trying to refresh.
    pub fn fresh(&self, now: DateTime<Utc>, floor: chrono::Duration) -> bool {
        let life = self.expires_at - self.created_at;
        let spare = ((life - floor) / 2).clamp(chrono::Duration::zero(), MAX_REFRESH_AHEAD);
        self.remaining(now) >= floor + spare
    }
}
