//! `lanyard e2e create|reap|run`: CI's client for guarded test accounts.

use std::time::Duration;

use lanyard_core::ApiUrl;
use secrecy::{ExposeSecret, SecretString};

use super::E2eCommand;

mod run;

pub(super) async fn run(command: E2eCommand) -> anyhow::Result<()> {
    match command {
        E2eCommand::Create { account } => {
            let e2e = E2eClient::from_env(account.api)?;
            let (status, body) = e2e
                .create(account.tier.as_deref(), account.with_resources)
                .await?;
            println!("{body}");
            e2e.check(status)
        }
        E2eCommand::Reap { team_id, api } => {
            let e2e = E2eClient::from_env(api)?;
            let (status, body) = e2e.reap(&team_id).await?;
            println!("{body}");
            e2e.check(status)
        }
        E2eCommand::Run { account, cmd } => {
            let e2e = E2eClient::from_env(account.api)?;
            let code =
                run::run(&e2e, account.tier.as_deref(), account.with_resources, &cmd).await?;
            // The reap is done and reported: nothing is left to clean up.
            std::process::exit(code)
        }
    }
}

/// A client for Lanyard's own API at `api`: `https://`, or `http://` to loopback only; it follows
/// no redirects (a secret header is never sent on to another place) and gives up after a minute.
pub(super) fn lanyard_client(api: &str) -> anyhow::Result<(reqwest::Client, ApiUrl)> {
    let api = super::failure::arg("api", ApiUrl::parse(api))?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("lanyard/", env!("CARGO_PKG_VERSION")));
    if api.as_str().starts_with("http://") {
        // Clear text stays on loopback: never through an HTTP proxy from the environment.
        builder = builder.no_proxy();
    }
    let client = builder.build()?;
    Ok((client, api))
}

/// The e2e surface of one Lanyard, with the account token from the environment.
pub(super) struct E2eClient {
    client: reqwest::Client,
    api: ApiUrl,
    token: SecretString,
}

impl E2eClient {
    /// `LANYARD_E2E_ACCOUNT_TOKEN`, and `--api` (else `LANYARD_PUBLIC_URL`, else the default
    /// listen address).
    fn from_env(api: Option<String>) -> anyhow::Result<Self> {
        let token = std::env::var("LANYARD_E2E_ACCOUNT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("LANYARD_E2E_ACCOUNT_TOKEN must be set to the server's e2e token")
            })?;
        let api = api
            .or_else(|| std::env::var("LANYARD_PUBLIC_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let (client, api) = lanyard_client(&api)?;
        Ok(Self {
            client,
            api,
            token: SecretString::from(token),
        })
    }

    fn api(&self) -> &str {
        self.api.as_str()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(u16, String)> {
        let response = request
            .header("x-e2e-token", self.token.expose_secret())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.api()))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// `POST /internal/e2e/account`: the status and the body.
    async fn create(
        &self,
        tier: Option<&str>,
        with_resources: bool,
    ) -> anyhow::Result<(u16, String)> {
        let mut body = serde_json::json!({ "with_resources": with_resources });
        if let Some(t) = tier {
            body["tier"] = t.into();
        }
        let url = format!("{}/internal/e2e/account", self.api());
        self.send(self.client.post(url).json(&body)).await
    }

    /// `DELETE /internal/e2e/account/{team_id}`: the status and the body.
    async fn reap(&self, team_id: &str) -> anyhow::Result<(u16, String)> {
        let url = format!("{}/internal/e2e/account/{team_id}", self.api());
        self.send(self.client.delete(url)).await
    }

    /// A non-2xx answer as an error that says what to do about it.
    fn check(&self, status: u16) -> anyhow::Result<()> {
        let api = self.api();
        match status {
            200..=299 => Ok(()),
            300..=399 => anyhow::bail!("{api} answered {status} (a redirect); Lanyard's clients follow none: give the final URL with --api"),
            404 => anyhow::bail!("{api} answered 404: the e2e surface is disabled there, or LANYARD_E2E_ACCOUNT_TOKEN is wrong"),
            code => anyhow::bail!("{api} answered {code}"),
        }
    }
}
