//! One connection of either dialect, for the statements several areas' transactions share (an
//! audit record, a claimed token, the holder locks, a queued notification). Each is a plain
//! async function over [`Conn`]: its SQL and its arguments are in view where it is written, it
//! is awaited where it is called, and it runs on whichever backend the transaction is on.
//!
//! The arguments are [`Arg`]s, bound the same way for both dialects by one generic function,
//! so no statement is written twice.

use chrono::{DateTime, Utc};
use sqlx::database::Database;
use sqlx::encode::Encode;
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, SqliteConnection, Type};
use uuid::Uuid;

use crate::Dialect;

/// A connection (inside a transaction) of either backend.
#[derive(Debug)]
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(conn: &'c mut SqliteConnection) -> Self {
        Conn::Sqlite(conn)
    }
}

impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(conn: &'c mut PgConnection) -> Self {
        Conn::Postgres(conn)
    }
}

/// One statement argument.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Id(Uuid),
    MaybeId(Option<Uuid>),
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Int32(i32),
    Int64(i64),
    Bytes(&'a [u8]),
    Bool(bool),
    Time(DateTime<Utc>),
    Json(&'a serde_json::Value),
}

/// Binds `args` in order.
fn bind<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    args: &[Arg<'q>],
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Uuid: Encode<'q, DB> + Type<DB>,
    Option<Uuid>: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i32: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    Json<&'q serde_json::Value>: Encode<'q, DB> + Type<DB>,
{
    args.iter().fold(query, |q, arg| match *arg {
        Arg::Id(v) => q.bind(v),
        Arg::MaybeId(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
        Arg::MaybeText(v) => q.bind(v),
        Arg::Int32(v) => q.bind(v),
        Arg::Int64(v) => q.bind(v),
        Arg::Bytes(v) => q.bind(v),
        Arg::Bool(v) => q.bind(v),
        Arg::Time(v) => q.bind(v),
        Arg::Json(v) => q.bind(Json(v)),
    })
}

impl Conn<'_> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The same connection, for one more call.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// Runs one statement; says how many rows it changed.
    pub(crate) async fn execute<'q>(
        &mut self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> sqlx::Result<u64> {
        match self {
            Conn::Sqlite(c) => {
                let done = bind(sqlx::query(sql), args).execute(&mut **c).await?;
                Ok(done.rows_affected())
            }
            Conn::Postgres(c) => {
                let done = bind(sqlx::query(sql), args).execute(&mut **c).await?;
                Ok(done.rows_affected())
            }
        }
    }

    /// Runs one query; its rows as `T`.
    pub(crate) async fn fetch_all<'q, T>(
        &mut self,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        match self {
            Conn::Sqlite(c) => {
                let query = sqlx::query(sql);
                let rows = bind(query, args).fetch_all(&mut **c).await?;
                rows.iter().map(T::from_row).collect()
            }
            Conn::Postgres(c) => {
                let query = sqlx::query(sql);
                let rows = bind(query, args).fetch_all(&mut **c).await?;
                rows.iter().map(T::from_row).collect()
            }
        }
    }
}
