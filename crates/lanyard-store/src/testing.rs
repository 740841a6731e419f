//! Test support: a fresh, empty database per test.
//!
//! With `TEST_DATABASE_URL` unset, tests use a SQLite file in their own temp directory. With it
//! set, each call creates a new Postgres database on that server, so tests never share state.
//! A set but unreachable server is an error, never a silent fall-back to SQLite.

use sqlx::{Connection, Executor, PgConnection};

use crate::DatabaseUrl;

/// Runs `$body` with `$conn` bound to one fresh connection to `$url` (either backend), and
/// closes it.
macro_rules! with_connection {
    ($url:expr, $conn:ident => $body:expr) => {
        match $url.dialect() {
            crate::Dialect::Sqlite => {
                let options: sqlx::sqlite::SqliteConnectOptions =
                    $url.expose().parse().expect("sqlite URL");
                let mut $conn =
                    sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
                        .await
                        .expect("connect to sqlite");
                let out = $body;
                let _ = $conn.close().await;
                out
            }
            crate::Dialect::Postgres => {
                let mut $conn = PgConnection::connect($url.expose())
                    .await
                    .expect("connect to postgres");
                let out = $body;
                let _ = $conn.close().await;
                out
            }
        }
    };
}

/// Name prefix of per-test databases, so CI can drop leftovers.
pub const TEST_DATABASE_PREFIX: &str = "lanyard_t_";

/// The Postgres server under test, if `TEST_DATABASE_URL` is set.
pub fn postgres_under_test() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Creates an empty database on the server at `TEST_DATABASE_URL` and returns its URL.
///
/// # Panics
/// When the server cannot be reached: a requested backend must fail the run, not be skipped.
pub async fn fresh_postgres_database(server_url: &str) -> DatabaseUrl {
    let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(server_url).await.unwrap_or_else(|e| {
        panic!("TEST_DATABASE_URL is set but Postgres is unreachable ({e}); start it or unset the variable")
    });
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
    let _ = admin.close().await;
    DatabaseUrl::parse(&with_database_name(server_url, &name)).expect("derived URL parses")
}

/// The databases a store test runs on: SQLite in `dir` always, and a fresh Postgres database
/// when `TEST_DATABASE_URL` is set.
pub async fn databases_under_test(dir: &std::path::Path) -> Vec<DatabaseUrl> {
    let mut urls = vec![DatabaseUrl::sqlite_in(dir)];
    if let Some(server) = postgres_under_test() {
        urls.push(fresh_postgres_database(&server).await);
    }
    urls
}

/// Runs a SQL script on the database at `url` over its own connection (to set up states the
/// store itself would never write, such as a legacy schema).
pub async fn execute_script(url: &DatabaseUrl, sql: &str) {
    with_connection!(url, conn => {
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("script runs");
    });
}

