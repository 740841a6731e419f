//! What keeps connections true: the installation flow's single-use states, and webhook
//! deliveries applied once each, every change in the transaction that records the delivery.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use lanyard_core::github::InstallationId;
use lanyard_core::Host;
use lanyard_core::{Actor, AuditKind};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::connections::{ConnectionStatus, CONNECTION_COLUMNS};
use crate::tokens::TOKEN_COLUMNS;
use crate::tokens::{claim_token, lock_holders};
use crate::BeginWrite;
use crate::{on_pool, AuditEvent, ConnectionRecord, Store, StoreResult, TokenRecord};

/// A started installation flow: which team, on which host, and where to send the user after.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstallState {
    pub team_id: Uuid,
    #[sqlx(try_from = "String")]
    pub host: Host,
    pub return_to: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A webhook delivery: its host and GitHub's delivery id.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub host: Host,
    pub id: String,
    pub event: String,
    /// SHA-256 of the raw body, hex: the same signed body twice is one delivery.
    pub body_sha256: String,
}

/// What a webhook asks to change.
#[derive(Debug, Clone)]
pub enum WebhookChange {
    /// The App was uninstalled: the installation's connections are removed, tokens claimed.
    InstallationDeleted { installation_id: InstallationId },
    /// Suspended (`true`) or resumed (`false`).
    InstallationSuspended {
        installation_id: InstallationId,
        suspended: bool,
    },
    /// Repositories left the installation: scopes holding any of them stop being served.
    RepositoriesRemoved {
        installation_id: InstallationId,
        repositories: Vec<String>,
    },
    /// Recorded as seen, nothing else.
    Ignored,
}

/// What applying a delivery changed.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Teams whose connections or scopes changed (their cached sessions must be forgotten).
    pub teams: BTreeSet<Uuid>,
    /// Tokens claimed for revocation (already marked revoked here).
    pub revoke: Vec<TokenRecord>,
    /// Connections or scopes changed.
    pub changed: usize,
}

#[derive(sqlx::FromRow)]
struct ScopeRow {
    session_id: Uuid,
    team_id: Uuid,
    owner: String,
    cache_key: String,
    #[sqlx(json)]
    repositories: Vec<String>,
}

