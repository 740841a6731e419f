//! Teams, users and API keys.

use chrono::{DateTime, Utc};
use lanyard_core::{Actor, AuditKind, Email, Label, TeamName, Tier};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::conn::{Arg, Conn};
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, Store, StoreError, StoreResult};

/// A team. Columns are selected with [`TEAM_COLUMNS`], so the record maps the same way alone
/// and inside a join.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamRecord {
    #[sqlx(rename = "team_id")]
    pub id: Uuid,
    #[sqlx(rename = "team_name")]
    pub name: String,
    #[sqlx(rename = "team_tier", try_from = "String")]
    pub tier: Tier,
    #[sqlx(rename = "team_test_cohort")]
    pub is_test_cohort: bool,
    /// The platform's own id for the team (the admin API), unique when set.
    #[sqlx(rename = "team_external_id")]
    pub external_id: Option<String>,
    /// Where notifications go; the primary user when unset.
    #[sqlx(rename = "team_notification_email")]
    pub notification_email: Option<String>,
    #[sqlx(rename = "team_created_at")]
    pub created_at: DateTime<Utc>,
}

pub(crate) const TEAM_COLUMNS: &str = "t.id AS team_id, t.name AS team_name, t.tier AS team_tier, \
     t.is_test_cohort AS team_test_cohort, t.external_id AS team_external_id, \
     t.notification_email AS team_notification_email, t.created_at AS team_created_at";

/// A team to create, with an optional verified primary user.
#[derive(Debug, Clone)]
pub struct NewTeam {
    pub name: TeamName,
    pub tier: Tier,
    pub is_test_cohort: bool,
    pub primary_user: Option<Email>,
    /// The platform's id for the team; creating a second team with it is refused.
    pub external_id: Option<String>,
    pub notification_email: Option<Email>,
    /// Who is creating it, for the audit log.
    pub actor: Actor,
    /// More audit records for the same transaction (e.g. `e2e.account.created`).
    pub extra_audit: Vec<AuditEvent>,
}

/// An API key to store: only its lookup id and hash, never the plaintext.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub label: Label,
    pub lookup: String,
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct CreatedTeam {
    pub team: TeamRecord,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
}

/// What authenticating with an API key needs, in one round trip.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyPrincipal {
    pub key_id: Uuid,
    #[sqlx(rename = "key_hash")]
    pub hash: String,
    #[sqlx(flatten)]
    pub team: TeamRecord,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserPrincipal {
    pub user_id: Uuid,
    #[sqlx(rename = "user_email")]
    pub email: String,
    #[sqlx(flatten)]
    pub team: TeamRecord,
}

/// An API key as listed to its team: never the hash or the secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Inserts one API key row, in its transaction.
async fn insert_api_key<'c>(
    conn: impl Into<Conn<'c>>,
    id: Uuid,
    team_id: Uuid,
    key: &NewApiKey,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let sql = "INSERT INTO api_keys (id, team_id, label, lookup, hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    let args = [
        Arg::Id(id),
        Arg::Id(team_id),
        Arg::Text(key.label.as_str()),
        Arg::Text(&key.lookup),
        Arg::Text(&key.hash),
        Arg::Time(now),
    ];
    conn.into().execute(sql, &args).await.map(drop)
}

fn key_created(key_id: Uuid, key: &NewApiKey, actor: &Actor) -> AuditEvent {
    AuditEvent::new(AuditKind::ApiKeyCreated, actor.clone())
        .subject(key_id)
        .data(serde_json::json!({ "label": key.label.as_str() }))
}

