//! How a failed command reports itself: `error: <code>: <sentence>` on stderr, never a Rust
//! `Debug` rendering (CONTRACT §17), and an exit code that says whose the fault is: 2 for
//! something the caller gave (a flag, the configuration, a request the domain refused), 1 for a
//! failure (a database that does not answer, an unexpected error).
//!
//! A domain error is reported with the code and message the HTTP API gives it (through the one
//! mapping in `http::error`), so an operator reads the same words a platform does.

use std::process::ExitCode;

use lanyard_store::StoreError;

use crate::config::ConfigError;
use crate::http::error::ApiError;

/// A flag whose value does not parse: `invalid_argument`.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct BadArgument {
    pub flag: String,
    pub reason: String,
}

/// `--flag: reason`, for an argument that does not parse.
pub fn arg<T, E: std::fmt::Display>(flag: &str, r: Result<T, E>) -> anyhow::Result<T> {
    r.map_err(|e| bad(flag, e))
}

/// The error of a flag whose value is refused.
pub fn bad(flag: &str, reason: impl std::fmt::Display) -> anyhow::Error {
    BadArgument {
        flag: format!("--{flag}"),
        reason: reason.to_string(),
    }
    .into()
}

/// A domain error, as the command's error: reported with its API code and message.
pub fn domain<E: Into<ApiError>>(e: E) -> anyhow::Error {
    anyhow::Error::new(e.into())
}

/// The report of one failed command.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub code: &'static str,
    pub message: String,
    /// The caller gave something wrong (exit 2), rather than something failing (exit 1).
    pub caller: bool,
}

impl Report {
    pub fn of(e: &anyhow::Error) -> Self {
        if let Some(api) = e.downcast_ref::<ApiError>() {
            let status = api.status();
            return Self {
                code: api.code.as_str(),
                // An operator sees the cause the API keeps to its log.
                message: match api.cause() {
                    Some(cause) if status.is_server_error() => format!("{cause:#}"),
                    _ => api.message().to_string(),
                },
                caller: status.is_client_error(),
            };
        }
        if e.downcast_ref::<ConfigError>().is_some() {
            return Self {
                code: "invalid_config",
                message: format!("{e:#}"),
                caller: true,
            };
        }
        if e.downcast_ref::<BadArgument>().is_some() {
            return Self {
                code: "invalid_argument",
                message: format!("{e:#}"),
                caller: true,
            };
        }
        let unavailable = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<StoreError>(),
                Some(StoreError::Unavailable(_))
            )
        });
        Self {
            code: if unavailable {
                "service_unavailable"
            } else {
                "failed"
            },
            message: format!("{e:#}"),
            caller: false,
        }
    }

    /// The line printed on stderr.
    pub fn line(&self) -> String {
        let mut message = self.message.trim_end().to_string();
        if !message.ends_with(['.', '?', '!']) {
            message.push('.');
        }
        format!("error: {}: {message}", self.code)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(if self.caller { 2 } else { 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanyard_core::ErrorCode;

    #[test]
    fn a_domain_refusal_is_its_code_and_sentence_and_exits_2() {
        let e = domain(ApiError::new(
            ErrorCode::InstallationMismatch,
            "Installation 78 belongs to other, not acme.",
        ));
        let report = Report::of(&e);
        assert_eq!(
            report.line(),
            "error: installation_mismatch: Installation 78 belongs to other, not acme."
        );
        assert_eq!(report.exit_code(), ExitCode::from(2));
    }

    #[test]
    fn arguments_config_and_failures_have_codes_of_their_own() {
        let bad: anyhow::Result<()> = arg("tier", Err("unknown tier gold"));
        let report = Report::of(&bad.unwrap_err());
        assert_eq!(
            report.line(),
            "error: invalid_argument: --tier: unknown tier gold."
        );
        assert!(report.caller);
        let report = Report::of(&anyhow::anyhow!("disk full"));
        assert_eq!(report.line(), "error: failed: disk full.");
        assert_eq!(report.exit_code(), ExitCode::from(1));
    }
}
