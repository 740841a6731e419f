//! Label values and label sets: each value a registry entry, a configured host or a route
//! template.

use std::sync::Arc;

use lanyard_core::wire::CredentialSource;
use lanyard_core::{NotificationKind, Registry, Worker};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// A registry entry as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label<T>(pub T);

impl<T: Registry> EncodeLabelValue for Label<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.0.name(), encoder)
    }
}

/// A label value fixed by configuration or the router (a host, a route template), shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fixed(pub Arc<str>);

impl EncodeLabelValue for Fixed {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

lanyard_core::string_enum! {
    /// The HTTP method label: the standard methods, and `other` for anything else.
    pub enum Method {
        Get = "GET",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
        Head = "HEAD",
        Options = "OPTIONS",
        Other = "other",
    }
}

impl Method {
    pub fn of(method: &axum::http::Method) -> Self {
        use axum::http::Method as M;
        match *method {
            M::GET => Method::Get,
            M::POST => Method::Post,
            M::PUT => Method::Put,
            M::PATCH => Method::Patch,
            M::DELETE => Method::Delete,
            M::HEAD => Method::Head,
            M::OPTIONS => Method::Options,
            _ => Method::Other,
        }
    }
}

lanyard_core::string_enum! {
    /// How a token request was answered.
    pub enum CacheResult {
        /// Served from the cache.
        Hit = "hit",
        /// This request minted.
        Miss = "miss",
        /// Waited for another request's mint.
        Coalesced = "coalesced",
    }
}

lanyard_core::string_enum! {
    pub enum MintResult {
        Ok = "ok",
        Unavailable = "unavailable",
        Rejected = "rejected",
    }
}

lanyard_core::string_enum! {
    pub enum RevocationResult {
        Revoked = "revoked",
        AlreadyDead = "already_dead",
        Error = "error",
    }
}

lanyard_core::string_enum! {
    pub enum E2eOp {
        Create = "create",
        Reap = "reap",
    }
}

lanyard_core::string_enum! {
    pub enum E2eResult {
        Ok = "ok",
        Unauthorized = "unauthorized",
        BadRequest = "bad_request",
        NotTestCohort = "not_test_cohort",
        RateLimited = "rate_limited",
        Error = "error",
    }
}

lanyard_core::string_enum! {
    pub enum RunResult {
        Ok = "ok",
        Error = "error",
    }
}

lanyard_core::string_enum! {
    /// A webhook's `X-GitHub-Event`: the events Lanyard acts on, and `other`.
    pub enum WebhookEvent {
        Installation = "installation",
        InstallationRepositories = "installation_repositories",
        Other = "other",
    }
}

lanyard_core::string_enum! {
    pub enum WebhookResult {
        Processed = "processed",
        Duplicate = "duplicate",
        Ignored = "ignored",
        /// A bad signature, or a host without a webhook secret.
        Refused = "refused",
        Error = "error",
    }
}

lanyard_core::string_enum! {
    /// The broker's in-process caches, each bounded by size and by time.
    pub enum CacheName {
        Tokens = "tokens",
        Sessions = "sessions",
        Cooldowns = "cooldowns",
        Flights = "flights",
        Refreshing = "refreshing",
        Failures = "refresh_failures",
        RateLimits = "rate_limits",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/v1/sessions/{id}`), never the raw path.
    pub route: Fixed,
    pub method: Label<Method>,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    pub route: Fixed,
    pub method: Label<Method>,
    pub code: Label<lanyard_core::ErrorCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Fixed,
    pub method: Label<Method>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MintLabels {
    /// A configured host.
    pub host: Fixed,
    pub result: Label<MintResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheResultLabel {
    pub result: Label<CacheResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RevocationLabel {
    pub result: Label<RevocationResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: Label<CredentialSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct E2eLabels {
    pub op: Label<E2eOp>,
    pub result: Label<E2eResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: Label<Worker>,
    pub result: Label<RunResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: Label<Worker>,
}

lanyard_core::string_enum! {
    /// What one delivery attempt of a notification came to.
    pub enum DeliveryResult {
        Sent = "sent",
        Retry = "retry",
        Failed = "failed",
        Undeliverable = "undeliverable",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NotificationLabels {
    pub kind: Label<NotificationKind>,
    pub result: Label<DeliveryResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WebhookLabels {
    pub event: Label<WebhookEvent>,
    pub result: Label<WebhookResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheLabel {
    pub cache: Label<CacheName>,
}
