//! Creating teams and their first API key.

use lanyard_core::{BearerSecret, Clock, SecretKind};
use lanyard_store::{ApiKeyRecord, NewApiKey, NewTeam, Store, StoreError, TeamRecord};
use secrecy::SecretString;
use uuid::Uuid;

/// The result. `api_key` is the only copy of the plaintext: show it once.
#[derive(Debug)]
pub struct TeamCreated {
    pub team: TeamRecord,
    pub user_id: Option<Uuid>,
    pub api_key: SecretString,
}

/// Creates a team with a fresh API key, in one transaction with its audit records.
pub async fn create_team(
    store: &Store,
    clock: &dyn Clock,
    new: &NewTeam,
) -> Result<TeamCreated, StoreError> {
    let (secret, key) = new_api_key("default");
    let created = store.create_team(new, Some(&key), clock.now()).await?;
    Ok(TeamCreated {
        team: created.team,
        user_id: created.user_id,
        api_key: secret.plaintext,
    })
}

/// A fresh key: the secret to show once, and what the store keeps of it.
fn new_api_key(label: &str) -> (BearerSecret, NewApiKey) {
    let secret = BearerSecret::generate(SecretKind::ApiKey);
    let key = NewApiKey {
        label: label.to_string(),
        lookup: secret.lookup.clone(),
        hash: secret.hash.clone(),
    };
    (secret, key)
}

/// Issues another API key for a team. The plaintext is returned once and never stored.
pub async fn issue_api_key(
    store: &Store,
    clock: &dyn Clock,
    team_id: Uuid,
    label: &str,
    actor: &str,
) -> Result<(ApiKeyRecord, SecretString), StoreError> {
    let (secret, key) = new_api_key(label);
    let record = store
        .create_api_key(team_id, &key, actor, clock.now())
        .await?;
    Ok((record, secret.plaintext))
}
