//! Renewals that keep failing upstream: after [`REFRESH_FAILURES_TO_NOTIFY`] failed mints of one
//! scope in a row, the team is told (a `refresh_failing` notification, at most one a day per
//! connection; never for a test-cohort team, which the outbox's insert refuses).

use lanyard_core::{Actor, NotificationKind};
use lanyard_store::NewNotification;

use crate::mint::MintRequest;
use crate::Broker;

/// Failed mints of one scope in a row before the team is told.
pub const REFRESH_FAILURES_TO_NOTIFY: u32 = 3;

impl Broker {
    /// Counts a mint's outcome for its scope; queues the notification on the N-th failure.
    pub(super) fn note_outcome(&self, req: &MintRequest<'_>, ok: bool) {
        if ok {
            self.caches.failures.invalidate(req.key);
            return;
        }
        let failures = self
            .caches
            .failures
            .entry_by_ref(req.key)
            .and_upsert_with(|n| n.map_or(1, |n| n.into_value().saturating_add(1)))
            .into_value();
        if failures != REFRESH_FAILURES_TO_NOTIFY {
            return;
        }
        let now = self.clock.now();
        let provider = req.registered.provider.kind().title();
        let connection = req.ask.connection;
        let note = NewNotification {
            team_id: req.team_id,
            kind: NotificationKind::RefreshFailing,
            dedupe_key: format!(
                "refresh_failing:{}:{}:{}",
                req.team_id,
                connection.id,
                now.format("%Y-%m-%d")
            ),
            subject: format!("Lanyard: {provider} keeps refusing your agents' credentials"),
            body: format!(
                "The last {failures} attempts to obtain a {provider} credential for {} on {} \
                 failed (repositories: {}).\nAgents are served the current credential while it \
                 meets the guarantee, then get errors. Check the connection's state and \
                 permissions on {}.\n",
                connection.owner,
                req.host,
                (req.ask.repositories.iter())
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                req.host,
            ),
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            let actor = Actor::worker("broker");
            if let Err(e) = store.queue_notification(&note, &actor, now).await {
                tracing::warn!(error = %e, "could not queue the refresh_failing notification");
            }
        });
    }
}
