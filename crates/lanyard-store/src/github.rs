//! GitHub connections, agent sessions and their scopes, and the encrypted token cache.
//!
//! A session holds one scope per (host, owner) of its repositories. A scope's `cache_key` names
//! the token it is served, so "which sessions hold a token" is "which live sessions have a scope
//! with its key": a token is revoked when the last of them ends, and never while one is live.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lanyard_core::AuditKind;
use sqlx::Row;
use uuid::Uuid;

use crate::accounts::TEAM_COLUMNS;
use crate::audit::insert_audit;
use crate::{on_pool, AuditEvent, Pool, Store, StoreError, StoreResult, TeamRecord};

lanyard_core::string_enum! {
    pub enum ConnectionKind {
        GithubApp = "github_app",
        Pat = "pat",
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: Uuid,
    pub team_id: Uuid,
    pub host: String,
    pub owner: String,
    pub kind: ConnectionKind,
    pub installation_id: Option<i64>,
    /// AES-GCM ciphertext of the PAT; opened only by the broker.
    pub pat_ciphertext: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for ConnectionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRecord")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("owner", &self.owner)
            .field("kind", &self.kind)
            .field("installation_id", &self.installation_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub team_id: Uuid,
    pub repos: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    Stopped,
    Expired,
}

impl SessionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Stopped => "stopped",
            SessionStatus::Expired => "expired",
        }
    }
}

impl SessionRecord {
    pub fn status(&self, now: DateTime<Utc>) -> SessionStatus {
        if self.stopped_at.is_some() {
            SessionStatus::Stopped
        } else if self.expires_at <= now {
            SessionStatus::Expired
        } else {
            SessionStatus::Active
        }
    }
}

/// One (host, owner) credential of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRecord {
    pub host: String,
    pub owner: String,
    pub cache_key: String,
    pub repositories: Vec<String>,
    /// The team's connection for this owner, if it still exists.
    pub connection: Option<ConnectionRecord>,
}

/// Everything the credential path needs about a runner token's session, in two queries.
#[derive(Debug, Clone)]
pub struct RunnerSession {
    pub session: SessionRecord,
    pub runner_hash: String,
    pub team: TeamRecord,
    /// The team's primary user, the git identity agents commit as.
    pub primary_email: Option<String>,
    pub scopes: Vec<ScopeRecord>,
}

#[derive(Debug, Clone)]
pub struct NewScope {
    pub host: String,
    pub owner: String,
    pub cache_key: String,
    pub repositories: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub team_id: Uuid,
    pub runner_lookup: String,
    pub runner_hash: String,
    pub repos: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
    pub scopes: Vec<NewScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub active: i64,
}

