//! `lanyard e2e create|reap`: CI's client for guarded test accounts.

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
    let api = api.trim_end_matches('/');
    let client = reqwest::Client::new();
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
        404 => anyhow::bail!("{api} answered 404: the e2e surface is disabled there, or LANYARD_E2E_ACCOUNT_TOKEN is wrong"),
        code => anyhow::bail!("{api} answered {code}"),
    }
}
