//! Label values and label sets: each value a registry entry, a configured host or a route
//! template.

use lanyard_core::{NotificationKind, Worker};
use prometheus_client::encoding::EncodeLabelSet;

pub use lanyard_broker::metrics::{
    CacheLabel, CacheName, CacheResult, CacheResultLabel, Fixed, Label, MintLabels, MintResult,
    RevocationLabel, RevocationResult, SourceLabel,
};

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
