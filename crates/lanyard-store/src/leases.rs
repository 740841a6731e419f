//! Mint leases: the cross-replica lock on obtaining a scope's (or a connection's) credential
//! when there is no Redis, or where a lock must live in the database. One short statement each:
//! nothing is held between them.

use chrono::{DateTime, Utc};

use crate::{on_pool, Store, StoreResult};

impl Store {
    /// Claims the mint lease of a scope for `holder` until `until`, if nobody holds it or the
    /// last holder's lease lapsed at `now`. One short statement: nothing is held meanwhile, so a
    /// replica waiting for another's mint holds no pooled connection.
    pub async fn claim_mint_lease(
        &self,
        cache_key: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO mint_leases (cache_key, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (cache_key) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at WHERE mint_leases.expires_at <= $4",
            )
            .bind(cache_key)
            .bind(holder)
            .bind(until)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Extends a mint lease to `until`, if `holder` still holds it: a refresh slower than the
    /// lease keeps it, so no other replica refreshes with a refresh token it is rotating.
    pub async fn extend_mint_lease(
        &self,
        cache_key: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(on_pool!(self, pool => {
            sqlx::query("UPDATE mint_leases SET expires_at = $1 WHERE cache_key = $2 AND holder = $3")
                .bind(until)
                .bind(cache_key)
                .bind(holder)
                .execute(pool)
                .await?
                .rows_affected()
                == 1
        }))
    }

    /// Gives a mint lease back, if `holder` still holds it.
    pub async fn release_mint_lease(&self, cache_key: &str, holder: &str) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM mint_leases WHERE cache_key = $1 AND holder = $2")
                .bind(cache_key)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
