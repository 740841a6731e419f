//! A small migration runner over per-dialect SQL folders.
//!
//! Each migration runs in its own transaction together with its bookkeeping row, so a failure
//! leaves the schema at the previous version. On Postgres an advisory lock serialises replicas
//! that start at the same moment.

use chrono::Utc;
use sqlx::{Executor, Row};

use crate::{on_pool, Dialect, Store, StoreError, StoreResult};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[migration!(1, "0001_accounts"), migration!(2, "0002_github")];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS lanyard_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Arbitrary constant identifying Lanyard's migration lock.
const PG_LOCK_KEY: i64 = 0x4c61_6e79_6172_6401;

pub(crate) async fn run(store: &Store) -> StoreResult<usize> {
    let dialect = store.dialect();
    on_pool!(store, pool => {
        let mut conn = pool.acquire().await?;
        if dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
        }
        let result = async {
            conn.execute(BOOKKEEPING).await?;
            let rows = sqlx::query("SELECT version, name FROM lanyard_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await?;
            let mut applied = Vec::with_capacity(rows.len());
            for row in rows {
                applied.push((row.try_get::<i64, _>("version")?, row.try_get::<String, _>("name")?));
            }
            check_history(&applied)?;
            let mut count = 0;
            for m in MIGRATIONS.iter().skip(applied.len()) {
                let sql = match dialect {
                    Dialect::Sqlite => m.sqlite,
                    Dialect::Postgres => m.postgres,
                };
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| {
                    StoreError::Migration(format!("{} failed: {e}", m.name))
                })?;
                sqlx::query("INSERT INTO lanyard_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(Utc::now().to_rfc3339())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(version = m.version, name = m.name, "applied migration");
                count += 1;
            }
            Ok::<usize, StoreError>(count)
        }
        .await;
        if dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
        }
        result
    })
}

/// The database's history must be a prefix of ours: same versions, same names, none newer.
fn check_history(applied: &[(i64, String)]) -> StoreResult<()> {
    if applied.len() > MIGRATIONS.len() {
        return Err(StoreError::Migration(format!(
            "the database has {} migrations but this binary knows only {}; it was migrated by a \
             newer Lanyard",
            applied.len(),
            MIGRATIONS.len()
        )));
    }
    for ((version, name), known) in applied.iter().zip(MIGRATIONS) {
        if *version != known.version || name != known.name {
            return Err(StoreError::Migration(format!(
                "the database has migration {version} {name:?} where this binary expects {} {:?}",
                known.version, known.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_both_dialects_exist() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            assert!(
                !m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty(),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn foreign_history_is_refused() {
        assert!(check_history(&[(1, "0001_accounts".into())]).is_ok());
        assert!(check_history(&[(1, "0001_other".into())]).is_err());
        let too_many: Vec<_> = (1..=MIGRATIONS.len() as i64 + 1)
            .map(|v| (v, String::new()))
            .collect();
        assert!(check_history(&too_many).is_err());
    }
}
