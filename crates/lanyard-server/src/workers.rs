//! Background workers (the registry is `lanyard_core::Worker`). Each is safe with several
//! replicas: its unit of work is idempotent and race-safe (a reap of a team already gone is a
//! no-op). Each run happens inside a `worker` span, so its log lines name it.

use lanyard_core::{Actor, Worker};
use tokio::sync::watch;
use tracing::Instrument;

use crate::domain::e2e::{self, E2eError, Reaped};
use crate::metrics::{Label, RunResult, WorkerLabels};
use crate::services::Services;

/// A test-cohort team older than this is reaped by the backstop sweep.
pub const TEST_COHORT_MAX_AGE: chrono::Duration = chrono::Duration::hours(2);

/// One pass of `worker`; returns how many units of work it did.
pub async fn run_once(worker: Worker, svc: &Services) -> anyhow::Result<usize> {
    match worker {
        Worker::TestCohortSweep => sweep_test_cohorts(svc).await,
    }
}

async fn sweep_test_cohorts(svc: &Services) -> anyhow::Result<usize> {
    let before = svc.clock().now() - TEST_COHORT_MAX_AGE;
    let mut reaped = 0;
    for team_id in svc.store().stale_test_teams(before, 100).await? {
        match e2e::reap(svc, team_id, &Actor::sweep()).await {
            Ok(Reaped::Deleted { .. }) => {
                tracing::info!(%team_id, "backstop sweep reaped a stale test-cohort team");
                reaped += 1;
            }
            Ok(Reaped::AlreadyGone) | Err(E2eError::NotTestCohort) => {}
            Err(e) => anyhow::bail!("reaping {team_id}: {e}"),
        }
    }
    Ok(reaped)
}

/// Runs every worker on its period until `shutdown` fires.
pub async fn run_all(svc: Services, shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for &worker in Worker::ALL {
        let svc = svc.clone();
        let mut shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let span = tracing::info_span!("worker", worker = worker.as_str());
                let result = run_once(worker, &svc).instrument(span.clone()).await;
                let label = match &result {
                    Ok(_) => RunResult::Ok,
                    Err(e) => {
                        span.in_scope(|| tracing::warn!(error = %e, "worker run failed"));
                        RunResult::Error
                    }
                };
                svc.metrics()
                    .worker_runs
                    .get_or_create(&WorkerLabels {
                        worker: Label(worker),
                        result: Label(label),
                    })
                    .inc();
                tokio::select! {
                    () = tokio::time::sleep(worker.default_interval()) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
