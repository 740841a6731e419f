//! Settings of the background workers and of notification delivery (CONTRACT §2, §12).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use lanyard_core::redact::redact_url;
use lanyard_core::{format_duration, parse_duration, Worker};
use secrecy::{ExposeSecret, SecretString};

use super::sources::{worker_env_name, Layer};
use super::ConfigError;

/// The default From address of notifications.
pub const DEFAULT_SMTP_FROM: &str = "Lanyard <lanyard@localhost>";

/// Where notifications are sent. `Debug` never shows the URL's password.
#[derive(Clone)]
pub struct Smtp {
    /// `smtp://user:pass@host:port` (clear text; `?tls=required` for STARTTLS) or `smtps://…`.
    pub url: SecretString,
    pub from: lettre::message::Mailbox,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// The workers' periods and thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    intervals: BTreeMap<Worker, Duration>,
    /// A test-cohort team older than this is reaped by the sweep.
    pub test_cohort_max_age: Duration,
    /// A team with no session for this long is a churn risk.
    pub churn_after: Duration,
    /// Whether `lanyard serve` runs the workers. Always on from configuration; tests that drive
    /// each run themselves turn it off.
    pub background: bool,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            intervals: BTreeMap::new(),
            test_cohort_max_age: Duration::from_secs(2 * 3600),
            churn_after: Duration::from_secs(14 * 86_400),
            background: true,
        }
    }
}

impl WorkerSettings {
    /// How often `worker` runs.
    pub fn interval(&self, worker: Worker) -> Duration {
        self.intervals
            .get(&worker)
            .copied()
            .unwrap_or_else(|| worker.default_interval())
    }

    /// Sets `worker`'s period (tests run workers on short ones).
    pub fn set_interval(&mut self, worker: Worker, every: Duration) {
        self.intervals.insert(worker, every);
    }
}

/// A duration from `min` to `max`; the error says what is wrong with it.
pub(super) fn duration_between(
    raw: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let d = parse_duration(raw).map_err(|e| e.to_string())?;
    if d < min || d > max {
        return Err(format!(
            "{} must be between {} and {}",
            format_duration(d),
            format_duration(min),
            format_duration(max)
        ));
    }
    Ok(d)
}

pub(super) fn worker_settings(layer: &mut Layer) -> Result<WorkerSettings, ConfigError> {
    let mut settings = WorkerSettings::default();
    for (name, table) in layer.workers.take().unwrap_or_default() {
        let Some(worker) = Worker::parse(&name) else {
            let known: Vec<&str> = Worker::ALL.iter().map(|w| w.as_str()).collect();
            return Err(ConfigError::invalid(
                "workers",
                format!(
                    "unknown worker {:?}; the workers are {}",
                    name.chars().take(64).collect::<String>(),
                    known.join(", ")
                ),
            ));
        };
        if let Some(raw) = table.interval {
            let every = duration_between(&raw, Duration::from_secs(1), Duration::from_secs(86_400))
                .map_err(|e| {
                    ConfigError::invalid(
                        "workers",
                        format!("{worker}.interval ({}): {e}", worker_env_name(worker)),
                    )
                })?;
            settings.set_interval(worker, every);
        }
    }
    if let Some(raw) = layer.test_cohort_max_age.take() {
        settings.test_cohort_max_age = duration_between(
            &raw,
            Duration::from_secs(60),
            Duration::from_secs(30 * 86_400),
        )
        .map_err(|e| {
            ConfigError::invalid("test_cohort_max_age (LANYARD_TEST_COHORT_MAX_AGE)", e)
        })?;
    }
    if let Some(raw) = layer.churn_after.take() {
        settings.churn_after = duration_between(
            &raw,
            Duration::from_secs(3600),
            Duration::from_secs(366 * 86_400),
        )
        .map_err(|e| ConfigError::invalid("churn_after (LANYARD_CHURN_AFTER)", e))?;
    }
    Ok(settings)
}

pub(super) fn smtp(layer: &mut Layer) -> Result<Option<Smtp>, ConfigError> {
    let from_raw = layer.smtp_from.take();
    let Some(url) = layer
        .smtp_url
        .take()
        .filter(|u| !u.expose_secret().trim().is_empty())
    else {
        return Ok(None);
    };
    let raw = url.expose_secret().trim();
    if !(raw.starts_with("smtp://") || raw.starts_with("smtps://")) {
        return Err(ConfigError::invalid(
            "smtp_url (LANYARD_SMTP_URL)",
            format!("{} must start with smtp:// or smtps://", redact_url(raw)),
        ));
    }
    if let Err(e) = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(raw).map(|_| ())
    {
        return Err(ConfigError::invalid(
            "smtp_url (LANYARD_SMTP_URL)",
            format!("{} is not a usable SMTP URL: {e}", redact_url(raw)),
        ));
    }
    let from_text = from_raw.unwrap_or_else(|| DEFAULT_SMTP_FROM.into());
    let from = from_text.trim().parse().map_err(|_| {
        ConfigError::invalid(
            "smtp_from (LANYARD_SMTP_FROM)",
            format!(
                "{:?} is not an email address, like Lanyard <lanyard@example.com>",
                from_text.chars().take(100).collect::<String>()
            ),
        )
    })?;
    Ok(Some(Smtp {
        url: SecretString::from(raw.to_string()),
        from,
    }))
}
