//! The append-only audit log. Rows have no foreign key to their team, so they survive its deletion.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind};
use uuid::Uuid;

use crate::conn::{Arg, Conn};
use crate::{on_pool, Store, StoreResult};

/// A record to write, always inside the transaction of the change it describes.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub actor: Actor,
    /// The object it concerns, such as a key or session id.
    pub subject: Option<String>,
    /// Non-secret details.
    pub data: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, actor: Actor) -> Self {
        Self {
            kind,
            actor,
            subject: None,
            data: serde_json::json!({}),
        }
    }

    pub fn subject(mut self, subject: impl ToString) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// A stored record. `kind` and `actor` stay strings, so records written by another version
/// of Lanyard still list.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub team_id: Option<Uuid>,
    pub kind: String,
    pub actor: String,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    #[sqlx(json)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Inserts one audit row, in the transaction of the change it describes.
pub(crate) async fn insert_audit<'c>(
    conn: impl Into<Conn<'c>>,
    team_id: impl Into<Option<Uuid>>,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let sql =
        "INSERT INTO audit_events (team_id, kind, actor, actor_id, subject, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let args = [
        Arg::MaybeId(team_id.into()),
        Arg::Text(event.kind.as_str()),
        Arg::Text(event.actor.kind.as_str()),
        Arg::MaybeText(event.actor.id.as_deref()),
        Arg::MaybeText(event.subject.as_deref()),
        Arg::Json(&event.data),
        Arg::Time(now),
    ];
    conn.into().execute(sql, &args).await.map(drop)
}

impl Store {
    /// A team's audit records, newest first, strictly older than `before` when given.
    pub async fn list_audit(
        &self,
        team_id: Uuid,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let before = before.unwrap_or(i64::MAX);
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, team_id, kind, actor, actor_id, subject, data, created_at \
                 FROM audit_events WHERE team_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(team_id)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }
}
