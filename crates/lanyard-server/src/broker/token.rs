//! A token as the broker serves it from memory: the secret, its life, its scope, and its
//! rendered response.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
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
    /// The serving edge's rendering of this credential, made on first use: every session served
    /// this token shares its scope (the cache key), so the rendering is the same for all of them.
    /// Shared: each answer holds a reference to it, not a copy. Plain bytes: the broker knows
    /// nothing of how they are served.
    pub rendered: OnceLock<Bytes>,
    /// Its row in the store, when it has one.
    pub stored_id: Option<uuid::Uuid>,
    /// Where in the order of this replica's session reads and cached tokens it was obtained
    /// ([`super::cache::Caches::next_mark`]): a session read begun before cannot know of it; one
    /// begun after says whether it is still the scope's live token.
    pub mark: u64,
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
    /// A token as minted at `created_at` (and so in memory since then).
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
            mark: 0,
        }
    }

    /// The token as stored under `id`.
    pub fn stored_as(mut self, id: uuid::Uuid) -> Self {
        self.stored_id = Some(id);
        self
    }

    /// The token as obtained at `mark` (see [`Self::mark`]).
    pub fn marked(mut self, mark: u64) -> Self {
        self.mark = mark;
        self
    }

    /// Whether a session read begun at `read_mark`, which found `live` to be its scope's newest
    /// live token, leaves this cached token servable: the read could not know of it (it was
    /// obtained after the read began, live then), or it found this very token. Otherwise it was
    /// revoked since, on any replica, or replaced. Ordered by marks, not times: two events in
    /// the same clock tick (or on a test's stopped clock) still have an order.
    pub fn seen_live(&self, read_mark: u64, live: Option<uuid::Uuid>) -> bool {
        self.mark > read_mark || (self.stored_id.is_some() && self.stored_id == live)
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