/// A cached installation token (encrypted).
#[derive(Clone)]
pub struct TokenRecord {
    pub id: Uuid,
    pub team_id: Uuid,
    pub cache_key: String,
    pub host: String,
    pub installation_id: i64,
    pub ciphertext: Vec<u8>,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("installation_id", &self.installation_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The result of stopping a session: the tokens nobody live holds any more, already marked
/// revoked in the database; the caller revokes them at GitHub.
#[derive(Debug, Clone)]
pub struct StopOutcome {
    pub session: SessionRecord,
    pub revoke: Vec<TokenRecord>,
}

/// Holds the cross-replica mint lock for one scope until dropped (Postgres advisory lock; a no-op
/// on SQLite, whose single writer is serialised in-process).
#[derive(Debug)]
pub struct ScopeLock {
    _tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialise")
}

fn json_map(v: &BTreeMap<String, String>) -> String {
    serde_json::to_string(v).expect("strings serialise")
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

macro_rules! connection_from_row {
    ($row:expr) => {{
        let kind: String = $row.try_get("c_kind")?;
        Ok::<ConnectionRecord, StoreError>(ConnectionRecord {
            id: $row.try_get("c_id")?,
            team_id: $row.try_get("c_team_id")?,
            host: $row.try_get("c_host")?,
            owner: $row.try_get("c_owner")?,
            kind: ConnectionKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("connection kind {kind:?}")))?,
            installation_id: $row.try_get("c_installation_id")?,
            pat_ciphertext: $row.try_get("c_pat_ciphertext")?,
            created_at: $row.try_get("c_created_at")?,
        })
    }};
}

const CONNECTION_COLUMNS: &str = "c.id AS c_id, c.team_id AS c_team_id, c.host AS c_host, \
    c.owner AS c_owner, c.kind AS c_kind, c.installation_id AS c_installation_id, \
    c.pat_ciphertext AS c_pat_ciphertext, c.created_at AS c_created_at";

macro_rules! session_from_row {
    ($row:expr) => {{
        let repos: String = $row.try_get("s_repos")?;
        let permissions: String = $row.try_get("s_permissions")?;
        Ok::<SessionRecord, StoreError>(SessionRecord {
            id: $row.try_get("s_id")?,
            team_id: $row.try_get("s_team_id")?,
            repos: parse_json(&repos)?,
            permissions: parse_json(&permissions)?,
            created_at: $row.try_get("s_created_at")?,
            expires_at: $row.try_get("s_expires_at")?,
            stopped_at: $row.try_get("s_stopped_at")?,
        })
    }};
}

const SESSION_COLUMNS: &str = "s.id AS s_id, s.team_id AS s_team_id, s.repos AS s_repos, \
    s.permissions AS s_permissions, s.created_at AS s_created_at, s.expires_at AS s_expires_at, \
    s.stopped_at AS s_stopped_at";

macro_rules! token_from_row {
    ($row:expr) => {{
        let repos: String = $row.try_get("repositories")?;
        let permissions: String = $row.try_get("permissions")?;
        Ok::<TokenRecord, StoreError>(TokenRecord {
            id: $row.try_get("id")?,
            team_id: $row.try_get("team_id")?,
            cache_key: $row.try_get("cache_key")?,
            host: $row.try_get("host")?,
            installation_id: $row.try_get("installation_id")?,
            ciphertext: $row.try_get("ciphertext")?,
            repositories: parse_json(&repos)?,
            permissions: parse_json(&permissions)?,
            created_at: $row.try_get("created_at")?,
            expires_at: $row.try_get("expires_at")?,
        })
    }};
}

const TOKEN_COLUMNS: &str = "id, team_id, cache_key, host, installation_id, ciphertext, \
    repositories, permissions, created_at, expires_at";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Binds a GitHub owner on a host to a team. `Ok(None)` if the team already has one there.
    pub async fn create_connection(
        &self,
        new: &ConnectionRecord,
        actor: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let event = AuditEvent::new(AuditKind::GithubConnectionCreated, actor)
            .subject(new.id)
            .data(serde_json::json!({
                "host": new.host, "owner": new.owner, "kind": new.kind.as_str(),
                "installation_id": new.installation_id,
            }));
        let result = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO github_connections \
                 (id, team_id, host, owner, kind, installation_id, pat_ciphertext, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new.id)
            .bind(new.team_id)
            .bind(&new.host)
            .bind(&new.owner)
            .bind(new.kind.as_str())
            .bind(new.installation_id)
            .bind(&new.pat_ciphertext)
            .bind(new.created_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => Ok(None),
                Err(e) => Err(e),
                Ok(_) => {
                    insert_audit!(&mut *tx, new.team_id, &event, new.created_at)?;
                    tx.commit().await?;
                    Ok(Some(new.clone()))
                }
            }
        })?;
        Ok(result)
    }

    pub async fn list_connections(&self, team_id: Uuid) -> StoreResult<Vec<ConnectionRecord>> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM github_connections c WHERE c.team_id = $1 \
             ORDER BY c.created_at, c.id"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(team_id).fetch_all(pool).await?;
            rows.iter().map(|row| connection_from_row!(row)).collect()
        })
    }

    /// Removes one of the team's connections. `false` if it has no such connection.
    pub async fn delete_connection(
        &self,
        team_id: Uuid,
        id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let event = AuditEvent::new(AuditKind::GithubConnectionDeleted, actor).subject(id);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM github_connections WHERE id = $1 AND team_id = $2")
                .bind(id)
                .bind(team_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                insert_audit!(&mut *tx, team_id, &event, now)?;
            }
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }

    /// Creates a session and its scopes, unless the team already has `max_active` live ones.
    /// The team row is locked first, so concurrent creates cannot both pass the count.
    pub async fn create_session(
        &self,
        new: &NewSession,
        max_active: u32,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<SessionRecord, QuotaExceeded>> {
        let record = SessionRecord {
            id: Uuid::new_v4(),
            team_id: new.team_id,
            repos: new.repos.clone(),
            permissions: new.permissions.clone(),
            created_at: now,
            expires_at: new.expires_at,
            stopped_at: None,
        };
        let event = AuditEvent::new(AuditKind::SessionCreated, actor)
            .subject(record.id)
            .data(serde_json::json!({ "repos": record.repos, "expires_at": record.expires_at }));
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE teams SET sessions_created = sessions_created + 1 WHERE id = $1")
                .bind(new.team_id)
                .execute(&mut *tx)
                .await?;
            let active: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM sessions WHERE team_id = $1 AND stopped_at IS NULL AND expires_at > $2",
            )
            .bind(new.team_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if active >= i64::from(max_active) {
                return Ok(Err(QuotaExceeded { active }));
            }
            sqlx::query(
                "INSERT INTO sessions (id, team_id, runner_lookup, runner_hash, repos, permissions, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.id)
            .bind(new.team_id)
            .bind(&new.runner_lookup)
            .bind(&new.runner_hash)
            .bind(json_list(&record.repos))
            .bind(json_map(&record.permissions))
            .bind(now)
            .bind(record.expires_at)
            .execute(&mut *tx)
            .await?;
            for scope in &new.scopes {
                sqlx::query(
                    "INSERT INTO session_scopes (session_id, host, owner, cache_key, repositories) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(record.id)
                .bind(&scope.host)
                .bind(&scope.owner)
                .bind(&scope.cache_key)
                .bind(json_list(&scope.repositories))
                .execute(&mut *tx)
                .await?;
            }
            insert_audit!(&mut *tx, new.team_id, &event, now)?;
            tx.commit().await?;
            Ok(Ok(record))
        })
    }

    pub async fn get_session(&self, team_id: Uuid, id: Uuid) -> StoreResult<Option<SessionRecord>> {
        let sql =
            format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1 AND s.team_id = $2");
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(id).bind(team_id).fetch_optional(pool).await?;
            row.map(|row| session_from_row!(row)).transpose()
        })
    }

    /// The team's sessions, newest first.
    pub async fn list_sessions(
        &self,
        team_id: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.team_id = $1 \
             ORDER BY s.created_at DESC, s.id LIMIT $2"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(team_id).bind(i64::from(limit)).fetch_all(pool).await?;
            rows.iter().map(|row| session_from_row!(row)).collect()
        })
    }

    /// The session behind a runner token's lookup id, with its team, scopes and connections.
    pub async fn runner_session(&self, lookup: &str) -> StoreResult<Option<RunnerSession>> {
        let session_sql = format!(
            "SELECT {SESSION_COLUMNS}, s.runner_hash AS s_runner_hash, {TEAM_COLUMNS}, \
             (SELECT u.email FROM users u WHERE u.team_id = t.id AND u.is_primary LIMIT 1) AS primary_email \
             FROM sessions s JOIN teams t ON t.id = s.team_id WHERE s.runner_lookup = $1"
        );
        let scope_sql = format!(
            "SELECT sc.host, sc.owner, sc.cache_key, sc.repositories, {CONNECTION_COLUMNS} \
             FROM session_scopes sc LEFT JOIN github_connections c \
             ON c.team_id = $2 AND c.host = sc.host AND c.owner = sc.owner \
             WHERE sc.session_id = $1 ORDER BY sc.host, sc.owner"
        );
        on_pool!(self, pool => {
            let Some(row) = sqlx::query(&session_sql).bind(lookup).fetch_optional(pool).await? else {
                return Ok(None);
            };
            let session = session_from_row!(row)?;
            let runner_hash: String = row.try_get("s_runner_hash")?;
            let team = crate::accounts::team_from_row!(row)?;
            let primary_email: Option<String> = row.try_get("primary_email")?;
            let rows = sqlx::query(&scope_sql).bind(session.id).bind(session.team_id).fetch_all(pool).await?;
            let mut scopes = Vec::with_capacity(rows.len());
            for row in &rows {
                let repos: String = row.try_get("repositories")?;
                let connection_id: Option<Uuid> = row.try_get("c_id")?;
                scopes.push(ScopeRecord {
                    host: row.try_get("host")?,
                    owner: row.try_get("owner")?,
                    cache_key: row.try_get("cache_key")?,
                    repositories: parse_json(&repos)?,
                    connection: connection_id.map(|_| connection_from_row!(row)).transpose()?,
                });
            }
            Ok(Some(RunnerSession { session, runner_hash, team, primary_email, scopes }))
        })
    }

    /// Stops a live session and claims, for revocation, every unexpired token whose scope no
    /// other live session shares. `None` if the team has no such session.
    pub async fn stop_session(
        &self,
        team_id: Uuid,
        id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StopOutcome>> {
        let select =
            format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1 AND s.team_id = $2");
        let orphaned = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens t \
             WHERE t.team_id = $2 AND t.revoked_at IS NULL AND t.expires_at > $3 \
             AND t.cache_key IN (SELECT cache_key FROM session_scopes WHERE session_id = $1) \
             AND NOT EXISTS (SELECT 1 FROM session_scopes sc JOIN sessions o ON o.id = sc.session_id \
                 WHERE sc.cache_key = t.cache_key AND o.id <> $1 AND o.stopped_at IS NULL AND o.expires_at > $3)"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Write first: takes SQLite's write lock and the Postgres row lock up front.
            let stopped = sqlx::query("UPDATE sessions SET stopped_at = $3 WHERE id = $1 AND team_id = $2 AND stopped_at IS NULL")
                .bind(id)
                .bind(team_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let Some(row) = sqlx::query(&select).bind(id).bind(team_id).fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            let session = session_from_row!(row)?;
            let mut revoke = Vec::new();
            if stopped == 1 {
                let event = AuditEvent::new(AuditKind::SessionStopped, actor).subject(id);
                insert_audit!(&mut *tx, team_id, &event, now)?;
                let rows = sqlx::query(&orphaned).bind(id).bind(team_id).bind(now).fetch_all(&mut *tx).await?;
                for row in &rows {
                    let token = token_from_row!(row)?;
                    sqlx::query("UPDATE github_tokens SET revoked_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(token.id)
                        .execute(&mut *tx)
                        .await?;
                    let event = AuditEvent::new(AuditKind::CredentialRevoked, actor)
                        .subject(token.id)
                        .data(serde_json::json!({
                            "host": token.host, "installation_id": token.installation_id,
                            "reason": "last holder stopped", "session_id": id,
                        }));
                    insert_audit!(&mut *tx, team_id, &event, now)?;
                    revoke.push(token);
                }
            }
            tx.commit().await?;
            Ok(Some(StopOutcome { session, revoke }))
        })
    }

    /// The newest unrevoked token for a cache key, if any.
    pub async fn latest_token(&self, cache_key: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens WHERE cache_key = $1 AND revoked_at IS NULL \
             ORDER BY expires_at DESC LIMIT 1"
        );
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(cache_key).fetch_optional(pool).await?;
            row.map(|row| token_from_row!(row)).transpose()
        })
    }

    /// Stores a freshly minted token with its `credential.minted` record.
    pub async fn insert_token(&self, token: &TokenRecord, actor: &str) -> StoreResult<()> {
        let event = AuditEvent::new(AuditKind::CredentialMinted, actor)
            .subject(token.id)
            .data(serde_json::json!({
                "host": token.host, "installation_id": token.installation_id,
                "repositories": token.repositories, "permissions": token.permissions,
                "expires_at": token.expires_at,
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO github_tokens (id, team_id, cache_key, host, installation_id, ciphertext, \
                 repositories, permissions, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(token.id)
            .bind(token.team_id)
            .bind(&token.cache_key)
            .bind(&token.host)
            .bind(token.installation_id)
            .bind(&token.ciphertext)
            .bind(json_list(&token.repositories))
            .bind(json_map(&token.permissions))
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, token.team_id, &event, token.created_at)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes the cross-replica mint lock for a scope (see [`ScopeLock`]).
    pub async fn lock_scope(&self, lock_id: i64) -> StoreResult<ScopeLock> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(ScopeLock { _tx: None }),
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock_id)
                    .execute(&mut *tx)
                    .await?;
                Ok(ScopeLock { _tx: Some(tx) })
            }
        }
    }
}
