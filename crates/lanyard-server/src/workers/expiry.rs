//! `session_expiry`: a session past its `expires_at` is marked expired with `session.expired`,
//! and the tokens whose last live holder it was are revoked at GitHub, under the same holder
//! locks and rule as a stop. Test teams are not skipped: ending their sessions is clean-up.

use lanyard_core::Worker;

use super::{Report, RunContext};
use crate::services::Services;

/// Sessions expired per run at most; the rest wait for the next.
const BATCH: u32 = 500;

pub(super) async fn run(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let actor = lanyard_core::Actor::worker(Worker::SessionExpiry.as_str());
    let mut report = Report::default();
    for (team_id, id) in svc.store().expiring_sessions(ctx.now, BATCH).await? {
        // None: another replica, or a stop, got there first.
        let Some(ended) = svc
            .store()
            .expire_session(team_id, id, &actor, ctx.now)
            .await?
        else {
            continue;
        };
        svc.broker().forget_session(&ended.runner_lookup);
        let revoked = svc.broker().revoke(ended.revoke).await;
        tracing::debug!(session_id = %id, revoked, "session expired");
        report.done += 1;
    }
    Ok(report)
}
