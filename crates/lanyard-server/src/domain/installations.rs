//! The installation flow: how a team proves it owns the GitHub App installation it binds.
//!
//! The team starts it and gets GitHub's install URL carrying a signed, single-use state. The
//! user installs (or picks) the App there and authorises it; GitHub then sends the browser to
//! the setup URL with the installation id, an OAuth code and the state. The code becomes a user
//! token, and the installation is bound only if that user can see it
//! (`GET /user/installations`), with the owner GitHub reports, never one the caller typed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use lanyard_core::github::{echo, Owner};
use lanyard_core::Actor;
use lanyard_core::Host;
use lanyard_github::{AccountKind, GithubError};
use lanyard_store::{
    ConnectionKind, ConnectionRecord, ConnectionStatus, InstallState, Proof, StoreError,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::origin_of;
use crate::domain::connections::count_attempt;
use crate::services::Services;

/// How long a started flow stays usable.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// A state longer than this is not one Lanyard issued.
const MAX_STATE_LEN: usize = 1024;
const MAX_RETURN_TO_LEN: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("GitHub host {0:?} is not configured on this deployment")]
    UnknownHost(String),
    #[error("the installation flow is not configured for {0} (it needs app_slug and client_id)")]
    Unconfigured(String),
    #[error("return_to must be an absolute URL on an allowed origin")]
    InvalidReturnTo,
    #[error("the setup link's state is missing, forged, expired or already used")]
    InvalidState,
    #[error("GitHub sent no authorization code: enable \"Request user authorization (OAuth) during installation\" on the App")]
    MissingCode,
    #[error("the GitHub user who authorised the App cannot see that installation")]
    NotOwned,
    #[error("too many connection attempts for this team in the last hour")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Github(GithubError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the state carries, signed.
#[derive(Debug, Serialize, Deserialize)]
struct StateClaims {
    /// Team.
    t: Uuid,
    /// Host.
    h: String,
    /// Nonce: the key of the single-use row.
    n: String,
    /// Expiry, Unix seconds.
    e: i64,
}

/// A started flow: where to send the user.
#[derive(Debug, Clone)]
pub struct Started {
    pub install_url: String,
    pub state_expires_at: DateTime<Utc>,
}

/// Checks `return_to` against the allowed origins (by default the public URL's own).
fn check_return_to(svc: &Services, return_to: &str) -> Result<String, InstallError> {
    // Printable ASCII only (a URL's own alphabet): it goes back out in a Location header.
    if return_to.len() > MAX_RETURN_TO_LEN || !return_to.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InstallError::InvalidReturnTo);
    }
    let origin = origin_of(return_to).ok_or(InstallError::InvalidReturnTo)?;
    let allowed = &svc.config().allowed_return_origins;
    let ok = if allowed.is_empty() {
        origin_of(svc.public_url()).is_some_and(|o| o == origin)
    } else {
        allowed.iter().any(|a| a == &origin)
    };
    ok.then(|| return_to.to_string())
        .ok_or(InstallError::InvalidReturnTo)
}

/// Starts the flow for a team on a host: a signed single-use state, and GitHub's install URL.
pub async fn start(
    svc: &Services,
    team_id: Uuid,
    host: &str,
    return_to: Option<&str>,
) -> Result<Started, InstallError> {
    let unknown = || InstallError::UnknownHost(echo(host.trim()));
    let host = Host::parse(host).map_err(|_| unknown())?;
    let configured = svc.hosts().get(&host).ok_or_else(unknown)?;
    let oauth = configured
        .oauth
        .as_ref()
        .ok_or_else(|| InstallError::Unconfigured(host.to_string()))?;
    let return_to = return_to.map(|r| check_return_to(svc, r)).transpose()?;
    count_attempt(svc, team_id)
        .await
        .map_err(|retry_after| InstallError::RateLimited { retry_after })?;
    let now = svc.clock().now();
    let expires_at = now + STATE_LIFETIME;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let nonce = hex::encode(nonce);
    let claims = StateClaims {
        t: team_id,
        h: host.to_string(),
        n: nonce.clone(),
        e: expires_at.timestamp(),
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"));
    let signature = URL_SAFE_NO_PAD.encode(svc.state_signer().sign(payload.as_bytes()));
    let row = InstallState {
        team_id,
        host: host.clone(),
        return_to,
        expires_at,
    };
    svc.store().create_install_state(&nonce, &row, now).await?;
    Ok(Started {
        install_url: format!(
            "{}/apps/{}/installations/new?state={payload}.{signature}",
            configured.client.web_url(),
            oauth.app_slug
        ),
        state_expires_at: expires_at,
    })
}

/// What GitHub sends to the setup URL.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub installation_id: Option<u64>,
    pub setup_action: Option<String>,
    pub code: Option<String>,
    pub state: Option<String>,
}

/// How the flow ended.
#[derive(Debug)]
pub enum Completed {
    Bound {
        connection: Box<ConnectionRecord>,
        /// The Lanyard team it is now bound to, named on the page so the person who installed
        /// the App sees whose it became.
        team_name: String,
        return_to: Option<String>,
    },
    /// An owner must approve the installation first: nothing was bound.
    Pending { return_to: Option<String> },
}

