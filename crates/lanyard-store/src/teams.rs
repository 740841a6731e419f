//! Teams as a platform manages them through the admin API: created once per external id,
//! found by it, changed, and deleted with their audit kept.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind, Email, TeamName, Tier};
use uuid::Uuid;

use crate::accounts::TEAM_COLUMNS;
use crate::audit::insert_audit;
use crate::connections::is_unique_violation;
use crate::tokens::{claim_token, TOKEN_COLUMNS};
use crate::BeginWrite;
use crate::TokenRecord;
use crate::{on_pool, AuditEvent, CreatedTeam, NewApiKey, NewTeam, Store, StoreResult, TeamRecord};

/// The result of creating a team with an external id.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(CreatedTeam),
    /// A team with this external id already exists; nothing was created.
    Existing(TeamRecord),
}

/// What deleting a team did: the sessions it ended, and the tokens to revoke at GitHub.
#[derive(Debug)]
pub struct TeamDeletion {
    pub sessions_stopped: usize,
    pub revoke: Vec<TokenRecord>,
}

/// Changes to a team; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TeamUpdate {
    pub name: Option<TeamName>,
    pub tier: Option<Tier>,
    /// `Some(None)` clears it.
    pub notification_email: Option<Option<Email>>,
}

impl Store {
    /// Creates a team unless one with the same external id exists, in which case that one is
    /// returned and nothing is written. Concurrent calls with one id create one team.
    pub async fn create_team_once(
        &self,
        new: &NewTeam,
        api_key: Option<&NewApiKey>,
        now: DateTime<Utc>,
    ) -> StoreResult<CreateOutcome> {
        if let Some(existing) = self.team_by_external_id(new.external_id.as_deref()).await? {
            return Ok(CreateOutcome::Existing(existing));
        }
        match self.create_team(new, api_key, now).await {
            Ok(created) => Ok(CreateOutcome::Created(created)),
            Err(crate::StoreError::Database(e)) if is_unique_violation(&e) => {
                match self.team_by_external_id(new.external_id.as_deref()).await? {
                    Some(existing) => Ok(CreateOutcome::Existing(existing)),
                    None => Err(crate::StoreError::Database(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn team_by_external_id(
        &self,
        external_id: Option<&str>,
    ) -> StoreResult<Option<TeamRecord>> {
        let Some(external_id) = external_id else {
            return Ok(None);
        };
        Ok(self.teams_by_external_id(Some(external_id), 1).await?.pop())
    }

    /// Teams with this external id (at most one), or the newest `limit` teams without one.
    pub async fn teams_by_external_id(
        &self,
        external_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TeamRecord>> {
        let by_id = format!("SELECT {TEAM_COLUMNS} FROM teams t WHERE t.external_id = $1");
        let newest =
            format!("SELECT {TEAM_COLUMNS} FROM teams t ORDER BY t.created_at DESC, t.id LIMIT $1");
        Ok(on_pool!(self, pool => {
            match external_id {
                Some(id) => sqlx::query_as(&by_id).bind(id).fetch_all(pool).await?,
                None => sqlx::query_as(&newest).bind(i64::from(limit)).fetch_all(pool).await?,
            }
        }))
    }

    /// Applies the changes with a `team.updated` record listing them. `None` if no such team.
    pub async fn update_team(
        &self,
        team_id: Uuid,
        update: &TeamUpdate,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TeamRecord>> {
        let select = format!("SELECT {TEAM_COLUMNS} FROM teams t WHERE t.id = $1");
        let email = update
            .notification_email
            .as_ref()
            .map(|e| e.as_ref().map(|e| e.as_str().to_string()));
        let event = AuditEvent::new(AuditKind::TeamUpdated, actor.clone())
            .subject(team_id)
            .data(serde_json::json!({
                "name": update.name.as_ref().map(TeamName::as_str),
                "tier": update.tier,
                "notification_email_changed": update.notification_email.is_some(),
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE teams SET name = COALESCE($2, name), tier = COALESCE($3, tier), \
                 notification_email = CASE WHEN $4 THEN $5 ELSE notification_email END WHERE id = $1",
            )
            .bind(team_id)
            .bind(update.name.as_ref().map(TeamName::as_str))
            .bind(update.tier.map(Tier::as_str))
            .bind(email.is_some())
            .bind(email.flatten())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Ok(None);
            }
            insert_audit(&mut *tx, team_id, &event, now).await?;
            let team = sqlx::query_as(&select).bind(team_id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(team))
        })
    }

    /// Deletes a team in one transaction: its live sessions end (each audited
    /// `session.stopped`), every token it still holds is claimed for revocation, its keys,
    /// connections and sessions go with it, and `audit` (its `data` gains `sessions_stopped`)
    /// is written last. The audit log keeps every record. `None` if there is no such team.
    ///
    /// Nothing the team could do meanwhile escapes: its keys and sessions stop working at the
    /// commit, and a token its team could still mint after it cannot be stored.
    pub async fn delete_team(
        &self,
        team_id: Uuid,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TeamDeletion>> {
        let tokens = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens t \
             WHERE t.team_id = $1 AND t.revoked_at IS NULL AND t.expires_at > $2"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM teams WHERE id = $1")
                .bind(team_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
            let live: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE sessions SET stopped_at = $2 \
                 WHERE team_id = $1 AND stopped_at IS NULL AND expires_at > $2 RETURNING id",
            )
            .bind(team_id)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for session in &live {
                let event = AuditEvent::new(AuditKind::SessionStopped, audit.actor.clone())
                    .subject(*session)
                    .data(serde_json::json!({"reason": "team deleted"}));
                insert_audit(&mut *tx, team_id, &event, now).await?;
            }
            let revoke: Vec<TokenRecord> = sqlx::query_as(&tokens)
                .bind(team_id)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            for token in &revoke {
                claim_token(
                        &mut *tx,
                        token,
                    audit.actor.clone(),
                    serde_json::json!({"reason": "team deleted"}),
                    now
                ).await?;
            }
            sqlx::query("DELETE FROM teams WHERE id = $1")
                .bind(team_id)
                .execute(&mut *tx)
                .await?;
            let mut event = audit.clone();
            event.data["sessions_stopped"] = live.len().into();
            insert_audit(&mut *tx, team_id, &event, now).await?;
            tx.commit().await?;
            Ok(Some(TeamDeletion {
                sessions_stopped: live.len(),
                revoke,
            }))
        })
    }
}
