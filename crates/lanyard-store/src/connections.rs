//! GitHub connections: which owner on which host a team's sessions can reach, and how.

use chrono::{DateTime, Utc};
use lanyard_core::github::{InstallationId, Owner};
use lanyard_core::Host;
use lanyard_core::{Actor, AuditKind};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::tokens::{claim_token, lock_holders, TOKEN_COLUMNS};
use crate::BeginWrite;
use crate::TokenRecord;
use crate::{on_pool, AuditEvent, Store, StoreResult};

lanyard_core::string_enum! {
    pub enum ConnectionKind {
        GithubApp = "github_app",
        Pat = "pat",
    }
}

lanyard_core::string_enum! {
    /// Where a connection stands at GitHub.
    pub enum ConnectionStatus {
        Active = "active",
        /// The installation is suspended: nothing is served until it is resumed.
        Suspended = "suspended",
    }
}

/// A connection. Columns are selected with [`CONNECTION_COLUMNS`] (prefixed `c_`).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRecord {
    #[sqlx(rename = "c_id")]
    pub id: Uuid,
    #[sqlx(rename = "c_team_id")]
    pub team_id: Uuid,
    #[sqlx(rename = "c_host", try_from = "String")]
    pub host: Host,
    #[sqlx(rename = "c_owner", try_from = "String")]
    pub owner: Owner,
    #[sqlx(rename = "c_kind", try_from = "String")]
    pub kind: ConnectionKind,
    #[sqlx(rename = "c_installation_id")]
    pub installation_id: Option<InstallationId>,
    #[sqlx(rename = "c_status", try_from = "String")]
    pub status: ConnectionStatus,
    /// When GitHub reported an expiry for the PAT.
    #[sqlx(rename = "c_pat_expires_at")]
    pub pat_expires_at: Option<DateTime<Utc>>,
    /// AES-GCM ciphertext of the PAT; opened only by the broker.
    #[sqlx(rename = "c_pat_ciphertext")]
    pub pat_ciphertext: Option<Vec<u8>>,
    /// AES-GCM ciphertext of the connection's refresh token, for a provider that renews its
    /// credentials with one; opened only by the broker.
    #[sqlx(rename = "c_refresh_ciphertext")]
    pub refresh_ciphertext: Option<Vec<u8>>,
    /// Bumped by every rotation of the refresh token: a rotation commits only over the
    /// generation its refresh read (see [`crate::Rotation`]).
    #[sqlx(rename = "c_refresh_generation")]
    pub refresh_generation: i64,
    #[sqlx(rename = "c_created_at")]
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
            .field("status", &self.status)
            .field("pat_expires_at", &self.pat_expires_at)
            .field("refresh_generation", &self.refresh_generation)
            .finish_non_exhaustive()
    }
}

pub(crate) const CONNECTION_COLUMNS: &str = "c.id AS c_id, c.team_id AS c_team_id, \
     c.host AS c_host, c.owner AS c_owner, c.kind AS c_kind, \
     c.installation_id AS c_installation_id, c.pat_ciphertext AS c_pat_ciphertext, \
     c.refresh_ciphertext AS c_refresh_ciphertext, c.refresh_generation AS c_refresh_generation, \
     c.status AS c_status, c.pat_expires_at AS c_pat_expires_at, c.created_at AS c_created_at";

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Binds a GitHub owner on a host to a team. `Ok(None)` if the team already has one there.
    pub async fn create_connection(
        &self,
        new: &ConnectionRecord,
        actor: &Actor,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let event = AuditEvent::new(AuditKind::GithubConnectionCreated, actor.clone())
            .subject(new.id)
            .data(serde_json::json!({
                "host": new.host, "owner": new.owner, "kind": new.kind,
                "installation_id": new.installation_id,
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO github_connections (id, team_id, host, owner, kind, installation_id, \
                 pat_ciphertext, status, pat_expires_at, created_at, refresh_ciphertext) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(new.id)
            .bind(new.team_id)
            .bind(new.host.as_str())
            .bind(new.owner.as_str())
            .bind(new.kind.as_str())
            .bind(new.installation_id)
            .bind(&new.pat_ciphertext)
            .bind(new.status.as_str())
            .bind(new.pat_expires_at)
            .bind(new.created_at)
            .bind(&new.refresh_ciphertext)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => Ok(None),
                Err(e) => Err(e.into()),
                Ok(_) => {
                    insert_audit(&mut *tx, new.team_id, &event, new.created_at).await?;
                    tx.commit().await?;
                    Ok(Some(new.clone()))
                }
            }
        })
    }

    pub async fn list_connections(&self, team_id: Uuid) -> StoreResult<Vec<ConnectionRecord>> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM github_connections c WHERE c.team_id = $1 \
             ORDER BY c.created_at, c.id"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(team_id).fetch_all(pool).await?
        }))
    }

    /// Whether a team that is not a test cohort has connected this owner on this host, or this
    /// installation: the e2e seed must be an owner only test accounts use.
    pub async fn connected_by_a_real_team(
        &self,
        host: &str,
        owner: &str,
        installation_id: Option<InstallationId>,
    ) -> StoreResult<bool> {
        let sql = "SELECT COUNT(*) FROM github_connections c JOIN teams t ON t.id = c.team_id \
                   WHERE t.is_test_cohort = FALSE AND c.host = $1 \
                   AND (c.owner = $2 OR c.installation_id = $3)";
        let count: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(sql)
                .bind(host)
                .bind(owner)
                .bind(installation_id)
                .fetch_one(pool)
                .await?
        });
        Ok(count > 0)
    }

    /// Removes one of the team's connections. `false` if it has no such connection.
    /// Deletes one of the team's connections, and claims for revocation every unexpired token
    /// minted through it (audited `credential.revoked`); the caller revokes those at GitHub once
    /// this returns. `None` when the team has no such connection.
    ///
    /// The holder locks of every scope the connection served are taken first, so a mint racing
    /// the deletion either stored its token before (and it is claimed here) or finds the
    /// connection gone when it stores (and revokes its token itself).
    pub async fn delete_connection(
        &self,
        team_id: Uuid,
        id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<TokenRecord>>> {
        let event = AuditEvent::new(AuditKind::GithubConnectionDeleted, actor.clone()).subject(id);
        let tokens_sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens t WHERE t.team_id = $1 \
             AND ((t.host = $2 AND t.installation_id = $3) OR t.connection_id = $5) \
             AND t.revoked_at IS NULL AND t.expires_at > $4"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let found: Option<(String, String, Option<InstallationId>)> = sqlx::query_as(
                "SELECT host, owner, installation_id FROM github_connections \
                 WHERE id = $1 AND team_id = $2",
            )
            .bind(id)
            .bind(team_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((host, owner, installation_id)) = found else {
                return Ok(None);
            };
            // Live sessions' scopes only: a scope nobody holds is refused by the mint's holder
            // check anyway, and a team's whole history would be a lock per key.
            let keys: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT sc.cache_key FROM session_scopes sc \
                 JOIN sessions s ON s.id = sc.session_id \
                 WHERE s.team_id = $1 AND sc.host = $2 AND sc.owner = $3 \
                 AND s.stopped_at IS NULL AND s.expires_at > $4",
            )
            .bind(team_id)
            .bind(&host)
            .bind(&owner)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            lock_holders(&mut *tx, keys.iter().map(String::as_str)).await?;
            sqlx::query("DELETE FROM github_connections WHERE id = $1 AND team_id = $2")
                .bind(id)
                .bind(team_id)
                .execute(&mut *tx)
                .await?;
            insert_audit(&mut *tx, team_id, &event, now).await?;
            // Its installation's tokens, or the tokens refreshed for it.
            let revoke: Vec<TokenRecord> = sqlx::query_as(&tokens_sql)
                .bind(team_id)
                .bind(&host)
                .bind(installation_id)
                .bind(now)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            for token in &revoke {
                claim_token(
                    &mut *tx,
                    token,
                    actor.clone(),
                    serde_json::json!({"reason": "its connection was deleted"}),
                    now
                ).await?;
            }
            tx.commit().await?;
            Ok(Some(revoke))
        })
    }
}

