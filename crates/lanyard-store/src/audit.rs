//! The append-only audit log. Rows have no foreign key to their team, so they survive its deletion.

use chrono::{DateTime, Utc};
use lanyard_core::AuditKind;
use sqlx::Row;
use uuid::Uuid;

use crate::{on_pool, Store, StoreResult};

/// A record to write, always inside the transaction of the change it describes.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: AuditKind,
    /// Who did it: `api_key:<id>`, `user:<id>`, `cli`, `e2e`, `system`.
    pub actor: String,
    /// The object it concerns, such as a key or session id.
    pub subject: Option<String>,
    /// Non-secret details.
    pub data: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, actor: impl Into<String>) -> Self {
        Self {
            kind,
            actor: actor.into(),
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

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub team_id: Option<Uuid>,
    /// The stored kind. A string, so records written by a newer binary still list.
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Inserts one audit row on `$exec` (a transaction).
macro_rules! insert_audit {
    ($exec:expr, $team_id:expr, $event:expr, $now:expr) => {{
        let event: &$crate::AuditEvent = $event;
        sqlx::query(
            "INSERT INTO audit_events (team_id, kind, actor, subject, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($team_id)
        .bind(event.kind.as_str())
        .bind(&event.actor)
        .bind(&event.subject)
        .bind(event.data.to_string())
        .bind($now)
        .execute($exec)
        .await
    }};
}
pub(crate) use insert_audit;

impl Store {
    /// A team's audit records, newest first, strictly older than `before` when given.
    pub async fn list_audit(
        &self,
        team_id: Uuid,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let before = before.unwrap_or(i64::MAX);
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, team_id, kind, actor, subject, data, created_at FROM audit_events \
                 WHERE team_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(team_id)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let data: String = row.try_get("data")?;
                    Ok(AuditRecord {
                        id: row.try_get("id")?,
                        team_id: row.try_get("team_id")?,
                        kind: row.try_get("kind")?,
                        actor: row.try_get("actor")?,
                        subject: row.try_get("subject")?,
                        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
    }
}
