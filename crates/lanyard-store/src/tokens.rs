//! The encrypted token cache: credentials obtained for a scope (installation tokens minted,
//! access tokens refreshed), until revoked or expired. A refresh token rotated with one is
//! committed in the same transaction ([`crate::rotation`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lanyard_core::github::InstallationId;
use lanyard_core::Host;
use lanyard_core::{Actor, AuditKind};

use sqlx::types::Json;
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::conn::{Arg, Conn};
use crate::connections::CONNECTION_COLUMNS;
use crate::rotation::{rotate, Rotated, Rotation};
use crate::sessions::{SCOPE_COLUMNS, SESSION_COLUMNS};
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, Dialect, Store, StoreResult};
use crate::{ScopeRecord, SessionRecord};

/// A cached token (encrypted), bound to what it was obtained through: an installation (a GitHub
/// App's token, shared by the team's connections to it), or one connection (an access token
/// refreshed for it). Exactly one of the two is set.
#[derive(Clone, sqlx::FromRow)]
pub struct TokenRecord {
    pub id: Uuid,
    pub team_id: Uuid,
    pub cache_key: String,
    #[sqlx(try_from = "String")]
    pub host: Host,
    pub installation_id: Option<InstallationId>,
    pub connection_id: Option<Uuid>,
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
            .field("connection_id", &self.connection_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Claims a token for revocation: marks it revoked and audits `credential.revoked` by `actor`,
/// with the token's host and installation added to `data` (an object). The caller revokes it
/// upstream once the transaction commits.
pub(crate) async fn claim_token<'c>(
    conn: impl Into<Conn<'c>>,
    token: &TokenRecord,
    actor: Actor,
    mut data: serde_json::Value,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let mut conn = conn.into();
    let sql = "UPDATE github_tokens SET revoked_at = $1 WHERE id = $2";
    conn.execute(sql, &[Arg::Time(now), Arg::Id(token.id)])
        .await?;
    data["host"] = token.host.as_str().into();
    data["installation_id"] = token.installation_id.map(InstallationId::get).into();
    if let Some(connection_id) = token.connection_id {
        data["connection_id"] = connection_id.to_string().into();
    }
    let event = AuditEvent::new(AuditKind::CredentialRevoked, actor)
        .subject(token.id)
        .data(data);
    insert_audit(conn, token.team_id, &event, now).await
}

/// Whether a live session holds a scope through a connection that still binds what the token
/// was obtained through: `$1` the cache key, `$2` now, `$3` the installation, `$4` the
/// connection (one of the two is null, and a comparison with null is never true).
const LIVE_HOLDER: &str = "SELECT EXISTS (SELECT 1 FROM session_scopes sc \
     JOIN sessions s ON s.id = sc.session_id \
     JOIN github_connections c ON c.team_id = s.team_id AND c.host = sc.host AND c.owner = sc.owner \
     WHERE sc.cache_key = $1 AND sc.revoked_at IS NULL \
     AND s.stopped_at IS NULL AND s.expires_at > $2 \
     AND (c.installation_id = $3 OR c.id = $4))";

/// What became of a minted token on storing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A live session holds its scope: serve it.
    Held,
    /// Nobody holds its scope any more: it is claimed for revocation; revoke it, never serve it.
    Orphaned,
}

/// The advisory-lock namespace of holder decisions (the two-key form, apart from the one-key
/// mint locks).
pub(crate) const HOLDERS_LOCK_SPACE: i32 = 0x4c_41_4e; // "LAN"

