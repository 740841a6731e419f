//! GitHub connections: which owner on which host a team's sessions can reach, and how.

use chrono::{DateTime, Utc};
use lanyard_core::github::Owner;
use lanyard_core::{Actor, AuditKind};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::{on_pool, AuditEvent, Store, StoreResult};

lanyard_core::string_enum! {
    pub enum ConnectionKind {
        GithubApp = "github_app",
        Pat = "pat",
    }
}

/// A connection. Columns are selected with [`CONNECTION_COLUMNS`] (prefixed `c_`).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRecord {
    #[sqlx(rename = "c_id")]
    pub id: Uuid,
    #[sqlx(rename = "c_team_id")]
    pub team_id: Uuid,
    #[sqlx(rename = "c_host")]
    pub host: String,
    #[sqlx(rename = "c_owner", try_from = "String")]
    pub owner: Owner,
    #[sqlx(rename = "c_kind", try_from = "String")]
    pub kind: ConnectionKind,
    #[sqlx(rename = "c_installation_id")]
    pub installation_id: Option<i64>,
    /// AES-GCM ciphertext of the PAT; opened only by the broker.
    #[sqlx(rename = "c_pat_ciphertext")]
    pub pat_ciphertext: Option<Vec<u8>>,
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
            .finish_non_exhaustive()
    }
}

pub(crate) const CONNECTION_COLUMNS: &str = "c.id AS c_id, c.team_id AS c_team_id, \
     c.host AS c_host, c.owner AS c_owner, c.kind AS c_kind, \
     c.installation_id AS c_installation_id, c.pat_ciphertext AS c_pat_ciphertext, \
     c.created_at AS c_created_at";

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
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO github_connections \
                 (id, team_id, host, owner, kind, installation_id, pat_ciphertext, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new.id)
            .bind(new.team_id)
            .bind(&new.host)
            .bind(new.owner.as_str())
            .bind(new.kind.as_str())
            .bind(new.installation_id)
            .bind(&new.pat_ciphertext)
            .bind(new.created_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => Ok(None),
                Err(e) => Err(e.into()),
                Ok(_) => {
                    insert_audit!(&mut *tx, new.team_id, &event, new.created_at)?;
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

    /// Removes one of the team's connections. `false` if it has no such connection.
    pub async fn delete_connection(
        &self,
        team_id: Uuid,
        id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let event = AuditEvent::new(AuditKind::GithubConnectionDeleted, actor.clone()).subject(id);
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
}
