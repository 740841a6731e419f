//! Runner sessions in memory: read through the store, trusted for 2 s (longer while the change
//! feed is followed), served as last read through a short database outage, and forgotten when
//! this process or the feed says they changed.

use std::sync::Arc;

use lanyard_core::secret::PresentedSecret;
use lanyard_store::{RunnerSession, StoreError};

use super::cache;
use super::Broker;

impl Broker {
    /// The session behind a presented runner token, if the token is valid. Trusted from memory
    /// for [`cache::SESSION_TTL`], or while the session change feed is current (see
    /// [`super::feed`]), then read again; while the database is unavailable, the last reading
    /// is served for up to [`cache::SESSION_STALE`] more, so cached credentials keep flowing
    /// through a short outage (a stop written through another replica meanwhile is seen when
    /// the database answers again).
    pub async fn runner_session(
        &self,
        presented: &PresentedSecret<'_>,
    ) -> Result<Option<Arc<RunnerSession>>, StoreError> {
        let lookup = presented.lookup;
        let cached = self
            .caches
            .sessions
            .get(lookup)
            .filter(|c| c.valid(&self.caches));
        let session = match cached {
            Some(c) if self.trusted(&c) => c.session,
            // Boxed: the store's future is large, and inline it would make every cached
            // request's future as large.
            stale => match Box::pin(self.read_session(lookup)).await {
                Ok(Some(loaded)) => loaded,
                Ok(None) => {
                    // A miss is not cached: see `cache::FastHash`.
                    self.caches.sessions.invalidate(lookup);
                    return Ok(None);
                }
                Err(e) => match stale {
                    Some(c)
                        if matches!(e, StoreError::Unavailable(_))
                            && c.loaded.elapsed()
                                < self.caches.limits.session_ttl
                                    + self.caches.limits.session_stale =>
                    {
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

    /// Read within [`cache::SESSION_TTL`], or read (within [`cache::SESSION_FED`]) while the
    /// change feed was current and the feed still is (so any change since was applied, or was
    /// made under 2 s ago).
    fn trusted(&self, cached: &cache::CachedSession) -> bool {
        let (age, limits) = (cached.loaded.elapsed(), &self.caches.limits);
        age < limits.session_ttl || (cached.fed && age < limits.session_fed && self.feed.current())
    }

    /// Reads a session from the store and caches it, unless something was forgotten during
    /// the read: the read may then hold the state from before that change.
    ///
    /// Checked after the insert, so every forgetting is either seen by the check or comes
    /// after the insert (and then the mark, the epoch or the removal it makes applies to it).
    async fn read_session(&self, lookup: &str) -> Result<Option<Arc<RunnerSession>>, StoreError> {
        let loaded = std::time::Instant::now();
        let fed = self.feed.current();
        let (forgets, epoch) = (self.caches.forgets(), self.caches.epoch());
        let Some(mut session) = self.store.runner_session(lookup).await? else {
            return Ok(None);
        };
        session.shrink_to_fit();
        let session = Arc::new(session);
        let team = self.caches.team_marks.mark(session.team.id);
        self.caches.sessions.insert(
            lookup.into(),
            cache::CachedSession {
                session: session.clone(),
                loaded,
                fed,
                team,
                epoch,
            },
        );
        if self.caches.forgets() != forgets {
            self.caches.sessions.invalidate(lookup);
        }
        Ok(Some(session))
    }

    /// Forgets a runner token's cached session (after a stop).
    pub fn forget_session(&self, runner_lookup: &str) {
        self.caches.forget_session(runner_lookup);
    }

    /// Forgets every cached session of a team (after its connections or the team itself
    /// changed), so the next request reads them afresh.
    pub fn forget_team(&self, team_id: uuid::Uuid) {
        self.caches.forget_team(team_id);
    }
}