/// A cache key as the second key of a holder lock: FNV-1a, folded to 32 bits.
pub(crate) fn holder_lock_key(cache_key: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in cache_key.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Takes the lock on who holds each scope in `keys` (cache keys), for the rest of the
/// transaction: on Postgres a transaction-level advisory lock per key, taken in sorted order so
/// two transactions never deadlock; on SQLite nothing, since its write transactions
/// (`BEGIN IMMEDIATE`) already run one at a time.
pub(crate) async fn lock_holders<'c, 'k>(
    conn: impl Into<Conn<'c>>,
    keys: impl Iterator<Item = &'k str>,
) -> sqlx::Result<()> {
    let mut conn = conn.into();
    if conn.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let mut keys: Vec<i32> = keys.map(holder_lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let args = [Arg::Int32(HOLDERS_LOCK_SPACE), Arg::Int32(key)];
        conn.execute("SELECT pg_advisory_xact_lock($1, $2)", &args)
            .await?;
    }
    Ok(())
}

pub(crate) const TOKEN_COLUMNS: &str = "t.id, t.team_id, t.cache_key, t.host, \
     t.installation_id, t.connection_id, t.ciphertext, t.repositories, t.permissions, t.created_at, t.expires_at";

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

    /// Stores a freshly obtained token with its `credential.minted` record, if a live session
    /// still holds its scope. If none does (every holder stopped while the provider answered),
    /// the token is stored already claimed for revocation (audited `credential.revoked`) and the
    /// caller must revoke it upstream rather than serve it.
    ///
    /// The holder check and the insert are one transaction, serialised with every other
    /// decision about the scope's holders (see [`lock_holders`]), so a stop either sees this
    /// token and revokes it, or this sees the stop.
    ///
    /// A `rotation` (the refresh token the provider handed over with it) is committed in the
    /// same transaction, held or not: the provider has ended the one before, so it is kept
    /// whatever becomes of the access token.
    pub async fn insert_token(
        &self,
        token: &TokenRecord,
        rotation: Option<&Rotation>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<(Stored, Option<Rotated>)> {
        let event = AuditEvent::new(AuditKind::CredentialMinted, actor.clone())
            .subject(token.id)
            .data(serde_json::json!({
                "host": token.host, "installation_id": token.installation_id,
                "connection_id": token.connection_id,
                "repositories": token.repositories, "permissions": token.permissions,
                "expires_at": token.expires_at,
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            lock_holders(&mut *tx, std::iter::once(token.cache_key.as_str())).await?;
            // A deletion of the connection in flight (its row locked) is waited for, so the
            // check below sees it committed (SQLite's writers are serialised already).
            if self.dialect() == crate::Dialect::Postgres {
                sqlx::query(
                    "SELECT 1 FROM github_connections WHERE team_id = $1 AND host = $2 \
                     AND (installation_id = $3 OR id = $4) FOR SHARE",
                )
                .bind(token.team_id)
                .bind(token.host.as_str())
                .bind(token.installation_id)
                .bind(token.connection_id)
                .execute(&mut *tx)
                .await?;
            }
            let rotated = match rotation {
                Some(rotation) => Some(rotate(&mut *tx, rotation).await?),
                None => None,
            };
            let held: bool = sqlx::query_scalar(LIVE_HOLDER)
                .bind(&token.cache_key)
                .bind(now)
                .bind(token.installation_id)
                .bind(token.connection_id)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO github_tokens (id, team_id, cache_key, host, installation_id, \
                 connection_id, ciphertext, repositories, permissions, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(token.id)
            .bind(token.team_id)
            .bind(&token.cache_key)
            .bind(token.host.as_str())
            .bind(token.installation_id)
            .bind(token.connection_id)
            .bind(&token.ciphertext)
            .bind(Json(&token.repositories))
            .bind(Json(&token.permissions))
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit(&mut *tx, token.team_id, &event, token.created_at).await?;
            if !held {
                claim_token(
                    &mut *tx,
                    token,
                    actor.clone(),
                    serde_json::json!({"reason": "no live session holds its scope any more"}),
                    now
                ).await?;
            }
            tx.commit().await?;
            Ok((if held { Stored::Held } else { Stored::Orphaned }, rotated))
        })
    }

    /// Whether a token may no longer be served: revoked, or gone with its team.
    pub async fn token_revoked(&self, id: Uuid) -> StoreResult<bool> {
        let live: Option<bool> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT revoked_at IS NULL FROM github_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(live != Some(true))
    }

    /// One scope of a session as the store has it now (its session, and the scope joined with
    /// the team's connection), for a replica whose cached view turned out stale. `None` when the
    /// session or the scope is gone.
    pub async fn fresh_scope(
        &self,
        session_id: Uuid,
        team_id: Uuid,
        cache_key: &str,
    ) -> StoreResult<Option<(SessionRecord, ScopeRecord)>> {
        let session_sql =
            format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1 AND s.team_id = $2");
        let scope_sql = format!(
            "SELECT {SCOPE_COLUMNS}, {CONNECTION_COLUMNS} \
             FROM session_scopes sc LEFT JOIN github_connections c \
             ON c.team_id = $2 AND c.host = sc.host AND c.owner = sc.owner \
             WHERE sc.session_id = $1 AND sc.cache_key = $3"
        );
        Ok(on_pool!(self, pool => {
            let session: Option<SessionRecord> = sqlx::query_as(&session_sql)
                .bind(session_id)
                .bind(team_id)
                .fetch_optional(pool)
                .await?;
            match session {
                None => None,
                Some(session) => sqlx::query_as::<_, ScopeRecord>(&scope_sql)
                    .bind(session_id)
                    .bind(team_id)
                    .bind(cache_key)
                    .fetch_optional(pool)
                    .await?
                    .map(|scope| (session, scope)),
            }
        }))
    }
}
