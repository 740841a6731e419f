//! The workers that queue notifications: `quota_nudge`, `churn_score` and `pat_expiry_warning`.
//! Each queues under a key that makes "once a day", "once" or "once per token and expiry" a
//! unique constraint, so repeated runs and second replicas queue nothing more. Test-cohort teams
//! are left out by the scans' SQL; the same scan with the flag turned counts them.

use chrono::Duration;
use lanyard_core::{Actor, NotificationKind, Tier, Worker};
use lanyard_store::{ActiveCount, NewNotification};

use super::{Report, RunContext};
use crate::services::Services;

/// A PAT that expires within this is warned about.
pub const PAT_WARNING: Duration = Duration::days(7);

/// Teams flagged per churn run at most.
const CHURN_BATCH: u32 = 500;

/// Whether `active` sessions are at least 80 % of the tier's limit.
fn near_limit(tier: Tier, active: i64) -> bool {
    let limit = i64::from(tier.limits().max_active_sessions);
    limit > 0 && active * 5 >= limit * 4
}

fn count<T>(items: &[T]) -> u64 {
    u64::try_from(items.len()).unwrap_or(u64::MAX)
}

pub(super) async fn quota(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let actor = Actor::worker(Worker::QuotaNudge.as_str());
    let day = ctx.now.format("%Y-%m-%d");
    let mut report = Report::default();
    for ActiveCount {
        team_id,
        tier,
        active,
    } in svc.store().active_session_counts(ctx.now, false).await?
    {
        if !near_limit(tier, active) {
            continue;
        }
        let limit = tier.limits().max_active_sessions;
        let note = NewNotification {
            team_id,
            kind: NotificationKind::QuotaNudge,
            dedupe_key: format!("quota_nudge:{team_id}:{day}"),
            subject: "Lanyard: your team is near its session limit".into(),
            body: format!(
                "Your team has {active} active agent sessions; its {tier} tier allows {limit}.\n\
                 New sessions are refused at the limit. Stop sessions you no longer need, or \
                 move to a larger tier.\n"
            ),
        };
        if svc
            .store()
            .queue_notification(&note, &actor, ctx.now)
            .await?
            .is_some()
        {
            report.done += 1;
        }
    }
    let test = svc.store().active_session_counts(ctx.now, true).await?;
    report.skipped_test = test.iter().filter(|c| near_limit(c.tier, c.active)).count() as u64;
    Ok(report)
}

pub(super) async fn churn(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let actor = Actor::worker(Worker::ChurnScore.as_str());
    let quiet_for = svc.config().workers.churn_after;
    let since = ctx.now - Duration::from_std(quiet_for)?;
    let days = quiet_for.as_secs() / 86_400;
    let mut report = Report::default();
    for team_id in svc.store().quiet_teams(since, false, CHURN_BATCH).await? {
        let note = NewNotification {
            team_id,
            kind: NotificationKind::ChurnRisk,
            dedupe_key: format!("churn_risk:{team_id}"),
            subject: "Lanyard: we have not seen your agents for a while".into(),
            body: format!(
                "Your team has run no agent session in the last {days} days.\n\
                 If something stopped working, reply to this message and tell us.\n"
            ),
        };
        if svc.store().flag_churn_risk(&note, &actor, ctx.now).await? {
            report.done += 1;
        }
    }
    report.skipped_test = count(&svc.store().quiet_teams(since, true, CHURN_BATCH).await?);
    Ok(report)
}

pub(super) async fn pat_expiry(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let actor = Actor::worker(Worker::PatExpiryWarning.as_str());
    let before = ctx.now + PAT_WARNING;
    let mut report = Report::default();
    for pat in svc.store().expiring_pats(ctx.now, before, false).await? {
        let expires = pat.pat_expires_at.to_rfc3339();
        let note = NewNotification {
            team_id: pat.team_id,
            kind: NotificationKind::PatExpiring,
            dedupe_key: format!("pat_expiring:{}:{expires}", pat.connection_id),
            subject: format!("Lanyard: the token for {} expires soon", pat.owner),
            body: format!(
                "The personal access token connecting {owner} on {host} expires at {expires}.\n\
                 Agents lose access to {owner} then. Rotate it before then: PATCH \
                 /v1/github/connections/{id} with a new token.\n",
                owner = pat.owner,
                host = pat.host,
                id = pat.connection_id,
            ),
        };
        if svc
            .store()
            .queue_notification(&note, &actor, ctx.now)
            .await?
            .is_some()
        {
            report.done += 1;
        }
    }
    report.skipped_test = count(&svc.store().expiring_pats(ctx.now, before, true).await?);
    Ok(report)
}
