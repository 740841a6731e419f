//! The encrypted token cache: installation tokens minted for a scope, until revoked or expired.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind};
use sqlx::types::Json;
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, Pool, Store, StoreResult};

/// A cached installation token (encrypted).
#[derive(Clone, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: Uuid,
    pub team_id: Uuid,
    pub cache_key: String,
    pub host: String,
    pub installation_id: i64,
    pub ciphertext: Vec<u8>,
    #[sqlx(json)]
    pub repositories: Vec<String>,
    /// As GitHub reported them: names this binary may not know yet.
    #[sqlx(json)]
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

/// Claims a token for revocation on `$tx`: marks it revoked and audits `credential.revoked` by
/// `$actor`, with the token's host and installation added to `$data` (an object). The caller
/// revokes it at GitHub once the transaction commits.
macro_rules! claim_token {
    ($tx:expr, $token:expr, $actor:expr, $data:expr, $now:expr) => {{
        let token: &$crate::TokenRecord = $token;
        sqlx::query("UPDATE github_tokens SET revoked_at = $1 WHERE id = $2")
            .bind($now)
            .bind(token.id)
            .execute(&mut *$tx)
            .await?;
        let mut data: serde_json::Value = $data;
        data["host"] = token.host.clone().into();
        data["installation_id"] = token.installation_id.into();
        let event = $crate::AuditEvent::new(lanyard_core::AuditKind::CredentialRevoked, $actor)
            .subject(token.id)
            .data(data);
        $crate::audit::insert_audit!(&mut *$tx, token.team_id, &event, $now)?;
    }};
}
pub(crate) use claim_token;

pub(crate) const TOKEN_COLUMNS: &str = "t.id, t.team_id, t.cache_key, t.host, \
     t.installation_id, t.ciphertext, t.repositories, t.permissions, t.created_at, t.expires_at";

/// Holds the cross-replica mint lock for one scope until dropped (Postgres advisory lock; a no-op
/// on SQLite, whose single writer is serialised in-process).
#[derive(Debug)]
pub struct ScopeLock {
    _tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
}

impl Store {
    /// The newest unrevoked token for a cache key, if any.
    pub async fn latest_token(&self, cache_key: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens t WHERE t.cache_key = $1 \
             AND t.revoked_at IS NULL ORDER BY t.expires_at DESC LIMIT 1"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(cache_key).fetch_optional(pool).await?
        }))
    }

    /// Stores a freshly minted token with its `credential.minted` record.
    pub async fn insert_token(&self, token: &TokenRecord, actor: &Actor) -> StoreResult<()> {
        let event = AuditEvent::new(AuditKind::CredentialMinted, actor.clone())
            .subject(token.id)
            .data(serde_json::json!({
                "host": token.host, "installation_id": token.installation_id,
                "repositories": token.repositories, "permissions": token.permissions,
                "expires_at": token.expires_at,
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO github_tokens (id, team_id, cache_key, host, installation_id, \
                 ciphertext, repositories, permissions, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(token.id)
            .bind(token.team_id)
            .bind(&token.cache_key)
            .bind(&token.host)
            .bind(token.installation_id)
            .bind(&token.ciphertext)
            .bind(Json(&token.repositories))
            .bind(Json(&token.permissions))
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
                let mut tx = pool.begin_write().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock_id)
                    .execute(&mut *tx)
                    .await?;
                Ok(ScopeLock { _tx: Some(tx) })
            }
        }
    }
}