/// Replaces the database name in a postgres URL, keeping credentials and query parameters.
pub fn with_database_name(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i);
    let host_part = path_start.map_or(base, |i| &base[..i]);
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Every stored byte of the database as text, for tests that prove a secret is never stored.
/// SQLite: the database file and its write-ahead log. Postgres: every row of every table.
pub async fn dump_text(url: &DatabaseUrl) -> String {
    match url.dialect() {
        crate::Dialect::Sqlite => {
            let path = url.sqlite_path().expect("sqlite URL has a path");
            let mut out = String::new();
            for suffix in ["", "-wal", "-journal"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                if let Ok(bytes) = std::fs::read(&p) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            out
        }
        crate::Dialect::Postgres => {
            let mut conn = PgConnection::connect(url.expose())
                .await
                .expect("connect for dump");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("list tables");
            let mut out = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .expect("dump table");
                out.push_str(&rows.join("\n"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database_name("postgres://postgres@127.0.0.1:5432/ci_run", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database_name("postgres://u:p@h", "x"),
            "postgres://u:p@h/x"
        );
        assert_eq!(
            with_database_name("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}

/// One stored GitHub token as a crash test inspects it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: uuid::Uuid,
    pub ciphertext: Vec<u8>,
    pub cache_key: String,
    /// Claimed for revocation (the revocation at GitHub is pending or done).
    pub revoked: bool,
    /// An unstopped session still holds an unrevoked scope with this cache key.
    pub held: bool,
}

const TOKEN_ROWS: &str = "SELECT t.id, t.ciphertext, t.cache_key, \
     t.revoked_at IS NOT NULL AS revoked, \
     EXISTS (SELECT 1 FROM session_scopes sc JOIN sessions s ON s.id = sc.session_id \
       WHERE sc.cache_key = t.cache_key AND sc.revoked_at IS NULL AND s.stopped_at IS NULL) AS held \
     FROM github_tokens t";

/// Every stored token, with whether it is claimed for revocation and whether it is held.
pub async fn token_rows(url: &DatabaseUrl) -> Vec<TokenRow> {
    type Row = (uuid::Uuid, Vec<u8>, String, bool, bool);
    let rows: Vec<Row> = with_connection!(url, conn => {
        sqlx::query_as(TOKEN_ROWS).fetch_all(&mut conn).await.expect("token rows")
    });
    rows.into_iter()
        .map(|(id, ciphertext, cache_key, revoked, held)| TokenRow {
            id,
            ciphertext,
            cache_key,
            revoked,
            held,
        })
        .collect()
}

/// Until when a mint lease on `key` is held, if one is.
pub async fn mint_lease_until(
    url: &DatabaseUrl,
    key: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    with_connection!(url, conn => {
        sqlx::query_scalar("SELECT expires_at FROM mint_leases WHERE cache_key = $1")
            .bind(key)
            .fetch_optional(&mut conn)
            .await
            .expect("mint lease")
    })
}

/// The single number a counting query returns (`SELECT COUNT(*) ...`), on either backend.
pub async fn count(url: &DatabaseUrl, sql: &str) -> i64 {
    with_connection!(url, conn => {
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// A UUID as a SQL literal in `dialect` (SQLite stores UUIDs as 16-byte blobs).
pub fn uuid_literal(dialect: crate::Dialect, id: uuid::Uuid) -> String {
    match dialect {
        crate::Dialect::Sqlite => format!("X'{}'", id.simple()),
        crate::Dialect::Postgres => format!("'{id}'"),
    }
}

/// A Postgres table held under `ACCESS EXCLUSIVE` by an open transaction: every query that
/// reads it waits until [`TableLock::release`]. For tests that must hold a store read mid-way.
pub struct TableLock {
    conn: PgConnection,
    url: DatabaseUrl,
}

impl std::fmt::Debug for TableLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableLock").field("url", &self.url).finish()
    }
}

impl TableLock {
    /// Locks `table` (a Postgres database only).
    pub async fn take(url: &DatabaseUrl, table: &str) -> Self {
        assert_eq!(
            url.dialect(),
            crate::Dialect::Postgres,
            "a Postgres table lock"
        );
        let mut conn = PgConnection::connect(url.expose())
            .await
            .expect("connect to postgres");
        sqlx::raw_sql(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .execute(&mut conn)
        .await
        .expect("lock the table");
        Self {
            conn,
            url: url.clone(),
        }
    }

    /// How many queries on this database are waiting for a lock.
    pub async fn waiters(&self) -> i64 {
        let mut conn = PgConnection::connect(self.url.expose())
            .await
            .expect("connect to postgres");
        let n = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count the waiters");
        let _ = conn.close().await;
        n
    }

    /// Ends the transaction: the waiting queries run.
    pub async fn release(mut self) {
        sqlx::raw_sql("COMMIT")
            .execute(&mut self.conn)
            .await
            .expect("release the lock");
        let _ = self.conn.close().await;
    }
}
