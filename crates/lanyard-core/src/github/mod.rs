//! GitHub vocabulary: owners, repository references and App permission sets, each parsed once
//! at the edge so the rest of Lanyard handles only valid values.

mod installation;
mod permissions;
mod repo;

pub use installation::{InstallationId, InstallationIdError};
pub use permissions::{Access, Permission, PermissionError, PermissionSet};
pub use repo::{Owner, OwnerError, RepoName, RepoRef, RepoRefError, RepoUrl, Scheme};

/// Echoes at most this many characters of a rejected input back in an error message.
pub const ECHO_LIMIT: usize = 64;

/// The first [`ECHO_LIMIT`] characters of `raw`, for an error message.
pub fn echo(raw: &str) -> String {
    let mut out: String = raw.chars().take(ECHO_LIMIT).collect();
    if raw.chars().nth(ECHO_LIMIT).is_some() {
        out.push('…');
    }
    out
}
