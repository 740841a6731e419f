//! Migrations through sqlx's migrator: one folder per dialect, checksummed, each migration in
//! its own transaction, serialised across replicas by sqlx's advisory lock on Postgres.
//!
//! Databases made before Lanyard used sqlx's migrator kept their history in `lanyard_migrations`
//! (names, no checksums). `adopt_legacy_history!` moves that history into `_sqlx_migrations`
//! once, in one transaction, so such a database upgrades in place.

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Connection, Row};

use crate::{Pool, Store, StoreError, StoreResult};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// Serialises the legacy adoption across replicas (the key the old runner locked with).
const LEGACY_LOCK_KEY: i64 = 0x4c61_6e79_6172_6401;

/// Moves a legacy `lanyard_migrations` history into `_sqlx_migrations`, checking that every
/// legacy name is the migration this binary has at that version. Idempotent. A macro, so the one
/// body serves both concrete connection types.
macro_rules! adopt_legacy_history {
    ($conn:expr, $migrator:expr, $exists_sql:expr) => {{
        let conn = $conn;
        let migrator: &Migrator = $migrator;
        let legacy: i64 = sqlx::query($exists_sql).fetch_one(&mut *conn).await?.try_get(0)?;
        if legacy > 0 {
            conn.ensure_migrations_table()
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            let mut tx = conn.begin().await?;
            let rows = sqlx::query("SELECT version, name FROM lanyard_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let version: i64 = row.try_get(0)?;
                let name: String = row.try_get(1)?;
                let known = migrator.iter().find(|m| m.version == version).ok_or_else(|| {
                    StoreError::Migration(format!(
                        "the database has migration {name}, which this binary does not know"
                    ))
                })?;
                if file_name(version, &known.description) != name {
                    return Err(StoreError::Migration(format!(
                        "the database has migration {name} where this binary has {}",
                        file_name(version, &known.description)
                    )));
                }
                sqlx::query(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                     SELECT $1, $2, TRUE, $3, 0 WHERE NOT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1)",
                )
                .bind(version)
                .bind(known.description.to_string())
                .bind(known.checksum.to_vec())
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DROP TABLE lanyard_migrations").execute(&mut *tx).await?;
            tx.commit().await?;
            tracing::info!("adopted the legacy migration history into _sqlx_migrations");
        }
        Ok::<(), StoreError>(())
    }};
}

const SQLITE_LEGACY: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'lanyard_migrations'";
const POSTGRES_LEGACY: &str = "SELECT COUNT(*) FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_name = 'lanyard_migrations'";

pub(crate) async fn run(store: &Store) -> StoreResult<usize> {
    match &store.pool {
        Pool::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            adopt_legacy_history!(&mut *conn, &SQLITE, SQLITE_LEGACY)?;
            let before = applied(&mut *conn).await?;
            drop(conn);
            SQLITE.run(pool).await.map_err(|e| explain(&SQLITE, e))?;
            let mut conn = pool.acquire().await?;
            Ok(applied(&mut *conn).await? - before)
        }
        Pool::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(LEGACY_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
            let adopted =
                async { adopt_legacy_history!(&mut *conn, &POSTGRES, POSTGRES_LEGACY) }.await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LEGACY_LOCK_KEY)
                .execute(&mut *conn)
                .await?;
            adopted?;
            let before = applied(&mut *conn).await?;
            drop(conn);
            POSTGRES
                .run(pool)
                .await
                .map_err(|e| explain(&POSTGRES, e))?;
            let mut conn = pool.acquire().await?;
            Ok(applied(&mut *conn).await? - before)
        }
    }
}

/// What the database's migration history says, read without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Migrations applied.
    pub applied: usize,
    /// Migrations this binary has that the database lacks (`serve` applies them).
    pub pending: Vec<String>,
}

const SQLITE_HISTORY: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";
const POSTGRES_HISTORY: &str = "SELECT COUNT(*) FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'";

/// Checks the history against this binary's migrations: an edited, unknown or half-applied
/// migration is the error `serve` would stop on. A legacy history counts as all pending.
macro_rules! history_status {
    ($conn:expr, $migrator:expr, $exists_sql:expr) => {{
        let conn = $conn;
        let migrator: &Migrator = $migrator;
        let exists: i64 = sqlx::query($exists_sql)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let applied = if exists > 0 {
            if let Some(v) = conn
                .dirty_version()
                .await
                .map_err(|e| explain(migrator, e))?
            {
                return Err(explain(migrator, MigrateError::Dirty(v)));
            }
            conn.list_applied_migrations()
                .await
                .map_err(|e| explain(migrator, e))?
        } else {
            Vec::new()
        };
        for a in &applied {
            match migrator.iter().find(|m| m.version == a.version) {
                None => return Err(explain(migrator, MigrateError::VersionMissing(a.version))),
                Some(m) if m.checksum != a.checksum => {
                    return Err(explain(migrator, MigrateError::VersionMismatch(a.version)))
                }
                Some(_) => {}
            }
        }
        let pending = migrator
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .map(|m| file_name(m.version, &m.description))
            .collect();
        Ok::<MigrationStatus, StoreError>(MigrationStatus {
            applied: applied.len(),
            pending,
        })
    }};
}

pub(crate) async fn status(store: &Store) -> StoreResult<MigrationStatus> {
    match &store.pool {
        Pool::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            history_status!(&mut *conn, &SQLITE, SQLITE_HISTORY)
        }
        Pool::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            history_status!(&mut *conn, &POSTGRES, POSTGRES_HISTORY)
        }
    }
}

/// How many migrations the database records as applied.
async fn applied<C>(conn: &mut C) -> StoreResult<usize>
where
    C: Migrate + Send,
{
    conn.ensure_migrations_table()
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    let list = conn
        .list_applied_migrations()
        .await
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(list.len())
}

/// The file name a migration was read from, as an operator sees it: `0002_github`.
fn file_name(version: i64, description: &str) -> String {
    format!("{version:04}_{}", description.replace(' ', "_"))
}

/// Turns sqlx's error into one sentence that names the migration at fault.
fn explain(migrator: &Migrator, e: MigrateError) -> StoreError {
    let name = |v: i64| {
        migrator
            .iter()
            .find(|m| m.version == v)
            .map_or_else(|| format!("{v:04}"), |m| file_name(v, &m.description))
    };
    StoreError::Migration(match e {
        MigrateError::VersionMismatch(v) => format!(
            "migration {} was edited after it was applied to this database (its checksum \
             differs); restore the released file and add a new migration instead",
            name(v)
        ),
        MigrateError::VersionMissing(v) => format!(
            "the database has migration {v:04}, which this binary does not know: it was \
             migrated by a newer Lanyard"
        ),
        MigrateError::Dirty(v) => format!(
            "migration {} failed part-way on an earlier start; repair the database by hand",
            name(v)
        ),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_migrations() {
        let names = |m: &Migrator| {
            m.iter()
                .map(|m| file_name(m.version, &m.description))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&SQLITE), names(&POSTGRES));
        assert_eq!(names(&SQLITE)[..2], ["0001_accounts", "0002_github"]);
    }
}
