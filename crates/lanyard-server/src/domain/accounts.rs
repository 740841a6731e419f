//! Teams and their API keys.

use lanyard_core::{Actor, BearerSecret, Label, SecretKind};
use lanyard_store::{ApiKeyRecord, NewApiKey, NewTeam, StoreError, TeamRecord};
use secrecy::SecretString;
use uuid::Uuid;

use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the team has no such live API key")]
    KeyNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A created team. `api_key` is the only copy of the plaintext: show it once.
#[derive(Debug)]
pub struct TeamCreated {
    pub team: TeamRecord,
    pub user_id: Option<Uuid>,
    pub api_key: SecretString,
}

/// A fresh key: the secret to show once, and what the store keeps of it.
pub(crate) fn new_api_key(label: Label) -> (BearerSecret, NewApiKey) {
    let secret = BearerSecret::generate(SecretKind::ApiKey);
    let key = NewApiKey {
        label,
        lookup: secret.lookup.clone(),
        hash: secret.hash.clone(),
    };
    (secret, key)
}

/// Creates a team with a fresh API key, in one transaction with its audit records.
pub async fn create_team(svc: &Services, new: &NewTeam) -> Result<TeamCreated, AccountError> {
    let (secret, key) = new_api_key(Label::default_label());
    let created = svc
        .store()
        .create_team(new, Some(&key), svc.clock().now())
        .await?;
    Ok(TeamCreated {
        team: created.team,
        user_id: created.user_id,
        api_key: secret.plaintext,
    })
}

/// Issues another API key for a team. The plaintext is returned once and never stored.
pub async fn issue_api_key(
    svc: &Services,
    team_id: Uuid,
    label: Label,
    actor: &Actor,
) -> Result<(ApiKeyRecord, SecretString), AccountError> {
    let (secret, key) = new_api_key(label);
    let record = svc
        .store()
        .create_api_key(team_id, &key, actor, svc.clock().now())
        .await?;
    Ok((record, secret.plaintext))
}

/// Revokes one of the team's live keys; it stops working at once.
pub async fn revoke_api_key(
    svc: &Services,
    team_id: Uuid,
    key_id: Uuid,
    actor: &Actor,
) -> Result<(), AccountError> {
    let revoked = svc
        .store()
        .revoke_api_key(team_id, key_id, actor, svc.clock().now())
        .await?;
    revoked.then_some(()).ok_or(AccountError::KeyNotFound)
}
