//! The Lanyard server.
//!
//! A request flows top to bottom: [`routes`] → [`auth`] (who is calling) → [`domain`] (what it
//! means) → the store (`lanyard_store`). Errors of every layer become an [`error::ApiError`],
//! rendered as one envelope.

pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub mod crypto;
pub mod docs;
pub mod domain;
pub mod error;
pub mod extract;
pub mod jwt;
pub mod metrics;
pub mod ratelimit;
pub mod redis_conn;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod telemetry;
pub mod workers;

pub use app::{start, RunningServer};
pub use config::{Config, Flags};