impl Store {
    /// Creates a team, its primary user and first API key, and their audit records, atomically.
    pub async fn create_team(
        &self,
        new: &NewTeam,
        api_key: Option<&NewApiKey>,
        now: DateTime<Utc>,
    ) -> StoreResult<CreatedTeam> {
        let team = TeamRecord {
            id: Uuid::new_v4(),
            name: new.name.as_str().to_string(),
            tier: new.tier,
            is_test_cohort: new.is_test_cohort,
            external_id: new.external_id.clone(),
            notification_email: new
                .notification_email
                .as_ref()
                .map(|e| e.as_str().to_string()),
            created_at: now,
        };
        let user_id = new.primary_user.as_ref().map(|_| Uuid::new_v4());
        let api_key_id = api_key.map(|_| Uuid::new_v4());
        let created = AuditEvent::new(AuditKind::TeamCreated, new.actor.clone())
            .subject(team.id)
            .data(serde_json::json!({
                "name": team.name, "tier": team.tier, "is_test_cohort": team.is_test_cohort,
                "external_id": team.external_id,
            }));
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO teams (id, name, tier, is_test_cohort, external_id, notification_email, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(team.id)
            .bind(&team.name)
            .bind(team.tier.as_str())
            .bind(team.is_test_cohort)
            .bind(&team.external_id)
            .bind(&team.notification_email)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_audit(&mut *tx, team.id, &created, now).await?;
            if let (Some(email), Some(user_id)) = (&new.primary_user, user_id) {
                sqlx::query(
                    "INSERT INTO users (id, team_id, email, email_verified, is_primary, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user_id)
                .bind(team.id)
                .bind(email.as_str())
                .bind(true)
                .bind(true)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let (Some(key), Some(key_id)) = (api_key, api_key_id) {
                insert_api_key(&mut *tx, key_id, team.id, key, now).await?;
                insert_audit(&mut *tx, team.id, &key_created(key_id, key, &new.actor), now).await?;
            }
            for event in &new.extra_audit {
                insert_audit(&mut *tx, team.id, event, now).await?;
            }
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        Ok(CreatedTeam {
            team,
            user_id,
            api_key_id,
        })
    }

    pub async fn get_team(&self, team_id: Uuid) -> StoreResult<Option<TeamRecord>> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams t WHERE t.id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(team_id).fetch_optional(pool).await?
        }))
    }

    /// The live API key with this lookup id, and its team. The caller checks the hash.
    pub async fn api_key_principal(&self, lookup: &str) -> StoreResult<Option<ApiKeyPrincipal>> {
        let sql = format!(
            "SELECT k.id AS key_id, k.hash AS key_hash, {TEAM_COLUMNS} FROM api_keys k \
             JOIN teams t ON t.id = k.team_id WHERE k.lookup = $1 AND k.revoked_at IS NULL"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(lookup).fetch_optional(pool).await?
        }))
    }

    /// The user with this id in this team, if both still exist.
    pub async fn user_principal(
        &self,
        user_id: Uuid,
        team_id: Uuid,
    ) -> StoreResult<Option<UserPrincipal>> {
        let sql = format!(
            "SELECT u.id AS user_id, u.email AS user_email, {TEAM_COLUMNS} FROM users u \
             JOIN teams t ON t.id = u.team_id WHERE u.id = $1 AND u.team_id = $2"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(user_id).bind(team_id).fetch_optional(pool).await?
        }))
    }

    /// Deletes a test-cohort team with its users, keys, connections and sessions (by cascade),
    /// writing `audit` in the same transaction. Audit records about the team are kept. A real
    /// team is never deleted, whatever races: the condition is in the statement itself.
    /// Returns whether a team was deleted.
    pub async fn delete_test_team(
        &self,
        team_id: Uuid,
        audit: Option<&AuditEvent>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM teams WHERE id = $1 AND is_test_cohort = $2")
                .bind(team_id)
                .bind(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                if let Some(event) = audit {
                    insert_audit(&mut *tx, team_id, event, now).await?;
                }
            }
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }

    /// Test-cohort teams created before `before`, oldest first (for the backstop sweep).
    pub async fn stale_test_teams(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Uuid>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT id FROM teams WHERE is_test_cohort = $1 AND created_at < $2 \
                 ORDER BY created_at LIMIT $3",
            )
            .bind(true)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }
}

impl Store {
    /// Adds an API key to a team, with its `api_key.created` record, atomically.
    pub async fn create_api_key(
        &self,
        team_id: Uuid,
        key: &NewApiKey,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<ApiKeyRecord> {
        let record = ApiKeyRecord {
            id: Uuid::new_v4(),
            label: key.label.as_str().to_string(),
            created_at: now,
            revoked_at: None,
        };
        let event = key_created(record.id, key, actor);
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            insert_api_key(&mut *tx, record.id, team_id, key, now).await?;
            insert_audit(&mut *tx, team_id, &event, now).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        Ok(record)
    }

    pub async fn list_api_keys(&self, team_id: Uuid) -> StoreResult<Vec<ApiKeyRecord>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, label, created_at, revoked_at FROM api_keys WHERE team_id = $1 \
                 ORDER BY created_at, id",
            )
            .bind(team_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Revokes one of the team's live keys. `false` if there is no such live key in this team.
    pub async fn revoke_api_key(
        &self,
        team_id: Uuid,
        key_id: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let event = AuditEvent::new(AuditKind::ApiKeyRevoked, actor.clone()).subject(key_id);
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND team_id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(key_id)
            .bind(team_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                insert_audit(&mut *tx, team_id, &event, now).await?;
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }
}