/// How an installation came to be bound: through the OAuth installation flow (the team proved
/// it can see the installation) or directly by a trusted operator or platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Oauth,
    Operator,
}

impl Proof {
    pub const fn as_str(self) -> &'static str {
        match self {
            Proof::Oauth => "oauth",
            Proof::Operator => "operator",
        }
    }
}

impl Store {
    pub async fn get_connection(
        &self,
        team_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM github_connections c WHERE c.id = $1 AND c.team_id = $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).bind(team_id).fetch_optional(pool).await?
        }))
    }

    /// Binds an installation to the team for its account: a new connection, or the team's
    /// existing one for that owner made an active App connection again. Audited
    /// `github.connection.created` with how it was proved.
    ///
    /// Two binds of one owner racing (two browser tabs finishing the flow) both succeed: the
    /// one that loses the insert retries as an update.
    pub async fn bind_installation(
        &self,
        new: &ConnectionRecord,
        proof: Proof,
        actor: &Actor,
    ) -> StoreResult<ConnectionRecord> {
        match self.bind_installation_once(new, proof, actor).await {
            Err(crate::StoreError::Database(e)) if is_unique_violation(&e) => {
                self.bind_installation_once(new, proof, actor).await
            }
            other => other,
        }
    }

    async fn bind_installation_once(
        &self,
        new: &ConnectionRecord,
        proof: Proof,
        actor: &Actor,
    ) -> StoreResult<ConnectionRecord> {
        let select = format!(
            "SELECT {CONNECTION_COLUMNS} FROM github_connections c \
             WHERE c.team_id = $1 AND c.host = $2 AND c.owner = $3"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let existing: Option<ConnectionRecord> = sqlx::query_as(&select)
                .bind(new.team_id)
                .bind(new.host.as_str())
                .bind(new.owner.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let id = existing.as_ref().map_or(new.id, |c| c.id);
            if existing.is_some() {
                sqlx::query(
                    "UPDATE github_connections SET kind = $1, installation_id = $2, \
                     pat_ciphertext = NULL, pat_expires_at = NULL, status = $3 WHERE id = $4",
                )
                .bind(ConnectionKind::GithubApp.as_str())
                .bind(new.installation_id)
                .bind(ConnectionStatus::Active.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO github_connections (id, team_id, host, owner, kind, \
                     installation_id, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(new.team_id)
                .bind(new.host.as_str())
                .bind(new.owner.as_str())
                .bind(ConnectionKind::GithubApp.as_str())
                .bind(new.installation_id)
                .bind(ConnectionStatus::Active.as_str())
                .bind(new.created_at)
                .execute(&mut *tx)
                .await?;
            }
            let event = AuditEvent::new(AuditKind::GithubConnectionCreated, actor.clone())
                .subject(id)
                .data(serde_json::json!({
                    "host": new.host, "owner": new.owner, "kind": ConnectionKind::GithubApp,
                    "installation_id": new.installation_id, "proof": proof.as_str(),
                    "replaced": existing.is_some(),
                }));
            insert_audit(&mut *tx, new.team_id, &event, new.created_at).await?;
            let bound: ConnectionRecord = sqlx::query_as(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM github_connections c WHERE c.id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(bound)
        })
    }
}
