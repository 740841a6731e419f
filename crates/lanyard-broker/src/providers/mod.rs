//! The providers Lanyard ships: GitHub's App installation tokens and personal access tokens.

mod github_app;
mod pat;

pub use github_app::GithubApp;
pub use pat::{pat_aad, StoredPat};
