//! GitHub App installation tokens: minted per scope (repositories × permissions) with the App's
//! JWT, living an hour, each independent of the others, revoked with `DELETE /installation/token`.

use std::sync::Arc;

use lanyard_core::wire::CredentialSource;
use lanyard_github::{GithubError, GithubHost, Revocation};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use secrecy::SecretString;

use crate::metrics::{Fixed, Label, MintLabels, MintResult};
use crate::provider::{
    Ask, Lifetime, Obtained, Pending, Provider, ProviderError, ProviderKind, Renewal, Revoked,
};

/// One GitHub host's App, minting through its client.
#[derive(Debug)]
pub struct GithubApp {
    client: Arc<GithubHost>,
    /// `lanyard_github_mints_total{host,result}`, resolved once per result.
    mints: [Counter; 3],
}

impl GithubApp {
    /// Mints through `client`, counting each mint in `mints` under the configured host.
    pub fn new(client: Arc<GithubHost>, mints: &Family<MintLabels, Counter>) -> Self {
        let host = Fixed(client.host().into());
        let counter = |result| {
            mints
                .get_or_create(&MintLabels {
                    host: host.clone(),
                    result: Label(result),
                })
                .clone()
        };
        Self {
            mints: [
                counter(MintResult::Ok),
                counter(MintResult::Unavailable),
                counter(MintResult::Rejected),
            ],
            client,
        }
    }

    async fn mint(&self, ask: Ask<'_>) -> Result<Obtained, ProviderError> {
        let installation = ask.connection.installation_id.ok_or_else(|| {
            ProviderError::Internal("an App connection without an installation".into())
        })?;
        let minted = self
            .client
            .mint(installation, ask.repositories, ask.permissions)
            .await;
        let result = match &minted {
            Ok(_) => 0,
            Err(GithubError::Unavailable { .. }) => 1,
            Err(_) => 2,
        };
        self.mints[result].inc();
        let minted = minted.map_err(from_github)?;
        Ok(Obtained {
            secret: minted.token,
            expires_at: Some(minted.expires_at),
            repositories: minted.repositories,
            permissions: minted.permissions,
            rotated: None,
        })
    }
}

/// GitHub's errors in the broker's terms.
pub fn from_github(e: GithubError) -> ProviderError {
    match e {
        GithubError::Unavailable {
            retry_after,
            message,
            ..
        } => ProviderError::Unavailable {
            retry_after,
            message,
        },
        GithubError::Rejected { status, message } => ProviderError::Rejected { status, message },
        other => ProviderError::Internal(other.to_string()),
    }
}

impl Provider for GithubApp {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Github
    }

    fn source(&self) -> CredentialSource {
        CredentialSource::GithubApp
    }

    fn lifetime(&self) -> Lifetime {
        Lifetime::Expiring
    }

    fn renewal(&self) -> Renewal {
        Renewal::Mint
    }

    fn obtain<'a>(&'a self, ask: Ask<'a>) -> Pending<'a, Result<Obtained, ProviderError>> {
        Box::pin(self.mint(ask))
    }

    fn revoke<'a>(
        &'a self,
        secret: &'a SecretString,
    ) -> Pending<'a, Result<Revoked, ProviderError>> {
        Box::pin(async move {
            match self.client.revoke(secret).await.map_err(from_github)? {
                Revocation::Revoked => Ok(Revoked::Revoked),
                Revocation::AlreadyDead => Ok(Revoked::AlreadyDead),
            }
        })
    }
}
