//! Runner sessions in memory: read through the store, trusted briefly, served as last read
//! through a short database outage, and forgotten when this process changes them.

use std::sync::Arc;

use lanyard_core::secret::PresentedSecret;
use lanyard_store::{RunnerSession, StoreError};

use super::cache;
use super::Broker;

impl Broker {
    /// The session behind a presented runner token, if the token is valid. Trusted from memory
    /// for [`cache::SESSION_TTL`], then read again; while the database is unavailable, the last reading
    /// is served for up to [`cache::SESSION_STALE`] more, so cached credentials keep flowing
    /// through a short outage (a stop written through another replica meanwhile is seen when
    /// the database answers again).
    pub async fn runner_session(
        &self,
        presented: &PresentedSecret<'_>,
    ) -> Result<Option<Arc<RunnerSession>>, StoreError> {
        let lookup = presented.lookup;
        let cached = self.caches.sessions.get(lookup);
        let session = match cached {
            Some(c) if c.loaded.elapsed() < self.caches.session_ttl => c.session,
            // Boxed: the store's future is large, and inline it would make every cached
            // request's future as large.
            stale => match Box::pin(self.store.runner_session(lookup)).await {
                Ok(Some(mut loaded)) => {
                    loaded.shrink_to_fit();
                    let loaded = Arc::new(loaded);
                    self.caches.sessions.insert(
                        lookup.into(),
                        cache::CachedSession {
                            session: loaded.clone(),
                            loaded: std::time::Instant::now(),
                        },
                    );
                    loaded
                }
                Ok(None) => {
                    // A miss is not cached: see `cache::FastHash`.
                    self.caches.sessions.invalidate(lookup);
                    return Ok(None);
                }
                Err(e) => match stale {
                    Some(c) if matches!(e, StoreError::Unavailable(_)) => {
                        tracing::warn!(error = %e, "the store cannot answer; serving the session as last read");
                        self.counters.stale_session();
                        c.session
                    }
                    _ => return Err(e),
                },
            },
        };
        Ok(presented.matches(&session.runner_hash).then_some(session))
    }

    /// Forgets a runner token's cached session (after a stop).
    pub fn forget_session(&self, runner_lookup: &str) {
        self.caches.sessions.invalidate(runner_lookup);
    }

    /// Forgets every cached session of a team (after its connections or the team itself
    /// changed), so the next request reads them afresh.
    pub fn forget_team(&self, team_id: uuid::Uuid) {
        if let Err(e) = self
            .caches
            .sessions
            .invalidate_entries_if(move |_, s| s.session.team.id == team_id)
        {
            tracing::error!(error = %e, "cannot forget the team's sessions; they expire with the cache");
        }
    }
}
