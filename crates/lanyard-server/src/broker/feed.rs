//! Following the session change feed, so that a cached runner session can be trusted for longer
//! than [`SESSION_TTL`](super::SESSION_TTL) without missing a change made on another replica.
//!
//! Every [`POLL`] this replica reads what changed (the store's triggers write it, whichever
//! replica or tool made the change): a session, forgotten alone, or a team, all of whose
//! cached sessions are forgotten. While the last read that succeeded began less than
//! [`CURRENT`] ago, a session read while the feed was current stays trusted (for up to
//! [`SESSION_FED`](super::cache::SESSION_FED)): any change it has not seen yet was committed
//! less than [`CURRENT`] ago, inside the contract's 2 s. When the feed falls behind
//! (the database is slow or down), sessions go back to being read again after 2 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lanyard_store::FeedCursor;

use super::token::process_millis;
use super::Broker;

/// How often the feed is read.
pub const POLL: Duration = Duration::from_millis(500);
/// How recent the last good read must be for the feed to count as current.
pub const CURRENT: Duration = Duration::from_millis(1500);
/// Feed rows are kept this long: far longer than a session stays cached, so a replica that
/// could not read for a while still finds every change it missed.
const KEEP: Duration = Duration::from_secs(3600);
/// How often this replica prunes the feed (any replica may; deleting twice is harmless).
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// The feed's state, shared by its follower and the session path.
#[derive(Debug, Default)]
pub(super) struct Feed {
    /// When (in [`process_millis`]) the last good read began; 0 before the first.
    read_began_ms: AtomicU64,
}

impl Feed {
    /// The feed has been read recently enough that a cached session may be trusted.
    pub(super) fn current(&self) -> bool {
        let began = self.read_began_ms.load(Ordering::SeqCst);
        let current = u64::try_from(CURRENT.as_millis()).unwrap_or(u64::MAX);
        began != 0 && process_millis().saturating_sub(began) < current
    }
}

impl Broker {
    /// Follows the session change feed until shutdown.
    pub async fn follow_session_changes(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut cursor: Option<FeedCursor> = None;
        let mut failing = false;
        let mut overflowing = false;
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            let read = self.read_feed(&mut cursor).await;
            self.counters.feed_read(read.is_ok());
            match read {
                Ok(overflow) => {
                    if failing {
                        tracing::info!("the session change feed is readable again");
                        failing = false;
                    }
                    if overflow && !overflowing {
                        tracing::warn!("too many session changes at once: every cached session was forgotten (on Postgres, a long transaction may be holding the feed's mark back)");
                    }
                    overflowing = overflow;
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot read the session change feed; sessions are read again every 2 s until it answers");
                    failing = true;
                }
                Err(_) => {}
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                self.prune_feed().await;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One read of the feed from `cursor` (from its end, the first time), applied to the cache.
    /// `true` when it named too much and every session was forgotten.
    async fn read_feed(
        &self,
        cursor: &mut Option<FeedCursor>,
    ) -> Result<bool, lanyard_store::StoreError> {
        let began = process_millis().max(1);
        let mut overflow = false;
        match cursor {
            // Nothing is trusted past 2 s before the first good read, so what changed before
            // the start needs no forgetting.
            None => *cursor = Some(self.store.session_feed_start().await?),
            Some(cursor) => {
                let changes = self.store.session_changes(cursor).await?;
                overflow = changes.overflow;
                if changes.overflow {
                    self.caches.forget_all_sessions();
                } else {
                    for team in changes.teams {
                        self.caches.forget_team(team);
                    }
                    for lookup in changes.sessions {
                        self.caches.forget_session(&lookup);
                    }
                }
            }
        }
        self.feed.read_began_ms.store(began, Ordering::SeqCst);
        Ok(overflow)
    }

    async fn prune_feed(&self) {
        let keep_from = std::time::SystemTime::now()
            .checked_sub(KEEP)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match self.store.prune_session_changes(keep_from).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned the session change feed"),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot prune the session change feed; next time")
            }
        }
    }
}
