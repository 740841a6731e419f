//! `test_cohort_sweep`: reaps test-cohort teams that CI forgot, exactly as the reap route would,
//! audited with actor `sweep`. The deleting statement re-checks the cohort flag itself, so a real
//! team is never touched whatever races.

use lanyard_core::Actor;

use super::{Report, RunContext};
use crate::domain::e2e::{self, E2eError, Reaped};
use crate::services::Services;

/// Teams reaped per run at most; the rest wait for the next.
const BATCH: u32 = 100;

pub(super) async fn run(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let max_age = svc.config().workers.test_cohort_max_age;
    let before = ctx.now - chrono::Duration::from_std(max_age)?;
    let mut report = Report::default();
    for team_id in svc.store().stale_test_teams(before, BATCH).await? {
        match e2e::reap(svc, team_id, &Actor::sweep()).await {
            Ok(Reaped::Deleted { .. }) => {
                tracing::info!(%team_id, "backstop sweep reaped a stale test-cohort team");
                report.done += 1;
            }
            Ok(Reaped::AlreadyGone) | Err(E2eError::NotTestCohort) => {}
            Err(e) => anyhow::bail!("reaping {team_id}: {e}"),
        }
    }
    Ok(report)
}
