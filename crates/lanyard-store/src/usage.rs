//! Usage per team per UTC day: what the meter reads (session spans and mints, test-cohort teams
//! left out in the scan itself) and what it writes.
//!
//! The meter recomputes whole days and writes each value with "raise only", so a re-run, a crash
//! mid-run or a second replica writing the same day never counts twice.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::BeginWrite;
use crate::{on_pool, Store, StoreResult};

/// One session as the meter sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionSpan {
    pub id: Uuid,
    pub team_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// One upstream mint: a stored GitHub token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MintRow {
    pub id: Uuid,
    pub team_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A team's usage on one UTC day (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageDay {
    pub team_id: Uuid,
    pub day: String,
    pub session_minutes: i64,
    pub mints: i64,
}

impl Store {
    /// Sessions of real (not test-cohort) teams that were live at some point in `[from, to)`,
    /// by id after `after`, at most `limit`.
    pub async fn session_spans(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<SessionSpan>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT s.id, s.team_id, s.created_at, s.expires_at, s.stopped_at FROM sessions s \
                 JOIN teams t ON t.id = s.team_id AND t.is_test_cohort = $5 \
                 WHERE s.id > $3 AND s.created_at < $2 AND COALESCE(s.stopped_at, s.expires_at) > $1 \
                 ORDER BY s.id LIMIT $4",
            )
            .bind(from)
            .bind(to)
            .bind(after)
            .bind(i64::from(limit))
            .bind(false)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Mints for real teams in `[from, to)`, by id after `after`, at most `limit`.
    pub async fn mints_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<MintRow>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT g.id, g.team_id, g.created_at FROM github_tokens g \
                 JOIN teams t ON t.id = g.team_id AND t.is_test_cohort = $5 \
                 WHERE g.id > $3 AND g.created_at >= $1 AND g.created_at < $2 \
                 ORDER BY g.id LIMIT $4",
            )
            .bind(from)
            .bind(to)
            .bind(after)
            .bind(i64::from(limit))
            .bind(false)
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many test-cohort teams had a session live in `[from, to)`: the teams the meter skips.
    pub async fn test_teams_with_sessions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<i64> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(DISTINCT s.team_id) FROM sessions s \
                 JOIN teams t ON t.id = s.team_id AND t.is_test_cohort = $3 \
                 WHERE s.created_at < $2 AND COALESCE(s.stopped_at, s.expires_at) > $1",
            )
            .bind(from)
            .bind(to)
            .bind(true)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Writes whole-day values, each only raising what is stored, in one transaction. A row for
    /// a team that is gone, or is a test team, is dropped.
    pub async fn record_usage(&self, days: &[UsageDay]) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for day in days {
                sqlx::query(
                    "INSERT INTO usage_days (team_id, day, session_minutes, mints) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS \
                     (SELECT 1 FROM teams WHERE id = $1 AND is_test_cohort = $5) \
                     ON CONFLICT (team_id, day) DO UPDATE SET \
                     session_minutes = CASE WHEN excluded.session_minutes > usage_days.session_minutes \
                         THEN excluded.session_minutes ELSE usage_days.session_minutes END, \
                     mints = CASE WHEN excluded.mints > usage_days.mints \
                         THEN excluded.mints ELSE usage_days.mints END",
                )
                .bind(day.team_id)
                .bind(&day.day)
                .bind(day.session_minutes)
                .bind(day.mints)
                .bind(false)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The team's usage from `from` to `to` (inclusive days, `YYYY-MM-DD`), oldest first. Days
    /// without a row had no usage.
    pub async fn list_usage(
        &self,
        team_id: Uuid,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<UsageDay>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT team_id, day, session_minutes, mints FROM usage_days \
                 WHERE team_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            )
            .bind(team_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }
}
