//! Domain operations: what routes and commands do, between authentication and the store.

pub mod accounts;
pub mod connections;
pub mod e2e;
pub mod sessions;
