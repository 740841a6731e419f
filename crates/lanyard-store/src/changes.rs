//! The session change feed (migration 0006): which cached runner sessions are out of date.
//!
//! Triggers write a row for every change to what a runner session holds, naming the session or
//! its whole team. A replica reads the rows after its cursor and forgets what they name; while
//! it keeps up, it may trust a session from memory for longer than the 2 s the contract allows
//! without the feed.

use std::collections::HashSet;

use uuid::Uuid;

use crate::{on_pool, Pool, Store, StoreResult};

/// The most changes (teams and sessions) one read returns. More than this at once, and the
/// reader is told to forget every cached session instead.
pub const FEED_BATCH: usize = 256;

/// Where a reader of the feed stands. On SQLite the last row it saw (writers are serialised, so
/// rows commit in number order). On Postgres the oldest transaction still running when it last
/// read (rows are numbered as inserted, not as committed, so a row numbered below one already
/// seen may commit later; every transaction older than that mark had ended, and was seen), with
/// the rows since then that it has already applied, so each is applied once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCursor {
    mark: i64,
    seen: HashSet<i64>,
}

/// What changed since a cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionChanges {
    /// Teams all of whose sessions may have changed (each once).
    pub teams: Vec<Uuid>,
    /// Single sessions that changed, by runner lookup (each once).
    pub sessions: Vec<String>,
    /// More than [`FEED_BATCH`] changed: forget every cached session.
    pub overflow: bool,
}

/// One row as read: a session's change names its runner lookup, a team's does not.
type Change = (Uuid, Option<String>);

/// On Postgres, the most rows re-read while a long transaction holds the mark back; beyond it
/// the reader forgets every session instead of telling the rows apart.
const MAX_WINDOW: i64 = 4096;

impl Store {
    /// The feed's current end: a reader starting here sees every change committed from now on.
    pub async fn session_feed_start(&self) -> StoreResult<FeedCursor> {
        let mark: i64 = match &self.pool {
            Pool::Sqlite(pool) => sqlite_end(pool).await?,
            Pool::Postgres(pool) => postgres_mark(pool).await?,
        };
        Ok(FeedCursor {
            mark,
            seen: HashSet::new(),
        })
    }

    /// What changed since `cursor`, which moves on past it.
    pub async fn session_changes(&self, cursor: &mut FeedCursor) -> StoreResult<SessionChanges> {
        let limit = i64::try_from(FEED_BATCH + 1).unwrap_or(i64::MAX);
        let (changes, overflow): (Vec<Change>, bool) = match &self.pool {
            Pool::Sqlite(pool) => {
                // The end first, then every team up to it: a backlog (a team's deletion writes
                // a row per session) is taken in one read, never trickled over many.
                let end = sqlite_end(pool).await?;
                let changes: Vec<Change> = sqlx::query_as(
                    "SELECT DISTINCT team_id, runner_lookup FROM session_changes \
                     WHERE seq > $1 AND seq <= $2 LIMIT $3",
                )
                .bind(cursor.mark)
                .bind(end)
                .bind(limit)
                .fetch_all(pool)
                .await?;
                cursor.mark = cursor.mark.max(end);
                let overflow = changes.len() > FEED_BATCH;
                (changes, overflow)
            }
            Pool::Postgres(pool) => {
                // The mark first: every transaction older than it has ended, so the read below
                // (a later snapshot) sees its rows.
                let mark = postgres_mark(pool).await?;
                let rows: Vec<(i64, i64, Uuid, Option<String>)> = sqlx::query_as(
                    "SELECT seq, tx, team_id, runner_lookup FROM session_changes \
                     WHERE tx >= $1 LIMIT $2",
                )
                .bind(cursor.mark)
                .bind(MAX_WINDOW + 1)
                .fetch_all(pool)
                .await?;
                let whole = i64::try_from(rows.len()).unwrap_or(i64::MAX) <= MAX_WINDOW;
                let mut changes = Vec::new();
                let mut seen = HashSet::new();
                for (seq, tx, team, lookup) in rows {
                    if !cursor.seen.contains(&seq) {
                        changes.push((team, lookup));
                    }
                    // Rows of transactions at or past the new mark come again next time.
                    if tx >= mark {
                        seen.insert(seq);
                    }
                }
                // Past the window the rows cannot all be told apart: forget everything, and
                // remember nothing (the next read forgets everything again until it fits).
                cursor.seen = if whole { seen } else { HashSet::new() };
                cursor.mark = mark;
                changes.sort_unstable();
                changes.dedup();
                let overflow = !whole || changes.len() > FEED_BATCH;
                (changes, overflow)
            }
        };
        if overflow {
            return Ok(SessionChanges {
                overflow,
                ..SessionChanges::default()
            });
        }
        let mut out = SessionChanges::default();
        for (team, lookup) in changes {
            match lookup {
                Some(lookup) => out.sessions.push(lookup),
                None => out.teams.push(team),
            }
        }
        out.teams.sort_unstable();
        out.teams.dedup();
        out.sessions.sort_unstable();
        out.sessions.dedup();
        Ok(out)
    }

    /// Deletes the feed's rows written before `before_ms` (milliseconds since the Unix epoch).
    pub async fn prune_session_changes(&self, before_ms: i64) -> StoreResult<u64> {
        Ok(on_pool!(self, pool => {
            sqlx::query("DELETE FROM session_changes WHERE changed_ms < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

/// The last row written (0 when there is none).
async fn sqlite_end(pool: &sqlx::SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM session_changes")
        .fetch_one(pool)
        .await
}

/// The oldest transaction still running (or the next to start, when none is).
async fn postgres_mark(pool: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        .fetch_one(pool)
        .await
}
