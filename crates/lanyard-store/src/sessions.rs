//! Agent sessions and their scopes.
//!
//! A session holds one scope per (host, owner) of its repositories. A scope's `cache_key` names
//! the token it is served, so "which sessions hold a token" is "which live sessions have a scope
//! with its key": a token is revoked when the last of them ends, and never while one is live.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use lanyard_core::github::{Owner, PermissionSet, RepoName};
use lanyard_core::Host;
use lanyard_core::{Actor, AuditKind};
use sqlx::types::Json;
use sqlx::{FromRow, Row};
use uuid::Uuid;

use crate::accounts::TEAM_COLUMNS;
use crate::audit::insert_audit;
use crate::connections::CONNECTION_COLUMNS;
use crate::ending::release_holders;
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, ConnectionRecord, Store, StoreResult, TeamRecord, TokenRecord};

/// A session. Columns are selected with [`SESSION_COLUMNS`] (prefixed `s_`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    #[sqlx(rename = "s_id")]
    pub id: Uuid,
    #[sqlx(rename = "s_team_id")]
    pub team_id: Uuid,
    #[sqlx(rename = "s_repos", json)]
    pub repos: Vec<String>,
    #[sqlx(rename = "s_permissions", json)]
    pub permissions: PermissionSet,
    #[sqlx(rename = "s_created_at")]
    pub created_at: DateTime<Utc>,
    #[sqlx(rename = "s_expires_at")]
    pub expires_at: DateTime<Utc>,
    #[sqlx(rename = "s_stopped_at")]
    pub stopped_at: Option<DateTime<Utc>>,
}

pub(crate) const SESSION_COLUMNS: &str =
    "s.id AS s_id, s.team_id AS s_team_id, s.repos AS s_repos, \
     s.permissions AS s_permissions, s.created_at AS s_created_at, \
     s.expires_at AS s_expires_at, s.stopped_at AS s_stopped_at";

lanyard_core::string_enum! {
    pub enum SessionStatus {
        Active = "active",
        Stopped = "stopped",
        Expired = "expired",
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

/// One (host, owner) of a session: the repositories its token covers, and its cache key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScopeRecord {
    #[sqlx(try_from = "String")]
    pub host: Host,
    #[sqlx(try_from = "String")]
    pub owner: Owner,
    /// Shared, so the broker keys its caches with it without copying.
    #[sqlx(try_from = "String")]
    pub cache_key: Arc<str>,
    #[sqlx(json)]
    pub repositories: Vec<RepoName>,
    /// Set when a repository it holds left the installation: it is served no more.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The scope's newest unrevoked token as this read found it: a token cached from before the
    /// read that is not this one may have been revoked since, by any replica.
    pub live_token: Option<Uuid>,
    /// The team's connection for this owner, if it still exists.
    #[sqlx(flatten)]
    pub connection: MaybeConnection,
}

/// A scope's own columns, for [`ScopeRecord`] (joined with [`CONNECTION_COLUMNS`]).
pub(crate) const SCOPE_COLUMNS: &str =
    "sc.host, sc.owner, sc.cache_key, sc.repositories, sc.revoked_at, \
     (SELECT t.id FROM github_tokens t WHERE t.cache_key = sc.cache_key \
      AND t.revoked_at IS NULL ORDER BY t.expires_at DESC LIMIT 1) AS live_token";

impl ScopeRecord {
    /// The team's connection for this scope's owner, if it still exists.
    pub fn connection(&self) -> Option<&ConnectionRecord> {
        self.connection.0.as_ref()
    }
}

/// The connection a scope's row was joined with, if the team still has one for its owner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaybeConnection(pub Option<ConnectionRecord>);

impl<'r, R> sqlx::FromRow<'r, R> for MaybeConnection
where
    R: sqlx::Row,
    ConnectionRecord: sqlx::FromRow<'r, R>,
    &'static str: sqlx::ColumnIndex<R>,
    Option<Uuid>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let joined: Option<Uuid> = row.try_get("c_id")?;
        match joined {
            None => Ok(Self(None)),
            Some(_) => ConnectionRecord::from_row(row).map(|c| Self(Some(c))),
        }
    }
}

/// Everything the credential path needs about a runner token's session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunnerSession {
    #[sqlx(flatten)]
    pub session: SessionRecord,
    #[sqlx(rename = "s_runner_hash")]
    pub runner_hash: String,
    #[sqlx(flatten)]
    pub team: TeamRecord,
    /// The team's primary user, the git identity agents commit as.
    pub primary_email: Option<String>,
    #[sqlx(skip)]
    pub scopes: Vec<ScopeRecord>,
    /// Where in the order of its replica's reads and cached tokens this read began (0 when not
    /// read through a cache): what its scopes' `live_token`s are as of.
    #[sqlx(skip)]
    pub read_mark: u64,
}

