//! Teams, users and API keys.

use chrono::{DateTime, Utc};
use lanyard_core::{AuditKind, Email, TeamName, Tier};
use sqlx::Row;
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::{on_pool, AuditEvent, Store, StoreError, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRecord {
    pub id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub is_test_cohort: bool,
    pub created_at: DateTime<Utc>,
}

/// A team to create, with an optional verified primary user.
#[derive(Debug, Clone)]
pub struct NewTeam {
    pub name: TeamName,
    pub tier: Tier,
    pub is_test_cohort: bool,
    pub primary_user: Option<Email>,
    /// Who is creating it, for the audit log.
    pub actor: String,
    /// More audit records for the same transaction (e.g. `e2e.account.created`).
    pub extra_audit: Vec<AuditEvent>,
}

/// An API key to store: only its lookup id and hash, never the plaintext.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub label: String,
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
#[derive(Debug, Clone)]
pub struct ApiKeyPrincipal {
    pub key_id: Uuid,
    pub hash: String,
    pub team: TeamRecord,
}

#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user_id: Uuid,
    pub email: String,
    pub team: TeamRecord,
}

/// Builds a [`TeamRecord`] from a row that selected [`TEAM_COLUMNS`].
macro_rules! team_from_row {
    ($row:expr) => {{
        let tier: String = $row.try_get("team_tier")?;
        Ok::<$crate::TeamRecord, $crate::StoreError>($crate::TeamRecord {
            id: $row.try_get("team_id")?,
            name: $row.try_get("team_name")?,
            tier: lanyard_core::Tier::parse(&tier)
                .ok_or_else(|| $crate::StoreError::Corrupt(format!("unknown tier {tier:?}")))?,
            is_test_cohort: $row.try_get("team_test_cohort")?,
            created_at: $row.try_get("team_created_at")?,
        })
    }};
}
pub(crate) use team_from_row;

pub(crate) const TEAM_COLUMNS: &str = "t.id AS team_id, t.name AS team_name, t.tier AS team_tier, \
                            t.is_test_cohort AS team_test_cohort, t.created_at AS team_created_at";

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
            created_at: now,
        };
        let user_id = new.primary_user.as_ref().map(|_| Uuid::new_v4());
        let api_key_id = api_key.map(|_| Uuid::new_v4());
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO teams (id, name, tier, is_test_cohort, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(team.id)
            .bind(&team.name)
            .bind(team.tier.as_str())
            .bind(team.is_test_cohort)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let created = AuditEvent::new(AuditKind::TeamCreated, &new.actor)
                .subject(team.id)
                .data(serde_json::json!({
                    "name": team.name, "tier": team.tier.as_str(), "is_test_cohort": team.is_test_cohort,
                }));
            insert_audit!(&mut *tx, team.id, &created, now)?;
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
                sqlx::query(
                    "INSERT INTO api_keys (id, team_id, label, lookup, hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(key_id)
                .bind(team.id)
                .bind(&key.label)
                .bind(&key.lookup)
                .bind(&key.hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let event = AuditEvent::new(AuditKind::ApiKeyCreated, &new.actor)
                    .subject(key_id)
                    .data(serde_json::json!({ "label": key.label }));
                insert_audit!(&mut *tx, team.id, &event, now)?;
            }
            for event in &new.extra_audit {
                insert_audit!(&mut *tx, team.id, event, now)?;
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
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(team_id).fetch_optional(pool).await?;
            row.map(|row| team_from_row!(row))
                .transpose()
        })
    }

    /// The live API key with this lookup id, and its team. The caller checks the hash.
    pub async fn api_key_principal(&self, lookup: &str) -> StoreResult<Option<ApiKeyPrincipal>> {
        let sql = format!(
            "SELECT k.id AS key_id, k.hash AS key_hash, {TEAM_COLUMNS} FROM api_keys k \
             JOIN teams t ON t.id = k.team_id WHERE k.lookup = $1 AND k.revoked_at IS NULL"
        );
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(lookup).fetch_optional(pool).await?;
            row.map(|row| {
                Ok(ApiKeyPrincipal {
                    key_id: row.try_get("key_id")?,
                    hash: row.try_get("key_hash")?,
                    team: team_from_row!(row)?,
                })
            })
            .transpose()
        })
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
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(user_id).bind(team_id).fetch_optional(pool).await?;
            row.map(|row| {
                Ok(UserPrincipal {
                    user_id: row.try_get("user_id")?,
                    email: row.try_get("user_email")?,
                    team: team_from_row!(row)?,
                })
            })
            .transpose()
        })
    }
}

impl Store {
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
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM teams WHERE id = $1 AND is_test_cohort = $2")
                .bind(team_id)
                .bind(true)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                if let Some(event) = audit {
                    insert_audit!(&mut *tx, team_id, event, now)?;
                }
            }
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }
}

/// An API key as listed to its team: never the hash or the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Adds an API key to a team, with its `api_key.created` record, atomically.
    pub async fn create_api_key(
        &self,
        team_id: Uuid,
        key: &NewApiKey,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<ApiKeyRecord> {
        let record = ApiKeyRecord {
            id: Uuid::new_v4(),
            label: key.label.clone(),
            created_at: now,
            revoked_at: None,
        };
        let event = AuditEvent::new(AuditKind::ApiKeyCreated, actor)
            .subject(record.id)
            .data(serde_json::json!({ "label": key.label }));
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO api_keys (id, team_id, label, lookup, hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(record.id)
            .bind(team_id)
            .bind(&key.label)
            .bind(&key.lookup)
            .bind(&key.hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, team_id, &event, now)?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        Ok(record)
    }

    pub async fn list_api_keys(&self, team_id: Uuid) -> StoreResult<Vec<ApiKeyRecord>> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, label, created_at, revoked_at FROM api_keys WHERE team_id = $1 \
                 ORDER BY created_at, id",
            )
            .bind(team_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ApiKeyRecord {
                        id: row.try_get("id")?,
                        label: row.try_get("label")?,
                        created_at: row.try_get("created_at")?,
                        revoked_at: row.try_get("revoked_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
    }

    /// Revokes one of the team's live keys. `false` if there is no such live key in this team.
    pub async fn revoke_api_key(
        &self,
        team_id: Uuid,
        key_id: Uuid,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let event = AuditEvent::new(AuditKind::ApiKeyRevoked, actor).subject(key_id);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
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
                insert_audit!(&mut *tx, team_id, &event, now)?;
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }
}

impl Store {
    /// Test-cohort teams created before `before`, oldest first (for the backstop sweep).
    pub async fn stale_test_teams(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Uuid>> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id FROM teams WHERE is_test_cohort = $1 AND created_at < $2 ORDER BY created_at LIMIT $3",
            )
            .bind(true)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| r.try_get("id")).collect::<Result<Vec<Uuid>, _>>().map_err(Into::into)
        })
    }
}
