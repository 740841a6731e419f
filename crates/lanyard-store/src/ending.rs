//! How a session ends: stopped by its team (`sessions.rs`), or expired by the worker (here).
//! Either way the same holder rule decides which tokens die with it.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::conn::{Arg, Conn};
use crate::sessions::{StopOutcome, StoppedRow};
use crate::tokens::{claim_token, lock_holders, TOKEN_COLUMNS};
use crate::BeginWrite;
use crate::TokenRecord;
use crate::{on_pool, AuditEvent, Store, StoreResult};

/// Unexpired tokens of session `$1` (team `$2`) that no other live session holds at `$3`.
pub(crate) fn orphaned_tokens_sql() -> String {
    format!(
        "SELECT {TOKEN_COLUMNS} FROM github_tokens t \
         WHERE t.team_id = $2 AND t.revoked_at IS NULL AND t.expires_at > $3 \
         AND t.cache_key IN (SELECT cache_key FROM session_scopes WHERE session_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM session_scopes sc JOIN sessions o ON o.id = sc.session_id \
             WHERE sc.cache_key = t.cache_key AND o.id <> $1 AND o.stopped_at IS NULL \
             AND o.expires_at > $3)"
    )
}

/// After session `id` has ended, in its transaction: takes the holder locks on its scopes, then
/// claims for revocation every token of them that no other live session holds. Returns those
/// tokens; the caller revokes them upstream once the transaction commits.
pub(crate) async fn release_holders<'c>(
    conn: impl Into<Conn<'c>>,
    id: Uuid,
    team_id: Uuid,
    actor: &Actor,
    reason: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<TokenRecord>> {
    let mut conn = conn.into();
    // Decide who still holds each scope only once no other stop or mint of the same scopes is
    // deciding too.
    let sql = "SELECT cache_key FROM session_scopes WHERE session_id = $1";
    let keys: Vec<(String,)> = conn.fetch_all(sql, &[Arg::Id(id)]).await?;
    lock_holders(conn.reborrow(), keys.iter().map(|(k,)| k.as_str())).await?;
    let sql = orphaned_tokens_sql();
    let args = [Arg::Id(id), Arg::Id(team_id), Arg::Time(now)];
    let orphaned: Vec<TokenRecord> = conn.fetch_all(&sql, &args).await?;
    for token in &orphaned {
        let why = serde_json::json!({"reason": reason, "session_id": id});
        claim_token(conn.reborrow(), token, actor.clone(), why, now).await?;
    }
    Ok(orphaned)
}

impl Store {
    /// Live sessions whose TTL ran out by `now` and that the expiry worker has not ended yet,
    /// oldest first: `(team_id, session_id)`.
    pub async fn expiring_sessions(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Uuid, Uuid)>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT team_id, id FROM sessions WHERE stopped_at IS NULL AND expired_at IS NULL \
                 AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Ends a session whose TTL ran out: marks it, writes `session.expired`, and claims the
    /// tokens nobody live holds any more. `None` if it was stopped, already expired by another
    /// run, or is not due: the conditional update makes a second replica's try a no-op.
    pub async fn expire_session(
        &self,
        team_id: Uuid,
        id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StopOutcome>> {
        let select = StoppedRow::sql();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let expired = sqlx::query(
                "UPDATE sessions SET expired_at = $3 WHERE id = $1 AND team_id = $2 \
                 AND stopped_at IS NULL AND expired_at IS NULL AND expires_at <= $3",
            )
            .bind(id)
            .bind(team_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if expired != 1 {
                return Ok(None);
            }
            let row: StoppedRow =
                sqlx::query_as(&select).bind(id).bind(team_id).fetch_one(&mut *tx).await?;
            let event = AuditEvent::new(AuditKind::SessionExpired, actor.clone())
                .subject(id)
                .data(serde_json::json!({"expires_at": row.session.expires_at}));
            insert_audit(&mut *tx, team_id, &event, now).await?;
            let revoke = release_holders(&mut *tx, id, team_id, actor, "last holder expired", now).await?;
            tx.commit().await?;
            Ok(Some(StopOutcome {
                session: row.session,
                runner_lookup: row.runner_lookup,
                revoke,
            }))
        })
    }
}
