//! `notification_delivery`: sends queued notifications over SMTP, at least once and never twice
//! for one notification.
//!
//! A run claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on Postgres), and for each:
//! checks it was not sent already (the row, and the mailer's memory of what the server accepted,
//! which covers a "sent" mark that failed to commit); sends it with its id as the Message-ID;
//! marks it. A transient failure is retried with exponential backoff, up to [`MAX_ATTEMPTS`];
//! then the row is `failed`. Without SMTP, or without a recipient, a row is `undeliverable`,
//! and the reason is logged.
//!
//! What remains: if the process dies after the server accepted a message and before the mark
//! commits, the row's lease runs out and the message is sent again with the same Message-ID,
//! which mail stores use to fold duplicates. That window is the length of one database write.

use chrono::Duration;
use lanyard_core::{Actor, NotificationStatus, Worker};
use lanyard_store::{Delivered, Outgoing};

use super::{Report, RunContext};
use crate::mailer::{SendError, SMTP_TIMEOUT};
use crate::metrics::{DeliveryResult, Label, NotificationLabels};
use crate::services::Services;

/// Attempts before a notification is given up as `failed`.
pub const MAX_ATTEMPTS: i32 = 8;

/// Notifications claimed per run at most.
const BATCH: u32 = 50;

/// How long a claimed notification is this run's.
const CLAIM: Duration = Duration::minutes(5);

/// Room left for clock skew between replicas when a claim is about to run out.
const CLAIM_MARGIN: Duration = Duration::minutes(1);

/// The wait after the `attempts`-th failure: 30 s, doubling, at most 6 h.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(10);
    Duration::seconds(30 * (1i64 << doublings)).min(Duration::hours(6))
}

pub(super) async fn run(svc: &Services, ctx: RunContext) -> anyhow::Result<Report> {
    let actor = Actor::worker(Worker::NotificationDelivery.as_str());
    let mut report = Report {
        skipped_test: u64::try_from(svc.store().queued_test_notifications().await?).unwrap_or(0),
        ..Report::default()
    };
    let claimed = svc
        .store()
        .claim_notifications(ctx.now, ctx.now + CLAIM, BATCH)
        .await?;
    if !claimed.is_empty() && !svc.mailer().enabled() {
        tracing::warn!(
            count = claimed.len(),
            "notifications are kept as undeliverable: LANYARD_SMTP_URL is not set"
        );
    }
    // A message may only start while its claim outlasts the send with a margin: past that,
    // another replica may claim the row, and two sends would race.
    let last_start = ctx.now + CLAIM - CLAIM_MARGIN - Duration::from_std(SMTP_TIMEOUT)?;
    for n in claimed {
        if svc.clock().now() > last_start {
            tracing::info!("the claim is running out; the rest waits for the next run");
            break;
        }
        let result = deliver(svc, &n).await?;
        let outcome = match &result {
            Ok(()) => Delivered::Sent,
            Err(SendError::Permanent(e)) => Delivered::GaveUp {
                status: if svc.mailer().enabled() {
                    NotificationStatus::Failed
                } else {
                    NotificationStatus::Undeliverable
                },
                error: e,
            },
            Err(SendError::Transient(e)) if n.attempts >= MAX_ATTEMPTS => Delivered::GaveUp {
                status: NotificationStatus::Failed,
                error: e,
            },
            Err(SendError::Transient(e)) => Delivered::Retry {
                error: e,
                at: svc.clock().now() + backoff(n.attempts),
            },
        };
        let label = match &outcome {
            Delivered::Sent => DeliveryResult::Sent,
            Delivered::Retry { .. } => DeliveryResult::Retry,
            Delivered::GaveUp {
                status: NotificationStatus::Undeliverable,
                ..
            } => DeliveryResult::Undeliverable,
            Delivered::GaveUp { .. } => DeliveryResult::Failed,
        };
        if let Err(e) = &result {
            tracing::warn!(notification_id = %n.id, kind = %n.kind, attempts = n.attempts, error = %e, "notification not delivered");
        }
        svc.metrics()
            .notifications
            .get_or_create(&NotificationLabels {
                kind: Label(n.kind),
                result: Label(label),
            })
            .inc();
        // If this mark fails, the run fails; the mailer remembers the send, so the next run
        // marks the row without sending it again.
        svc.store()
            .mark_notification(&n, &outcome, &actor, svc.clock().now())
            .await?;
        if matches!(outcome, Delivered::Sent) {
            svc.mailer().forget(n.id);
            report.done += 1;
        }
    }
    Ok(report)
}

/// Sends `n` unless it went out already. The outer error is the store's.
async fn deliver(svc: &Services, n: &Outgoing) -> anyhow::Result<Result<(), SendError>> {
    if svc.mailer().accepted(n.id) || svc.store().notification_sent(n.id).await? {
        return Ok(Ok(()));
    }
    if !svc.mailer().enabled() {
        return Ok(Err(SendError::Permanent(
            "LANYARD_SMTP_URL is not set".into(),
        )));
    }
    let Some(to) = &n.recipient else {
        return Ok(Err(SendError::Permanent(
            "the team has no notification_email and no primary user".into(),
        )));
    };
    Ok(svc.mailer().send(n.id, to, &n.subject, &n.body).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_six_hours() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(4), Duration::seconds(240));
        assert_eq!(backoff(30), Duration::hours(6));
    }
}
