//! Rotating what a connection holds: a PAT given anew by its team, and a refresh token its
//! provider rotated on a refresh. A refresh token is committed over the generation its refresh
//! read (`refresh_generation`), so a refresh that used an older one never overwrites a newer.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::conn::{Arg, Conn};
use crate::connections::CONNECTION_COLUMNS;
use crate::BeginWrite;
use crate::{
    on_pool, AuditEvent, ConnectionKind, ConnectionRecord, ConnectionStatus, Store, StoreResult,
};

/// A connection's rotated refresh token, to commit over the generation the refresh read.
#[derive(Clone)]
pub struct Rotation {
    pub connection_id: Uuid,
    /// The generation of the refresh token the refresh used.
    pub read_generation: i64,
    /// The new refresh token, sealed.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotation")
            .field("connection_id", &self.connection_id)
            .field("read_generation", &self.read_generation)
            .finish_non_exhaustive()
    }
}

/// What became of a rotated refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotated {
    /// It is the connection's refresh token now.
    Committed,
    /// The connection's token moved on since the refresh read it (another refresh committed
    /// first): the newer one stays.
    Superseded,
    /// The connection was deleted meanwhile: nothing keeps the rotated token; revoke it.
    ConnectionGone,
}

/// Commits a rotated refresh token over the generation its refresh read.
pub(crate) async fn rotate<'c>(
    conn: impl Into<Conn<'c>>,
    rotation: &Rotation,
) -> sqlx::Result<Rotated> {
    let mut conn = conn.into();
    let sql = "UPDATE github_connections SET refresh_ciphertext = $1, \
               refresh_generation = refresh_generation + 1 \
               WHERE id = $2 AND refresh_generation = $3";
    let args = [
        Arg::Bytes(&rotation.ciphertext),
        Arg::Id(rotation.connection_id),
        Arg::Int64(rotation.read_generation),
    ];
    if conn.execute(sql, &args).await? == 1 {
        return Ok(Rotated::Committed);
    }
    let exists = "SELECT id FROM github_connections WHERE id = $1";
    let found: Vec<(Uuid,)> = conn
        .fetch_all(exists, &[Arg::Id(rotation.connection_id)])
        .await?;
    Ok(if !found.is_empty() {
        Rotated::Superseded
    } else {
        Rotated::ConnectionGone
    })
}

impl Store {
    /// Commits a rotated refresh token on its own, for a refresh whose access token is not
    /// stored (unusable, or refused): the provider ended the refresh token before it.
    pub async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<Rotated> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let rotated = rotate(&mut *tx, rotation).await?;
            tx.commit().await?;
            Ok(rotated)
        })
    }

    /// Replaces a PAT connection's token (already sealed for this connection id) and its expiry.
    /// `None` if the team has no such PAT connection.
    pub async fn rotate_pat(
        &self,
        team_id: Uuid,
        id: Uuid,
        ciphertext: &[u8],
        expires_at: Option<DateTime<Utc>>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let select =
            format!("SELECT {CONNECTION_COLUMNS} FROM github_connections c WHERE c.id = $1");
        let event = AuditEvent::new(AuditKind::GithubConnectionRotated, actor.clone())
            .subject(id)
            .data(serde_json::json!({ "pat_expires_at": expires_at }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE github_connections SET pat_ciphertext = $1, pat_expires_at = $2, status = $3 \
                 WHERE id = $4 AND team_id = $5 AND kind = $6",
            )
            .bind(ciphertext)
            .bind(expires_at)
            .bind(ConnectionStatus::Active.as_str())
            .bind(id)
            .bind(team_id)
            .bind(ConnectionKind::Pat.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Ok(None);
            }
            insert_audit(&mut *tx, team_id, &event, now).await?;
            let record = sqlx::query_as(&select).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(record))
        })
    }
}
