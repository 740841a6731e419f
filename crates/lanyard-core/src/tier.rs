//! The tier table (CONTRACT §9). This is the only place the limits live.

use std::str::FromStr;
use std::time::Duration;

crate::string_enum! {
    /// A team's plan. Wire names are snake_case.
    pub enum Tier {
        Anonymous = "anonymous",
        Free = "free",
        Hobby = "hobby",
        HobbyPlus = "hobby_plus",
        Pro = "pro",
        Team = "team",
        Growth = "growth",
    }
}

/// What a tier allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierLimits {
    pub max_active_sessions: u32,
    /// Upstream token mints per hour: a team cannot make Lanyard hammer GitHub.
    pub mints_per_hour: u32,
    pub default_session_ttl: Duration,
    pub max_session_ttl: Duration,
}

const HOUR: u64 = 3600;

/// Connection attempts a team may make per hour.
pub const CONNECTION_ATTEMPTS_PER_HOUR: u32 = 30;

impl Tier {
    /// Session creations a team may make per minute: its active-session limit, at least 10.
    pub const fn sessions_per_minute(self) -> u32 {
        let active = self.limits().max_active_sessions;
        if active < 10 {
            10
        } else {
            active
        }
    }

    pub const fn limits(self) -> TierLimits {
        let (sessions, mints, default_h, max_h) = match self {
            Tier::Anonymous => (1, 20, 1, 2),
            Tier::Free => (3, 60, 2, 8),
            Tier::Hobby => (10, 200, 8, 24),
            Tier::HobbyPlus => (25, 500, 8, 24),
            Tier::Pro => (250, 5_000, 24, 7 * 24),
            Tier::Team => (1000, 20_000, 24, 30 * 24),
            Tier::Growth => (5000, 50_000, 24, 30 * 24),
        };
        TierLimits {
            max_active_sessions: sessions,
            mints_per_hour: mints,
            default_session_ttl: Duration::from_secs(default_h * HOUR),
            max_session_ttl: Duration::from_secs(max_h * HOUR),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown tier {0:?}; expected one of anonymous, free, hobby, hobby_plus, pro, team, growth"
)]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::parse(s).ok_or_else(|| UnknownTier(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * HOUR;

    #[test]
    fn every_tier_round_trips_and_has_sane_limits() {
        for &tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>().unwrap(), tier);
            let json = serde_json::to_string(&tier).unwrap();
            assert_eq!(json, format!("\"{}\"", tier.as_str()));
            let l = tier.limits();
            assert!(l.max_active_sessions >= 1, "{tier}");
            assert!(l.default_session_ttl <= l.max_session_ttl, "{tier}");
        }
    }

    #[test]
    fn contract_table_values() {
        assert_eq!(Tier::Free.limits().max_active_sessions, 3);
        assert_eq!(
            Tier::Pro.limits().max_session_ttl,
            Duration::from_secs(7 * DAY)
        );
        assert_eq!(Tier::Growth.limits().max_active_sessions, 5000);
        assert_eq!(
            Tier::Anonymous.limits().default_session_ttl,
            Duration::from_secs(HOUR)
        );
        let mints: Vec<u32> = Tier::ALL
            .iter()
            .map(|t| t.limits().mints_per_hour)
            .collect();
        assert_eq!(mints, [20, 60, 200, 500, 5_000, 20_000, 50_000]);
        assert_eq!(Tier::Anonymous.sessions_per_minute(), 10, "at least 10");
        assert_eq!(Tier::Pro.sessions_per_minute(), 250);
    }

    #[test]
    fn unknown_tier_is_rejected_with_the_choices() {
        let err = "enterprise".parse::<Tier>().unwrap_err();
        assert!(err.to_string().contains("hobby_plus"));
        assert!("Free".parse::<Tier>().is_err(), "tiers are case-sensitive");
    }
}
