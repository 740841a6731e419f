//! Lanyard's persistence.
//!
//! One SQL implementation serves SQLite and Postgres: each query is written once, with `$n`
//! placeholders that both drivers accept, and [`on_pool!`] compiles it for each backend. Rows map
//! through `sqlx::FromRow`, and migrations run through sqlx's migrator. Handlers never see SQL;
//! they call the methods here, which take and return domain records.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

mod accounts;
mod audit;
mod conn;
mod connections;
mod ending;
mod leases;
mod migrate;
mod notifications;
mod rotation;
mod sessions;
mod signals;
mod teams;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod trust;
mod url;
mod usage;
mod workers;

pub use accounts::{
    ApiKeyPrincipal, ApiKeyRecord, CreatedTeam, NewApiKey, NewTeam, TeamRecord, UserPrincipal,
};
pub use audit::{AuditEvent, AuditRecord};
pub use connections::{ConnectionKind, ConnectionRecord, ConnectionStatus, Proof};
pub use migrate::MigrationStatus;
pub use notifications::{Delivered, NewNotification, NotificationRecord, Outgoing};
pub use rotation::{Rotated, Rotation};
pub use sessions::{
    NewScope, NewSession, QuotaExceeded, RunnerSession, ScopeRecord, SessionRecord, SessionStatus,
    StopOutcome,
};
pub use signals::{ActiveCount, ExpiringPat};
pub use teams::{CreateOutcome, TeamDeletion, TeamUpdate};
pub use tokens::{Stored, TokenRecord};
pub use trust::{Applied, Delivery, InstallState, WebhookChange};
pub use url::{DatabaseUrl, DatabaseUrlError, Dialect};
pub use usage::{MintRow, SessionSpan, UsageDay};
pub use workers::{ClaimedRun, RunEnd, WorkerRunRecord};

/// Runs `$body` with `$pool` bound to the concrete pool, once per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Beginning a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), so two writers queue behind the busy timeout instead of one failing
/// when it upgrades a stale read snapshot. On Postgres it names READ COMMITTED, whatever the
/// server's default: the holder decisions (a stop, a mint's insert) take their lock and then read
/// what committed before it, which a REPEATABLE READ snapshot taken earlier would miss.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
           + Send;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
           + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
           + Send {
        self.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer in time or the connection broke; worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored value no longer parses (e.g. a tier this binary does not know).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// One error of each kind, for the API's document of what a store error can become.
    pub fn examples() -> Vec<StoreError> {
        let all = vec![
            StoreError::Unavailable(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::RowNotFound),
            StoreError::Migration(String::new()),
            StoreError::Corrupt(String::new()),
        ];
        for e in &all {
            // A new kind does not compile until it has an example above.
            match e {
                StoreError::Unavailable(_)
                | StoreError::Database(_)
                | StoreError::Migration(_)
                | StoreError::Corrupt(_) => {}
            }
        }
        all
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            // Postgres refusing or ending the connection: connection exceptions (class 08), a
            // server shutting down or starting (57P01-57P03), too many connections (53300).
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("57P") || c == "53300"
                }) =>
            {
                StoreError::Unavailable(e)
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl Store {
    /// Connects (creating the SQLite file if needed). Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Self> {
        let pool = match url.dialect() {
            Dialect::Sqlite => {
                if let Some(parent) = url
                    .sqlite_path()
                    .as_deref()
                    .and_then(std::path::Path::parent)
                {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
                    }
                }
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(StoreError::Database)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // 1 MiB of page cache per connection (SQLite's default is 2 MiB): the hot
                    // path is served from Lanyard's own caches, not from pages.
                    .pragma("cache_size", "-1024");
                let pool = SqlitePoolOptions::new()
                    // One writer at a time anyway; four readers cover two cores.
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Pool::Sqlite(pool)
            }
            Dialect::Postgres => {
                let options =
                    PgConnectOptions::from_str(url.expose()).map_err(StoreError::Database)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool })
    }

    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Applies pending migrations. Idempotent, and safe when several replicas start at once.
    pub async fn migrate(&self) -> StoreResult<usize> {
        migrate::run(self).await
    }

    /// The migration history checked against this binary's migrations, changing nothing
    /// (`lanyard doctor`).
    pub async fn migration_status(&self) -> StoreResult<migrate::MigrationStatus> {
        migrate::status(self).await
    }

    /// One round trip, for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}
