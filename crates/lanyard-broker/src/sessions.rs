//! Runner sessions in memory: read through the store, trusted for 2 s on the injected clock,
//! served as last read through a short database outage, and forgotten at once when this process
//! changes them.

use std::sync::Arc;

use lanyard_core::secret::PresentedSecret;
use lanyard_store::{RunnerSession, StoreError};

use crate::cache;
use crate::Broker;

impl Broker {
    /// The session behind a presented runner token, if the token is valid. Trusted from memory
    /// for [`cache::SESSION_TTL`], then read again; while the database is unavailable, the last
    /// reading is served for up to [`cache::SESSION_STALE`] more, so cached credentials keep
    /// flowing through a short outage (a stop written through another replica meanwhile is seen
    /// when the database answers again).
    pub async fn runner_session(
        &self,
        presented: &PresentedSecret<'_>,
    ) -> Result<Option<Arc<RunnerSession>>, StoreError> {
        let lookup = presented.lookup;
        let now = self.clock.now();
        let limits = &self.caches.limits;
        let cached = self.caches.sessions.get(lookup).filter(|c| c.valid());
        let session = match cached {
            Some(c) if c.age(now) < limits.session_ttl => c.session,
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
                            && c.age(now) < limits.session_ttl + limits.session_stale =>
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

    /// Reads a session from the store and caches it, unless something was forgotten during
    /// the read: the read may then hold the state from before that change.
    ///
    /// Checked after the insert, so every forgetting is either seen by the check or comes
    /// after the insert (and then the mark or the removal it makes applies to it).
    async fn read_session(&self, lookup: &str) -> Result<Option<Arc<RunnerSession>>, StoreError> {
        let loaded = self.clock.now();
        let read_mark = self.caches.next_mark();
        let forgets = self.caches.forgets();
        let Some(mut session) = self.store.runner_session(lookup).await? else {
            return Ok(None);
        };
        session.shrink_to_fit();
        session.read_mark = read_mark;
        let session = Arc::new(session);
        let team = self.caches.team_marks.mark(session.team.id);
        self.caches.sessions.insert(
            lookup.into(),
            cache::CachedSession {
                session: session.clone(),
                loaded,
                team,
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
