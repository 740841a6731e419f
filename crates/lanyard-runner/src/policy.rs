//! When to refresh a credential. Pure functions of the clock's "now", so tests can replay days
//! of token lifetimes in microseconds.
//!
//! - After a success: at the refresh interval, or when the token comes within the refresh buffer
//!   of its expiry, whichever is first. A token with less life than the buffer is refreshed when
//!   half of its remaining life has passed. Never sooner than [`MIN_GAP`]: the runner never spins.
//! - After a failure: exponential backoff from 1 s, capped at 60 s, so a dead server is not
//!   hammered while the current token is still served.
//! - Every delay carries jitter (±10 %), so many runners do not refresh in lockstep.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The shortest gap between two refreshes of one credential.
pub const MIN_GAP: Duration = Duration::from_secs(1);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Jitter spreads each delay by up to this fraction either way.
pub const JITTER: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub interval: Duration,
    pub buffer: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            buffer: Duration::from_secs(300),
        }
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Scales `d` by `1 + JITTER * unit`, with `unit` in [-1, 1].
fn jittered(d: Duration, unit: f64) -> Duration {
    d.mul_f64(1.0 + JITTER * unit.clamp(-1.0, 1.0))
}

impl Policy {
    /// The next refresh after a successful fetch at `now` of a token expiring at `expires_at`
    /// (`None` for a PAT or an unparsable expiry: interval refresh only).
    pub fn after_success(
        &self,
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        unit: f64,
    ) -> DateTime<Utc> {
        let mut delay = jittered(self.interval, unit);
        if let Some(expires_at) = expires_at {
            let remaining = (expires_at - now).to_std().unwrap_or(Duration::ZERO);
            let by_expiry = if remaining > self.buffer {
                jittered(remaining - self.buffer, unit.min(0.0))
            } else {
                jittered(remaining / 2, unit.min(0.0))
            };
            delay = delay.min(by_expiry);
        }
        now + chrono(delay.max(MIN_GAP))
    }

    /// The next attempt after `failures` consecutive failures (1 for the first).
    pub fn after_failure(&self, now: DateTime<Utc>, failures: u32, unit: f64) -> DateTime<Utc> {
        let exp = failures.saturating_sub(1).min(16);
        let backoff = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_MAX);
        now + chrono(jittered(backoff, unit).max(MIN_GAP))
    }
}

pub use lanyard_core::wire::parse_expiry;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn secs(s: i64) -> chrono::Duration {
        chrono::Duration::seconds(s)
    }

    #[test]
    fn success_schedule_table() {
        let p = Policy::default();
        struct Case {
            name: &'static str,
            expires_in: Option<i64>,
            unit: f64,
            want_in: i64,
        }
        let cases = [
            Case {
                name: "interval wins for a fresh 1 h token",
                expires_in: Some(3600),
                unit: 0.0,
                want_in: 60,
            },
            Case {
                name: "buffer wins near expiry",
                expires_in: Some(330),
                unit: 0.0,
                want_in: 30,
            },
            Case {
                name: "inside the buffer, the interval can still be first",
                expires_in: Some(300),
                unit: 0.0,
                want_in: 60,
            },
            Case {
                name: "inside the buffer: half the remaining life",
                expires_in: Some(100),
                unit: 0.0,
                want_in: 50,
            },
            Case {
                name: "short token: half its remaining life",
                expires_in: Some(30),
                unit: 0.0,
                want_in: 15,
            },
            Case {
                name: "PAT: interval only",
                expires_in: None,
                unit: 0.0,
                want_in: 60,
            },
            Case {
                name: "jitter up stretches the interval",
                expires_in: None,
                unit: 1.0,
                want_in: 66,
            },
            Case {
                name: "jitter down shortens the interval",
                expires_in: None,
                unit: -1.0,
                want_in: 54,
            },
            Case {
                name: "jitter never delays past the buffer",
                expires_in: Some(330),
                unit: 1.0,
                want_in: 30,
            },
            Case {
                name: "expired token: no spinning",
                expires_in: Some(-10),
                unit: 0.0,
                want_in: 1,
            },
            Case {
                name: "1 s left: no spinning",
                expires_in: Some(1),
                unit: 0.0,
                want_in: 1,
            },
        ];
        for c in cases {
            let expires = c.expires_in.map(|s| t0() + secs(s));
            let next = p.after_success(t0(), expires, c.unit);
            assert_eq!(next, t0() + secs(c.want_in), "{}", c.name);
        }
    }

    #[test]
    fn custom_interval_and_buffer() {
        let p = Policy {
            interval: Duration::from_secs(10),
            buffer: Duration::from_secs(20),
        };
        // 30 s token with a 20 s buffer: refresh at 10 s (interval and buffer agree).
        assert_eq!(
            p.after_success(t0(), Some(t0() + secs(30)), 0.0),
            t0() + secs(10)
        );
        // 100 s token: interval first.
        assert_eq!(
            p.after_success(t0(), Some(t0() + secs(100)), 0.0),
            t0() + secs(10)
        );
    }

    #[test]
    fn failure_backoff_table() {
        let p = Policy::default();
        for (failures, want) in [(1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (30, 60)] {
            assert_eq!(
                p.after_failure(t0(), failures, 0.0),
                t0() + secs(want),
                "{failures} failures"
            );
        }
        // Jitter bounds on the backoff.
        assert_eq!(
            p.after_failure(t0(), 4, 1.0),
            t0() + chrono::Duration::milliseconds(8800)
        );
        assert_eq!(
            p.after_failure(t0(), 4, -1.0),
            t0() + chrono::Duration::milliseconds(7200)
        );
    }

    #[test]
    fn recovery_returns_to_the_normal_schedule() {
        let p = Policy::default();
        let mut now = t0();
        for failures in 1..=5 {
            now = p.after_failure(now, failures, 0.0);
        }
        assert_eq!(now, t0() + secs(1 + 2 + 4 + 8 + 16));
        let next = p.after_success(now, Some(now + secs(3600)), 0.0);
        assert_eq!(
            next,
            now + secs(60),
            "after recovery the interval applies again"
        );
    }

    #[test]
    fn expiry_parsing_accepts_z_and_offsets() {
        let z = parse_expiry("2026-11-22T13:00:00Z").unwrap();
        assert_eq!(parse_expiry("2026-11-22T15:00:00+02:00").unwrap(), z);
        assert_eq!(parse_expiry(" 2026-11-22T13:00:00.000Z ").unwrap(), z);
        for bad in ["", "tomorrow", "2026-11-22 13:00", "1700000000"] {
            assert!(parse_expiry(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_spins_and_never_sleeps_past_the_interval(
            expires_in in proptest::option::of(-100_000i64..100_000),
            unit in -1.0f64..=1.0,
            interval in 1u64..10_000,
            buffer in 0u64..10_000,
        ) {
            let p = Policy { interval: Duration::from_secs(interval), buffer: Duration::from_secs(buffer) };
            let next = p.after_success(t0(), expires_in.map(|s| t0() + secs(s)), unit);
            prop_assert!(next >= t0() + secs(1));
            let max = Duration::from_secs(interval).mul_f64(1.0 + JITTER).max(MIN_GAP);
            prop_assert!(next <= t0() + chrono(max) + chrono::Duration::milliseconds(1));
            if let Some(s) = expires_in {
                // A live token is refreshed before it expires (when it lives longer than MIN_GAP).
                if s > 2 {
                    prop_assert!(next < t0() + secs(s));
                }
            }
        }
    }
}
