//! A scope's cache key: what a token is cached, coalesced and locked under.

use std::sync::Arc;

use lanyard_core::github::{PermissionSet, RepoName};
use lanyard_core::Host;
use lanyard_store::ConnectionRecord;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::provider::Renewal;

/// The hashed key of a scope: team, host, installation (or PAT connection), repositories and
/// permissions. Cheap to clone, so it can key several caches at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeKey(Arc<str>);

impl ScopeKey {
    pub fn new(stored: &str) -> Self {
        Self(stored.into())
    }

    /// The key as a session's scope holds it: cloned without copying the text.
    pub fn shared(stored: Arc<str>) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key a session's scope is stored with. Repositories are sorted and de-duplicated, and the
/// permission set prints in a fixed order, so equal scopes share one key (and one token).
///
/// A connection whose credentials are refreshed (`renewal`, its provider's) has one key for all
/// its scopes: a refreshed token covers what the connection was authorised for, not a scope,
/// and a second token would end the first where a refresh ends the previous one.
pub fn cache_key(
    team_id: Uuid,
    host: &Host,
    connection: &ConnectionRecord,
    repositories: &[RepoName],
    permissions: &PermissionSet,
    renewal: Renewal,
) -> Arc<str> {
    if let Renewal::Refresh { .. } = renewal {
        let text = format!("{team_id}\n{host}\nconnection:{}", connection.id);
        return hex::encode(Sha256::digest(text.as_bytes())).into();
    }
    let mut repos: Vec<&str> = repositories.iter().map(RepoName::as_str).collect();
    repos.sort_unstable();
    repos.dedup();
    let credential = match connection.installation_id {
        Some(id) => format!("installation:{id}"),
        None => format!("pat:{}", connection.id),
    };
    let text = format!(
        "{team_id}\n{host}\n{credential}\n{}\n{}",
        repos.join(","),
        permissions.canonical()
    );
    hex::encode(Sha256::digest(text.as_bytes())).into()
}