impl Store {
    /// Records a started installation flow. Expired states are pruned on the way.
    pub async fn create_install_state(
        &self,
        nonce: &str,
        state: &InstallState,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM install_states WHERE expires_at < $1")
                .bind(now - chrono::Duration::days(1))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO install_states (nonce, team_id, host, return_to, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(nonce)
            .bind(state.team_id)
            .bind(state.host.as_str())
            .bind(&state.return_to)
            .bind(now)
            .bind(state.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Uses a state once: `None` if it is unknown, expired or already used.
    pub async fn consume_install_state(
        &self,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<InstallState>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "UPDATE install_states SET used_at = $2 \
                 WHERE nonce = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING team_id, host, return_to, expires_at",
            )
            .bind(nonce)
            .bind(now)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Applies a delivery once: `None` when it was seen before (nothing changes). The delivery
    /// and every change it makes are one transaction.
    pub async fn apply_webhook(
        &self,
        delivery: &Delivery,
        change: &WebhookChange,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Applied>> {
        let connections_sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM github_connections c \
             WHERE c.host = $1 AND c.installation_id = $2"
        );
        let tokens_sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens t WHERE t.host = $1 \
             AND t.installation_id = $2 AND t.revoked_at IS NULL AND t.expires_at > $3"
        );
        let scopes_sql =
            "SELECT sc.session_id, s.team_id, sc.owner, sc.cache_key, sc.repositories \
             FROM session_scopes sc JOIN sessions s ON s.id = sc.session_id \
             WHERE s.team_id = $1 AND sc.host = $2 AND sc.owner = $3 AND sc.revoked_at IS NULL";
        let key_tokens_sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM github_tokens t WHERE t.cache_key = $1 \
             AND t.revoked_at IS NULL AND t.expires_at > $2"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
                .bind(now - chrono::Duration::days(7))
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO webhook_deliveries (host, delivery_id, event, body_sha256, received_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(delivery.host.as_str())
            .bind(&delivery.id)
            .bind(&delivery.event)
            .bind(&delivery.body_sha256)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(None);
            }
            let mut applied = Applied::default();
            let installation = match change {
                WebhookChange::InstallationDeleted { installation_id }
                | WebhookChange::InstallationSuspended { installation_id, .. }
                | WebhookChange::RepositoriesRemoved { installation_id, .. } => Some(*installation_id),
                WebhookChange::Ignored => None,
            };
            let connections: Vec<ConnectionRecord> = match installation {
                Some(id) => sqlx::query_as(&connections_sql)
                    .bind(delivery.host.as_str())
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?,
                None => Vec::new(),
            };
            match change {
                WebhookChange::Ignored => {}
                WebhookChange::InstallationDeleted { installation_id } => {
                    for c in &connections {
                        // The holder locks first, then the connection's row: the order a user's
                        // disconnect (`delete_connection`) and a mint's insert take them in, so
                        // an uninstall racing either cannot deadlock with it.
                        let keys: Vec<String> = sqlx::query_scalar(
                            "SELECT DISTINCT cache_key FROM session_scopes WHERE host = $1 \
                             AND owner = $2 AND session_id IN (SELECT id FROM sessions WHERE team_id = $3)",
                        )
                        .bind(c.host.as_str())
                        .bind(c.owner.as_str())
                        .bind(c.team_id)
                        .fetch_all(&mut *tx)
                        .await?;
                        lock_holders(&mut *tx, keys.iter().map(String::as_str)).await?;
                        sqlx::query("DELETE FROM github_connections WHERE id = $1")
                            .bind(c.id)
                            .execute(&mut *tx)
                            .await?;
                        // Live sessions that needed it answer `connection_revoked` from now on,
                        // even if the owner is connected again.
                        sqlx::query(
                            "UPDATE session_scopes SET revoked_at = $1 WHERE revoked_at IS NULL \
                             AND host = $2 AND owner = $3 \
                             AND session_id IN (SELECT id FROM sessions WHERE team_id = $4)",
                        )
                        .bind(now)
                        .bind(c.host.as_str())
                        .bind(c.owner.as_str())
                        .bind(c.team_id)
                        .execute(&mut *tx)
                        .await?;
                        let event = AuditEvent::new(AuditKind::GithubConnectionDeleted, Actor::github())
                            .subject(c.id)
                            .data(serde_json::json!({
                                "host": c.host, "owner": c.owner, "installation_id": installation_id,
                                "reason": "the App was uninstalled", "delivery": delivery.id,
                            }));
                        insert_audit(&mut *tx, c.team_id, &event, now).await?;
                        applied.teams.insert(c.team_id);
                        applied.changed += 1;
                    }
                    let tokens: Vec<TokenRecord> = sqlx::query_as(&tokens_sql)
                        .bind(delivery.host.as_str())
                        .bind(installation_id)
                        .bind(now)
                        .fetch_all(&mut *tx)
                        .await?;
                    for token in &tokens {
                        let why = serde_json::json!({"reason": "the App was uninstalled"});
                        claim_token(&mut *tx, token, Actor::github(), why, now).await?;
                    }
                    applied.revoke = tokens;
                }
                WebhookChange::InstallationSuspended { suspended, .. } => {
                    let (to, kind) = if *suspended {
                        (ConnectionStatus::Suspended, AuditKind::GithubConnectionSuspended)
                    } else {
                        (ConnectionStatus::Active, AuditKind::GithubConnectionResumed)
                    };
                    for c in connections.iter().filter(|c| c.status != to) {
                        sqlx::query("UPDATE github_connections SET status = $1 WHERE id = $2")
                            .bind(to.as_str())
                            .bind(c.id)
                            .execute(&mut *tx)
                            .await?;
                        let event = AuditEvent::new(kind, Actor::github())
                            .subject(c.id)
                            .data(serde_json::json!({
                                "host": c.host, "owner": c.owner, "delivery": delivery.id,
                            }));
                        insert_audit(&mut *tx, c.team_id, &event, now).await?;
                        applied.teams.insert(c.team_id);
                        applied.changed += 1;
                    }
                }
                WebhookChange::RepositoriesRemoved { repositories, .. } => {
                    // Which scopes lose a repository, then their holder locks, then the
                    // changes: locks before rows, as everywhere else.
                    let mut removed: Vec<(Host, ScopeRow)> = Vec::new();
                    for c in &connections {
                        let scopes: Vec<ScopeRow> = sqlx::query_as(scopes_sql)
                            .bind(c.team_id)
                            .bind(c.host.as_str())
                            .bind(c.owner.as_str())
                            .fetch_all(&mut *tx)
                            .await?;
                        removed.extend(
                            scopes
                                .into_iter()
                                .filter(|s| {
                                    s.repositories.iter().any(|r| {
                                        repositories.iter().any(|x| x.eq_ignore_ascii_case(r))
                                    })
                                })
                                .map(|s| (c.host.clone(), s)),
                        );
                    }
                    let keys: BTreeSet<String> =
                        removed.iter().map(|(_, s)| s.cache_key.clone()).collect();
                    lock_holders(&mut *tx, keys.iter().map(String::as_str)).await?;
                    for (host, scope) in &removed {
                        sqlx::query(
                            "UPDATE session_scopes SET revoked_at = $1 \
                             WHERE session_id = $2 AND host = $3 AND owner = $4",
                        )
                        .bind(now)
                        .bind(scope.session_id)
                        .bind(host.as_str())
                        .bind(&scope.owner)
                        .execute(&mut *tx)
                        .await?;
                        applied.teams.insert(scope.team_id);
                        applied.changed += 1;
                    }
                    for key in keys {
                        let tokens: Vec<TokenRecord> = sqlx::query_as(&key_tokens_sql)
                            .bind(&key)
                            .bind(now)
                            .fetch_all(&mut *tx)
                            .await?;
                        for token in &tokens {
                            let why =
                                serde_json::json!({"reason": "a repository left the installation"});
                            claim_token(&mut *tx, token, Actor::github(), why, now).await?;
                        }
                        applied.revoke.extend(tokens);
                    }
                }
            }
            tx.commit().await?;
            Ok(Some(applied))
        })
    }
}
