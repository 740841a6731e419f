//! The notification outbox.
//!
//! A notification is queued once per `dedupe_key` (a unique constraint), and never for a
//! test-cohort team (the insert selects from the team row). Delivery claims due rows with a lease
//! (`FOR UPDATE SKIP LOCKED` on Postgres, so two replicas never take the same row), then marks
//! each sent, retried or given up.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind, NotificationKind, NotificationStatus};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::conn::{Arg, Conn};
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, Dialect, Store, StoreResult};

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub team_id: Uuid,
    pub kind: NotificationKind,
    /// At most one notification per key, ever: "quota_nudge:<team>:<day>", say.
    pub dedupe_key: String,
    pub subject: String,
    pub body: String,
}

/// A stored notification, as the team lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationRecord {
    pub id: Uuid,
    pub team_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: NotificationKind,
    #[sqlx(try_from = "String")]
    pub status: NotificationStatus,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A notification claimed for delivery, with where it goes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outgoing {
    pub id: Uuid,
    pub team_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: NotificationKind,
    pub subject: String,
    pub body: String,
    pub attempts: i32,
    /// The team's notification address, else its primary user's; `None` if it has neither.
    pub recipient: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Delivered<'a> {
    Sent,
    /// Try again at `at`.
    Retry {
        error: &'a str,
        at: DateTime<Utc>,
    },
    /// Given up: `status` is `failed` or `undeliverable`.
    GaveUp {
        status: NotificationStatus,
        error: &'a str,
    },
}

/// In its transaction: queues `new` unless its key was used or its team is a test-cohort team
/// or gone, with its `notification.queued` record. Returns the new id, if queued.
pub(crate) async fn insert_notification<'c>(
    conn: impl Into<Conn<'c>>,
    new: &NewNotification,
    actor: &Actor,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    let mut conn = conn.into();
    let id = Uuid::new_v4();
    let sql = "INSERT INTO notifications (id, team_id, kind, dedupe_key, subject, body, \
         next_attempt_at, created_at) \
         SELECT $1, t.id, $3, $4, $5, $6, $7, $7 FROM teams t \
         WHERE t.id = $2 AND t.is_test_cohort = $8 \
         ON CONFLICT (dedupe_key) DO NOTHING";
    let args = [
        Arg::Id(id),
        Arg::Id(new.team_id),
        Arg::Text(new.kind.as_str()),
        Arg::Text(&new.dedupe_key),
        Arg::Text(&new.subject),
        Arg::Text(&new.body),
        Arg::Time(now),
        Arg::Bool(false),
    ];
    if conn.execute(sql, &args).await? != 1 {
        return Ok(None);
    }
    let event = AuditEvent::new(AuditKind::NotificationQueued, actor.clone())
        .subject(id)
        .data(serde_json::json!({"kind": new.kind.as_str()}));
    insert_audit(conn, new.team_id, &event, now).await?;
    Ok(Some(id))
}

const NOTIFICATION_COLUMNS: &str =
    "n.id, n.team_id, n.kind, n.status, n.attempts, n.created_at, n.sent_at";

impl Store {
    /// Queues `new` unless its key was used before or its team is a test-cohort team (or gone).
    /// Writes `notification.queued` with it. Returns the new id, if one was queued.
    pub async fn queue_notification(
        &self,
        new: &NewNotification,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id = insert_notification(&mut *tx, new, actor, now).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Claims up to `limit` due notifications of real teams until `lease_until`, oldest first.
    pub async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Outgoing>> {
        let lock = match self.dialect() {
            Dialect::Postgres => "FOR UPDATE OF n SKIP LOCKED",
            // One writer at a time: the UPDATE below runs with SQLite's write lock held.
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE notifications SET lease_until = $2, attempts = attempts + 1 WHERE id IN \
             (SELECT n.id FROM notifications n JOIN teams t ON t.id = n.team_id \
              AND t.is_test_cohort = $4 \
              WHERE n.status = 'queued' AND n.next_attempt_at <= $1 \
              AND (n.lease_until IS NULL OR n.lease_until <= $1) \
              ORDER BY n.next_attempt_at LIMIT $3 {lock}) \
             RETURNING id, team_id, kind, subject, body, attempts, \
             (SELECT COALESCE(t.notification_email, \
                 (SELECT u.email FROM users u WHERE u.team_id = t.id AND u.is_primary LIMIT 1)) \
              FROM teams t WHERE t.id = notifications.team_id) AS recipient"
        );
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let rows = sqlx::query_as(&sql)
                .bind(now)
                .bind(lease_until)
                .bind(i64::from(limit))
                .bind(false)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        }))
    }

    /// Whether notification `id` was already sent: checked before each send, so a row claimed
    /// again after a lost mark is not sent twice by this path.
    pub async fn notification_sent(&self, id: Uuid) -> StoreResult<bool> {
        let status: Option<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT status FROM notifications WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(status.as_deref() == Some(NotificationStatus::Sent.as_str()))
    }

    /// Records what became of a claimed notification; `notification.sent` goes with a send.
    pub async fn mark_notification(
        &self,
        n: &Outgoing,
        outcome: &Delivered<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            match outcome {
                Delivered::Sent => {
                    let updated = sqlx::query(
                        "UPDATE notifications SET status = 'sent', sent_at = $2, lease_until = NULL, \
                         last_error = NULL WHERE id = $1 AND status = 'queued'",
                    )
                    .bind(n.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if updated == 1 {
                        let event = AuditEvent::new(AuditKind::NotificationSent, actor.clone())
                            .subject(n.id)
                            .data(serde_json::json!({"kind": n.kind.as_str()}));
                        insert_audit(&mut *tx, n.team_id, &event, now).await?;
                    }
                }
                Delivered::Retry { error, at } => {
                    sqlx::query(
                        "UPDATE notifications SET next_attempt_at = $2, lease_until = NULL, \
                         last_error = $3 WHERE id = $1 AND status = 'queued'",
                    )
                    .bind(n.id)
                    .bind(*at)
                    .bind(*error)
                    .execute(&mut *tx)
                    .await?;
                }
                Delivered::GaveUp { status, error } => {
                    sqlx::query(
                        "UPDATE notifications SET status = $2, lease_until = NULL, last_error = $3 \
                         WHERE id = $1 AND status = 'queued'",
                    )
                    .bind(n.id)
                    .bind(status.as_str())
                    .bind(*error)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// How many queued notifications belong to test-cohort teams: the rows delivery skips.
    pub async fn queued_test_notifications(&self) -> StoreResult<i64> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM notifications n JOIN teams t ON t.id = n.team_id \
                 AND t.is_test_cohort = $1 WHERE n.status = 'queued'",
            )
            .bind(true)
            .fetch_one(pool)
            .await?
        }))
    }

    /// The team's notifications, newest first.
    pub async fn list_notifications(
        &self,
        team_id: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRecord>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.team_id = $1 \
             ORDER BY n.created_at DESC, n.id LIMIT $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(team_id).bind(i64::from(limit)).fetch_all(pool).await?
        }))
    }
}
