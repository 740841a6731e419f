//! The registry of background workers: each one's name, default period, and whether it must
//! skip test-cohort teams (CONTRACT §8, §12).

use std::time::Duration;

crate::string_enum! {
    pub enum Worker {
        /// Marks sessions past their expiry `expired` and revokes the tokens nobody live holds.
        SessionExpiry = "session_expiry",
        /// Reaps test-cohort teams that CI forgot, once they are older than the maximum age.
        TestCohortSweep = "test_cohort_sweep",
        /// Writes session-minutes and upstream mints per team per UTC day.
        UsageMeter = "usage_meter",
        /// Queues a notification for a team at 80 % of its active-session limit.
        QuotaNudge = "quota_nudge",
        /// Sends queued notifications over SMTP.
        NotificationDelivery = "notification_delivery",
        /// Flags teams with no session for a while as churn risks.
        ChurnScore = "churn_score",
        /// Warns about personal access tokens that expire within 7 days.
        PatExpiryWarning = "pat_expiry_warning",
    }
}

impl Worker {
    /// How often it runs unless configured otherwise.
    pub const fn default_interval(self) -> Duration {
        match self {
            Worker::SessionExpiry => Duration::from_secs(30),
            Worker::TestCohortSweep => Duration::from_secs(600),
            Worker::UsageMeter | Worker::QuotaNudge => Duration::from_secs(60),
            Worker::NotificationDelivery => Duration::from_secs(10),
            Worker::ChurnScore | Worker::PatExpiryWarning => Duration::from_secs(3600),
        }
    }

    /// Whether the worker must leave test-cohort teams alone: every worker that bills, emails,
    /// nudges or scores must. Clean-up workers must not: cleaning test teams up is their job.
    pub const fn skips_test_cohort(self) -> bool {
        match self {
            Worker::SessionExpiry | Worker::TestCohortSweep => false,
            Worker::UsageMeter
            | Worker::QuotaNudge
            | Worker::NotificationDelivery
            | Worker::ChurnScore
            | Worker::PatExpiryWarning => true,
        }
    }
}

crate::string_enum! {
    /// What a notification is about (CONTRACT §12).
    pub enum NotificationKind {
        /// The team reached 80 % of its tier's active-session limit (at most one a day).
        QuotaNudge = "quota_nudge",
        /// The broker failed to mint a credential several times in a row.
        RefreshFailing = "refresh_failing",
        /// A personal access token expires within 7 days (once per token and expiry).
        PatExpiring = "pat_expiring",
        /// The team has had no session for a while (once).
        ChurnRisk = "churn_risk",
    }
}

crate::string_enum! {
    /// Where a notification is in its delivery.
    pub enum NotificationStatus {
        Queued = "queued",
        Sent = "sent",
        Undeliverable = "undeliverable",
        Failed = "failed",
    }
}
