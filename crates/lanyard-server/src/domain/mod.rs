//! Domain operations: what routes, commands and workers do, between authentication and the
//! store or broker. Each takes [`crate::services::Services`] and typed input, and returns a typed
//! outcome or its area's error enum; the HTTP edge turns those errors into envelopes, in one
//! place (`crate::http::error`). Nothing here knows about HTTP or JSON.
//!
//! Plain reads (list the team's keys, one session) go straight to the store from the route.

pub mod accounts;
pub mod admin;
pub mod connections;
pub mod credentials;
pub mod e2e;
pub mod installations;
pub mod sessions;
pub mod webhooks;
