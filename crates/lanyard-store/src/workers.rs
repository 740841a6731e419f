//! The schedule of background workers, shared by every replica on one database.
//!
//! A run is claimed with one conditional UPDATE on the worker's row: it succeeds only when the
//! worker is due and no live lease is held, so with several replicas each period runs once. The
//! lease lets another replica take over if the one running dies; the units of work themselves are
//! idempotent too, so a run that outlives its lease does no harm.

use chrono::{DateTime, Utc};

use crate::{on_pool, Store, StoreResult};

/// A worker's row: its schedule and how its last run went.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkerRunRecord {
    pub worker: String,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_ok_at: Option<DateTime<Utc>>,
}

/// A run this replica claimed: what the last good run saw, for workers that pick up from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedRun {
    pub last_ok_at: Option<DateTime<Utc>>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunEnd<'a> {
    pub ok: bool,
    /// A short cause when it failed; never a secret.
    pub error: Option<&'a str>,
    pub started_at: DateTime<Utc>,
    pub next_run_at: DateTime<Utc>,
}

impl Store {
    /// Claims `worker`'s run for `owner` if it is due at `now` and nobody holds it; the claim
    /// lasts until `lease_until`.
    pub async fn claim_worker_run(
        &self,
        worker: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ClaimedRun>> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO worker_runs (worker, next_run_at) VALUES ($1, $2) \
                 ON CONFLICT (worker) DO NOTHING",
            )
            .bind(worker)
            .bind(now)
            .execute(pool)
            .await?;
            let claimed: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
                "UPDATE worker_runs SET lease_owner = $2, lease_until = $3 \
                 WHERE worker = $1 AND next_run_at <= $4 \
                 AND (lease_until IS NULL OR lease_until <= $4) RETURNING last_ok_at",
            )
            .bind(worker)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(claimed.map(|last_ok_at| ClaimedRun { last_ok_at }))
        })
    }

    /// Records how `owner`'s run ended and when the worker runs next. A run whose lease another
    /// replica has taken over records nothing.
    pub async fn finish_worker_run(
        &self,
        worker: &str,
        owner: &str,
        end: &RunEnd<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let error = end.error.map(|e| e.chars().take(500).collect::<String>());
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE worker_runs SET last_run_at = $3, last_result = $4, last_error = $5, \
                 last_ok_at = CASE WHEN $6 THEN $7 ELSE last_ok_at END, next_run_at = $8, \
                 lease_owner = NULL, lease_until = NULL WHERE worker = $1 AND lease_owner = $2",
            )
            .bind(worker)
            .bind(owner)
            .bind(now)
            .bind(if end.ok { "ok" } else { "error" })
            .bind(error)
            .bind(end.ok)
            .bind(end.started_at)
            .bind(end.next_run_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every worker's row, by name. A worker that never ran has none.
    pub async fn worker_runs(&self) -> StoreResult<Vec<WorkerRunRecord>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT worker, next_run_at, last_run_at, last_result, last_error, last_ok_at \
                 FROM worker_runs ORDER BY worker",
            )
            .fetch_all(pool)
            .await?
        }))
    }
}
