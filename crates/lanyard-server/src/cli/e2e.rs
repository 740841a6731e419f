//! `lanyard e2e create|reap`: CI's client for guarded test accounts.

use lanyard_core::ApiUrl;

use super::E2eCommand;

pub(super) async fn run(command: E2eCommand) -> anyhow::Result<()> {
    match command {
        E2eCommand::Create {
            tier,
            with_resources,
            api,
        } => {
            let mut body = serde_json::json!({ "with_resources": with_resources });
            if let Some(t) = tier {
                body["tier"] = t.into();
            }
            call(api, |c, api| {
                c.post(format!("{api}/internal/e2e/account")).json(&body)
            })
            .await
        }
        E2eCommand::Reap { team_id, api } => {
            call(api, |c, api| {
                c.delete(format!("{api}/internal/e2e/account/{team_id}"))
            })
            .await
        }
    }
}

/// A client for Lanyard's own API at `api`: `https://`, or `http://` to loopback only; it follows
/// no redirects (a secret header is never sent on to another place) and gives up after a minute.
pub(super) fn lanyard_client(api: &str) -> anyhow::Result<(reqwest::Client, ApiUrl)> {
    let api = ApiUrl::parse(api).map_err(|e| anyhow::anyhow!("--api: {e}"))?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("lanyard/", env!("CARGO_PKG_VERSION")));
    if api.as_str().starts_with("http://") {
        // Clear text stays on loopback: never through an HTTP proxy from the environment.
        builder = builder.no_proxy();
    }
    let client = builder.build()?;
    Ok((client, api))
}

/// Sends an e2e call and prints the response body; a non-2xx answer is an error.
async fn call(
    api: Option<String>,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<()> {
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
    let api = api.as_str();
    let response = request(&client, api)
        .header("x-e2e-token", token)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {api}: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("{body}");
    match status.as_u16() {
        200..=299 => Ok(()),
        300..=399 => anyhow::bail!("{api} answered {status} (a redirect); Lanyard's clients follow none: give the final URL with --api"),
        404 => anyhow::bail!("{api} answered 404: the e2e surface is disabled there, or LANYARD_E2E_ACCOUNT_TOKEN is wrong"),
        code => anyhow::bail!("{api} answered {code}"),
    }
}