/// Checks the state's signature and expiry, then uses it up.
async fn redeem(svc: &Services, state: Option<&str>) -> Result<InstallState, InstallError> {
    let state = state
        .filter(|s| s.len() <= MAX_STATE_LEN)
        .ok_or(InstallError::InvalidState)?;
    let (payload, signature) = state.split_once('.').ok_or(InstallError::InvalidState)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| InstallError::InvalidState)?;
    if !svc.state_signer().verify(payload.as_bytes(), &signature) {
        return Err(InstallError::InvalidState);
    }
    let claims: StateClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b: Vec<u8>| serde_json::from_slice(&b).ok())
        .ok_or(InstallError::InvalidState)?;
    let now = svc.clock().now();
    if claims.e <= now.timestamp() {
        return Err(InstallError::InvalidState);
    }
    let row = svc
        .store()
        .consume_install_state(&claims.n, now)
        .await?
        .ok_or(InstallError::InvalidState)?;
    if row.team_id != claims.t || row.host != claims.h {
        return Err(InstallError::InvalidState);
    }
    Ok(row)
}

/// Completes the flow: binds the installation if the authorising user can see it and owns its
/// account (is that user, or an admin of that organization).
pub async fn complete(svc: &Services, setup: Setup) -> Result<Completed, InstallError> {
    let state = redeem(svc, setup.state.as_deref()).await?;
    if setup.setup_action.as_deref() == Some("request") {
        return Ok(Completed::Pending {
            return_to: state.return_to,
        });
    }
    let (Some(code), Some(installation_id)) = (setup.code.as_deref(), setup.installation_id) else {
        return Err(InstallError::MissingCode);
    };
    let host = svc
        .hosts()
        .get(&state.host)
        .ok_or_else(|| InstallError::UnknownHost(state.host.to_string()))?;
    let oauth = host
        .oauth
        .as_ref()
        .ok_or_else(|| InstallError::Unconfigured(state.host.to_string()))?;
    let user_token = match host
        .client
        .exchange_code(&oauth.client_id, &oauth.client_secret, code)
        .await
    {
        Ok(t) => t,
        Err(GithubError::Rejected { .. }) => return Err(InstallError::NotOwned),
        Err(e) => return Err(InstallError::Github(e)),
    };
    let visible = host
        .client
        .user_installations(&user_token)
        .await
        .map_err(InstallError::Github)?;
    let installation = visible
        .into_iter()
        .find(|i| i.id.as_u64() == installation_id)
        .ok_or(InstallError::NotOwned)?;
    // Seeing an installation is not owning it: GitHub lists it to anyone with read access to
    // one of its repositories. The user must be the account itself, or an admin of the
    // organization.
    let owns = match installation.account_kind {
        AccountKind::User => match host.client.check_pat(&user_token).await {
            Ok(user) => user.login.eq_ignore_ascii_case(&installation.account_login),
            Err(GithubError::Rejected { .. }) => false,
            Err(e) => return Err(InstallError::Github(e)),
        },
        AccountKind::Organization => host
            .client
            .is_org_admin(&user_token, &installation.account_login)
            .await
            .map_err(InstallError::Github)?,
    };
    if !owns {
        return Err(InstallError::NotOwned);
    }
    let owner = Owner::parse(&installation.account_login).map_err(|_| InstallError::NotOwned)?;
    let record = ConnectionRecord {
        id: Uuid::new_v4(),
        team_id: state.team_id,
        host: state.host.clone(),
        owner,
        kind: ConnectionKind::GithubApp,
        installation_id: Some(installation.id),
        status: ConnectionStatus::Active,
        pat_expires_at: None,
        pat_ciphertext: None,
        refresh_ciphertext: None,
        refresh_generation: 0,
        created_at: svc.clock().now(),
    };
    let actor = Actor {
        kind: lanyard_core::ActorKind::Team,
        id: Some("installation_flow".into()),
    };
    let connection = svc
        .store()
        .bind_installation(&record, Proof::Oauth, &actor)
        .await?;
    svc.broker().forget_team(state.team_id);
    let team_name = svc
        .store()
        .get_team(state.team_id)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    Ok(Completed::Bound {
        connection: Box::new(connection),
        team_name,
        return_to: state.return_to,
    })
}

/// `return_to` with `connection_id` added to its query (before any fragment).
pub fn with_connection_id(return_to: &str, connection_id: Uuid) -> String {
    let (base, fragment) = match return_to.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (return_to, None),
    };
    let joiner = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{joiner}connection_id={connection_id}");
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_id_goes_into_the_query() {
        let id = Uuid::nil();
        assert_eq!(
            with_connection_id("https://a.test/done", id),
            format!("https://a.test/done?connection_id={id}")
        );
        assert_eq!(
            with_connection_id("https://a.test/done?x=1#top", id),
            format!("https://a.test/done?x=1&connection_id={id}#top")
        );
    }
}
