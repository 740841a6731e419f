//! The Lanyard server.
//!
//! A request flows top to bottom: [`http`] (routes, authentication, extractors) → [`domain`]
//! (what it means) → the store (`lanyard_store`) or the [`broker`]. Every handler, command and
//! worker calls through one [`services::Services`] value. Domain errors become the error
//! envelope in one place, [`http::error`]. Module dependencies only point down the layers that
//! `tests/layers.rs` checks.

pub mod cli;
pub mod config;
pub mod domain;
pub mod hosts;
pub mod http;
pub mod jwt;
pub mod mailer;
pub mod metrics;
pub mod secrets;
pub mod server;
pub mod services;
pub mod telemetry;
pub mod workers;

pub use config::{Config, Flags};
/// The credential broker, and the pieces it is built from that the server shares: sealing
/// secrets at rest, rate limits, and the Redis handle.
pub use lanyard_broker as broker;
pub use lanyard_broker::{crypto, ratelimit, redis_conn};
pub use server::{start, RunningServer};
pub use services::Services;
