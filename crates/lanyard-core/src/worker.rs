//! The registry of background workers: each one's name, default period, and whether it must
//! skip test-cohort teams (CONTRACT §8, §12).

use std::time::Duration;

crate::string_enum! {
    pub enum Worker {
        /// Reaps test-cohort teams that CI forgot, once they are older than two hours.
        TestCohortSweep = "test_cohort_sweep",
    }
}

impl Worker {
    /// How often it runs unless configured otherwise.
    pub const fn default_interval(self) -> Duration {
        match self {
            Worker::TestCohortSweep => Duration::from_secs(600),
        }
    }

    /// Whether the worker must leave test-cohort teams alone: every worker that bills, emails,
    /// nudges or scores must. Clean-up workers must not: cleaning test teams up is their job.
    pub const fn skips_test_cohort(self) -> bool {
        match self {
            Worker::TestCohortSweep => false,
        }
    }
}
