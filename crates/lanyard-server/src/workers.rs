//! Background workers. Each is safe with several replicas: its unit of work is idempotent and
//! race-safe (a reap of a team already gone is a no-op).

use std::time::Duration;

use lanyard_core::ErrorCode;
use tokio::sync::watch;

use crate::domain::e2e;
use crate::metrics::WorkerLabels;
use crate::state::AppState;

lanyard_core::string_enum! {
    /// The registry of workers.
    pub enum Worker {
        /// Reaps test-cohort teams that CI forgot, once they are older than two hours.
        TestCohortSweep = "test_cohort_sweep",
    }
}

/// A test-cohort team older than this is reaped by the backstop sweep.
pub const TEST_COHORT_MAX_AGE: chrono::Duration = chrono::Duration::hours(2);

impl Worker {
    pub const fn period(self) -> Duration {
        match self {
            Worker::TestCohortSweep => Duration::from_secs(600),
        }
    }

    /// One pass; returns how many units of work it did.
    pub async fn run_once(self, state: &AppState) -> anyhow::Result<usize> {
        match self {
            Worker::TestCohortSweep => sweep_test_cohorts(state).await,
        }
    }
}

async fn sweep_test_cohorts(state: &AppState) -> anyhow::Result<usize> {
    let before = state.clock().now() - TEST_COHORT_MAX_AGE;
    let mut reaped = 0;
    for team_id in state.store().stale_test_teams(before, 100).await? {
        match e2e::reap(state, team_id).await {
            Ok(body) if body["team_deleted"] == true => {
                tracing::info!(%team_id, "backstop sweep reaped a stale test-cohort team");
                reaped += 1;
            }
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotTestCohort => {}
            Err(e) => anyhow::bail!("reaping {team_id}: {}", e.message()),
        }
    }
    Ok(reaped)
}

/// Runs every worker on its period until `shutdown` fires.
pub async fn run_all(state: AppState, shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for &worker in Worker::ALL {
        let state = state.clone();
        let mut shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let result = worker.run_once(&state).await;
                let label = match &result {
                    Ok(_) => "ok",
                    Err(e) => {
                        tracing::warn!(worker = worker.as_str(), error = %e, "worker run failed");
                        "error"
                    }
                };
                state
                    .metrics()
                    .worker_runs
                    .get_or_create(&WorkerLabels {
                        worker: worker.as_str(),
                        result: label,
                    })
                    .inc();
                tokio::select! {
                    () = tokio::time::sleep(worker.period()) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
