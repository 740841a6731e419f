//! What the nudging and scoring workers look for. Each scan leaves test-cohort teams out in its
//! own SQL, and has a twin that counts the test teams it left out.

use chrono::{DateTime, Utc};
use lanyard_core::Host;
use lanyard_core::{Actor, AuditKind, Tier};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::notifications::{insert_notification, NewNotification};
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, Store, StoreResult};

/// A team and how many live sessions it has.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveCount {
    pub team_id: Uuid,
    #[sqlx(try_from = "String")]
    pub tier: Tier,
    pub active: i64,
}

/// A personal access token that expires soon.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiringPat {
    pub connection_id: Uuid,
    pub team_id: Uuid,
    #[sqlx(try_from = "String")]
    pub host: Host,
    pub owner: String,
    pub pat_expires_at: DateTime<Utc>,
}

impl Store {
    /// Live-session counts of teams with any, real teams (`test = false`) or test ones.
    pub async fn active_session_counts(
        &self,
        now: DateTime<Utc>,
        test: bool,
    ) -> StoreResult<Vec<ActiveCount>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT t.id AS team_id, t.tier, COUNT(*) AS active FROM sessions s \
                 JOIN teams t ON t.id = s.team_id AND t.is_test_cohort = $2 \
                 WHERE s.stopped_at IS NULL AND s.expires_at > $1 GROUP BY t.id, t.tier",
            )
            .bind(now)
            .bind(test)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Teams (real or test) created before `quiet_since`, not yet flagged, with no session live
    /// since then: at most `limit`.
    pub async fn quiet_teams(
        &self,
        quiet_since: DateTime<Utc>,
        test: bool,
        limit: u32,
    ) -> StoreResult<Vec<Uuid>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT t.id FROM teams t WHERE t.is_test_cohort = $2 \
                 AND t.churn_flagged_at IS NULL AND t.created_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.team_id = t.id \
                     AND (s.created_at > $1 OR COALESCE(s.stopped_at, s.expires_at) > $1)) \
                 ORDER BY t.created_at LIMIT $3",
            )
            .bind(quiet_since)
            .bind(test)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Flags a real team as a churn risk once, with `team.churn_risk` and its notification, in
    /// one transaction. Returns whether this call flagged it.
    pub async fn flag_churn_risk(
        &self,
        note: &NewNotification,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let flagged = sqlx::query(
                "UPDATE teams SET churn_flagged_at = $2 WHERE id = $1 \
                 AND churn_flagged_at IS NULL AND is_test_cohort = $3",
            )
            .bind(note.team_id)
            .bind(now)
            .bind(false)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if flagged {
                let event = AuditEvent::new(AuditKind::TeamChurnRisk, actor.clone())
                    .subject(note.team_id);
                insert_audit(&mut *tx, note.team_id, &event, now).await?;
                insert_notification(&mut *tx, note, actor, now).await?;
            }
            tx.commit().await?;
            Ok(flagged)
        })
    }

    /// Personal access tokens of real or test teams that expire in `(now, before]`.
    pub async fn expiring_pats(
        &self,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        test: bool,
    ) -> StoreResult<Vec<ExpiringPat>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT c.id AS connection_id, c.team_id, c.host, c.owner, c.pat_expires_at \
                 FROM github_connections c JOIN teams t ON t.id = c.team_id \
                 AND t.is_test_cohort = $3 \
                 WHERE c.kind = 'pat' AND c.pat_expires_at > $1 AND c.pat_expires_at <= $2 \
                 ORDER BY c.pat_expires_at",
            )
            .bind(now)
            .bind(before)
            .bind(test)
            .fetch_all(pool)
            .await?
        }))
    }
}
