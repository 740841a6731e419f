//! Lanyard's domain vocabulary: the types and registries every other crate speaks.
//!
//! Nothing here does I/O. The registries ([`ErrorCode`], [`AuditKind`], [`Tier`]) are enums with
//! exhaustive matches, so adding an entry forces every table that describes it to be filled in.

pub mod api_url;
pub mod audit;
pub mod clock;
pub mod duration;
pub mod error_code;
pub mod file_mode;
pub mod github;
pub mod gitlab;
pub mod host;
pub mod names;
pub mod redact;
pub mod registry;
pub mod secret;
pub mod tier;
pub mod wire;
pub mod worker;

pub use api_url::{ApiUrl, ApiUrlError};
pub use audit::{Actor, ActorKind, AuditKind};
pub use clock::{Clock, ManualClock, SystemClock};
pub use duration::{format_duration, parse_duration, DurationParseError};
pub use error_code::{Audience, ErrorCode, ErrorSpec};
pub use host::{Host, HostError};
pub use names::{Email, Label, NameError, TeamName};
pub use registry::Registry;
pub use secret::{BearerSecret, SecretKind};
pub use tier::{Tier, TierLimits, UnknownTier, CONNECTION_ATTEMPTS_PER_HOUR};
pub use worker::{NotificationKind, NotificationStatus, Worker};

#[doc(hidden)]
pub use serde as __serde;
