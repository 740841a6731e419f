//! Background workers (the registry is `lanyard_core::Worker`, CONTRACT §12).
//!
//! **One run per period across replicas.** Each worker has a row in `worker_runs`. A replica
//! runs a worker only after claiming that row with one conditional UPDATE (due, and no live
//! lease), on SQLite and Postgres alike. We chose a lease row over a Postgres advisory lock
//! because a session-level advisory lock pins a pooled connection for the whole run (runs call
//! GitHub and SMTP) and vanishes silently with it, SQLite has none, and the row also gives
//! `lanyard admin workers` its last run, result and next run.
//!
//! **Each unit once.** The lease is not trusted alone: a run may outlive it. So every unit of work
//! is claimed or written so that doing it twice changes nothing: a session is expired by an UPDATE
//! that matches only an unexpired row; a token is revoked only by whoever claimed its row; usage
//! days are recomputed whole and only raised; a notification is queued under a unique key and
//! delivery claims rows with `FOR UPDATE SKIP LOCKED` on Postgres.
//!
//! **Test teams.** Workers that bill, email, nudge or score leave test-cohort teams out in the SQL
//! of their scans, so a row whose team is gone is left out too; a twin query counts what was
//! skipped into `lanyard_worker_skipped_test_cohort_total{worker}`.
//!
//! **Isolation.** Each worker runs in its own task. A failed run logs its cause and the worker
//! tries again on its next period; a panic is caught the same way. Neither touches the others.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::Worker;
use lanyard_store::RunEnd;
use tokio::sync::watch;
use tracing::Instrument;

use crate::metrics::{Label, RunResult, WorkerLabel, WorkerLabels};
use crate::services::Services;

mod delivery;
mod expiry;
mod meter;
mod nudges;
mod sweep;

pub use delivery::MAX_ATTEMPTS;
pub use meter::{minutes_by_day, MAX_BACKFILL_DAYS};

/// How long a claimed run is this replica's before another may take it over.
pub const LEASE: Duration = Duration::from_secs(300);

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Units of work done: sessions expired, teams reaped, days written, notifications queued
    /// or delivered.
    pub done: usize,
    /// Test-cohort teams (or their rows) left alone.
    pub skipped_test: u64,
}

/// What one run sees: the time it started and where the last good run left off.
#[derive(Debug, Clone, Copy)]
pub struct RunContext {
    pub now: DateTime<Utc>,
    pub last_ok_at: Option<DateTime<Utc>>,
}

/// One pass of `worker`, unconditionally (the schedule is [`tick`]'s business).
pub async fn run_once(worker: Worker, svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    match worker {
        Worker::SessionExpiry => expiry::run(svc, ctx).await,
        Worker::TestCohortSweep => sweep::run(svc, ctx).await,
        Worker::UsageMeter => meter::run(svc, ctx).await,
        Worker::QuotaNudge => nudges::quota(svc, ctx).await,
        Worker::NotificationDelivery => delivery::run(svc, ctx).await,
        Worker::ChurnScore => nudges::churn(svc, ctx).await,
        Worker::PatExpiryWarning => nudges::pat_expiry(svc, ctx).await,
    }
}

/// One pass of `worker` now, outside the schedule (what an operator or a test asks for): the
/// usage meter then looks back its full window.
pub async fn run_now(worker: Worker, svc: &Services) -> anyhow::Result<Report> {
    let ctx = RunContext {
        now: svc.clock().now(),
        last_ok_at: None,
    };
    run_once(worker, svc, ctx).await
}

/// How a [`tick`] went.
#[derive(Debug)]
pub enum Ticked {
    /// Not due yet, or another replica holds the run.
    NotDue,
    Ran(Report),
    Failed(String),
}

/// Runs `worker` if it is due and no replica holds it: claims the run, does it, records the
/// result and the next run, counts the metrics. Errors and panics become [`Ticked::Failed`].
pub async fn tick(worker: Worker, svc: &Services) -> Ticked {
    let now = svc.clock().now();
    let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let claimed = match svc
        .store()
        .claim_worker_run(worker.as_str(), svc.replica(), now, lease_until)
        .await
    {
        Ok(Some(claimed)) => claimed,
        Ok(None) => return Ticked::NotDue,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim the worker's run; trying next period");
            count_run(svc, worker, RunResult::Error);
            return Ticked::Failed(e.to_string());
        }
    };
    let ctx = RunContext {
        now,
        last_ok_at: claimed.last_ok_at,
    };
    // Its own task, so that a panic ends this run only.
    let task = {
        let svc = svc.clone();
        tokio::spawn(async move { run_once(worker, &svc, ctx).await }.in_current_span())
    };
    let result = match task.await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("the run panicked".to_string()),
    };
    let interval = svc.config().workers.interval(worker);
    let end = RunEnd {
        ok: result.is_ok(),
        error: result.as_ref().err().map(String::as_str),
        started_at: now,
        next_run_at: now + chrono::Duration::from_std(interval).unwrap_or_default(),
    };
    if let Err(e) = svc
        .store()
        .finish_worker_run(worker.as_str(), svc.replica(), &end, svc.clock().now())
        .await
    {
        tracing::warn!(error = %e, "could not record the worker's run");
    }
    match result {
        Ok(report) => {
            count_run(svc, worker, RunResult::Ok);
            if report.skipped_test > 0 {
                svc.metrics()
                    .worker_skipped_test_cohort
                    .get_or_create(&WorkerLabel {
                        worker: Label(worker),
                    })
                    .inc_by(report.skipped_test);
            }
            if report.done > 0 {
                tracing::info!(
                    done = report.done,
                    skipped_test = report.skipped_test,
                    "worker run"
                );
            }
            Ticked::Ran(report)
        }
        Err(cause) => {
            tracing::warn!(error = %cause, "worker run failed; it runs again next period");
            count_run(svc, worker, RunResult::Error);
            Ticked::Failed(cause)
        }
    }
}

fn count_run(svc: &Services, worker: Worker, result: RunResult) {
    svc.metrics()
        .worker_runs
        .get_or_create(&WorkerLabels {
            worker: Label(worker),
            result: Label(result),
        })
        .inc();
}

/// How often a worker's task looks whether its run is due: its period, but at least once a
/// minute (so a run another replica held, or a shortened period, is picked up) and at most
/// once a second.
fn poll_period(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Runs every worker, each in its own task, until `shutdown` fires.
pub async fn run_all(svc: Services, shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for &worker in Worker::ALL {
        let svc = svc.clone();
        let mut shutdown = shutdown.clone();
        let every = poll_period(svc.config().workers.interval(worker));
        tasks.push(tokio::spawn(async move {
            loop {
                let span = tracing::info_span!("worker", worker = worker.as_str());
                tick(worker, &svc).instrument(span).await;
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