impl RunnerSession {
    /// Gives back the spare capacity of its lists. A collected row list or a decoded JSON array
    /// grows to at least four slots, and a cached session keeps them for as long as it is
    /// cached: for one scope that was about 900 bytes a session, 9 MB for 10,000.
    pub fn shrink_to_fit(&mut self) {
        self.session.repos.shrink_to_fit();
        self.scopes.shrink_to_fit();
        for scope in &mut self.scopes {
            scope.repositories.shrink_to_fit();
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewScope {
    pub host: Host,
    pub owner: Owner,
    pub cache_key: Arc<str>,
    pub repositories: Vec<RepoName>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub team_id: Uuid,
    pub runner_lookup: String,
    pub runner_hash: String,
    pub repos: Vec<String>,
    pub permissions: PermissionSet,
    pub expires_at: DateTime<Utc>,
    pub scopes: Vec<NewScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub active: i64,
}

/// The result of stopping a session: the tokens nobody live holds any more, already marked
/// revoked in the database; the caller revokes them at GitHub.
#[derive(Debug, Clone)]
pub struct StopOutcome {
    pub session: SessionRecord,
    /// The runner token's lookup id, so caches keyed by it can forget the session.
    pub runner_lookup: String,
    pub revoke: Vec<TokenRecord>,
}

impl Store {
    /// Creates a session and its scopes, unless the team already has `max_active` live ones.
    /// The team row is locked first, so concurrent creates cannot both pass the count.
    pub async fn create_session(
        &self,
        new: &NewSession,
        max_active: u32,
        actor: &Actor,
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
        let event = AuditEvent::new(AuditKind::SessionCreated, actor.clone())
            .subject(record.id)
            .data(serde_json::json!({
                "repos": record.repos, "permissions": record.permissions,
                "expires_at": record.expires_at,
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE teams SET sessions_created = sessions_created + 1 WHERE id = $1")
                .bind(new.team_id)
                .execute(&mut *tx)
                .await?;
            let active: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sessions WHERE team_id = $1 AND stopped_at IS NULL AND expires_at > $2",
            )
            .bind(new.team_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
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
            .bind(Json(&record.repos))
            .bind(Json(&record.permissions))
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
                .bind(scope.host.as_str())
                .bind(scope.owner.as_str())
                .bind(&*scope.cache_key)
                .bind(Json(&scope.repositories))
                .execute(&mut *tx)
                .await?;
            }
            insert_audit(&mut *tx, new.team_id, &event, now).await?;
            tx.commit().await?;
            Ok(Ok(record))
        })
    }

    pub async fn get_session(&self, team_id: Uuid, id: Uuid) -> StoreResult<Option<SessionRecord>> {
        let sql =
            format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1 AND s.team_id = $2");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).bind(team_id).fetch_optional(pool).await?
        }))
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
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(team_id).bind(i64::from(limit)).fetch_all(pool).await?
        }))
    }

    /// The session behind a runner token's lookup id, with its team, and its scopes each joined
    /// with the team's connection for its owner.
    pub async fn runner_session(&self, lookup: &str) -> StoreResult<Option<RunnerSession>> {
        // One round trip: the session and its team, on a row per scope (one row with no scope
        // columns when it has none), each scope with its newest live token. A cached session is
        // read again after 2 s, and on every change this replica makes. Each scope's row repeats
        // the session's columns; a session has at most 100 repositories, so at most 100 rows.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {SESSION_COLUMNS}, s.runner_hash AS s_runner_hash, {TEAM_COLUMNS}, \
                 (SELECT u.email FROM users u WHERE u.team_id = t.id AND u.is_primary LIMIT 1) AS primary_email, \
                 {SCOPE_COLUMNS}, {CONNECTION_COLUMNS} \
                 FROM sessions s JOIN teams t ON t.id = s.team_id \
                 LEFT JOIN session_scopes sc ON sc.session_id = s.id \
                 LEFT JOIN github_connections c \
                 ON c.team_id = s.team_id AND c.host = sc.host AND c.owner = sc.owner \
                 WHERE s.runner_lookup = $1 ORDER BY sc.host, sc.owner"
            )
        });
        Ok(on_pool!(self, pool => {
            let rows = sqlx::query(SQL.as_str()).bind(lookup).fetch_all(pool).await?;
            match rows.first() {
                None => None,
                Some(first) => {
                    let mut runner = RunnerSession::from_row(first)?;
                    runner.scopes = Vec::with_capacity(rows.len());
                    for row in &rows {
                        if row.try_get::<Option<String>, _>("host")?.is_some() {
                            runner.scopes.push(ScopeRecord::from_row(row)?);
                        }
                    }
                    Some(runner)
                }
            }
        }))
    }

    /// Stops a live session and claims, for revocation, every unexpired token whose scope no
    /// other live session shares. `None` if the team has no such session.
    pub async fn stop_session(
        &self,
        team_id: Uuid,
        id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StopOutcome>> {
        let select = StoppedRow::sql();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Write first: takes SQLite's write lock and the Postgres row lock up front.
            let stopped = sqlx::query("UPDATE sessions SET stopped_at = $3 WHERE id = $1 AND team_id = $2 AND stopped_at IS NULL")
                .bind(id)
                .bind(team_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let Some(stopped_row) = sqlx::query_as::<_, StoppedRow>(&select)
                .bind(id)
                .bind(team_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let mut revoke: Vec<TokenRecord> = Vec::new();
            if stopped == 1 {
                let event = AuditEvent::new(AuditKind::SessionStopped, actor.clone()).subject(id);
                insert_audit(&mut *tx, team_id, &event, now).await?;
                revoke = release_holders(&mut *tx, id, team_id, actor, "last holder stopped", now).await?;
            }
            tx.commit().await?;
            Ok(Some(StopOutcome {
                session: stopped_row.session,
                runner_lookup: stopped_row.runner_lookup,
                revoke,
            }))
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StoppedRow {
    #[sqlx(flatten)]
    pub(crate) session: SessionRecord,
    pub(crate) runner_lookup: String,
}

impl StoppedRow {
    /// Session `$1` of team `$2`, with its runner token's lookup id.
    pub(crate) fn sql() -> String {
        format!(
            "SELECT {SESSION_COLUMNS}, s.runner_lookup FROM sessions s \
             WHERE s.id = $1 AND s.team_id = $2"
        )
    }
}
