//! Webhook deliveries as GitHub sends them: its payload shapes, signed with the App's webhook
//! secret in `X-Hub-Signature-256`, with an `X-GitHub-Delivery` id.
//!
//! GitHub's own payloads are not uniform, and the shapes here keep that: `installation` events
//! carry `created_at` as a Unix timestamp (a number) where `installation_repositories` events
//! carry an ISO string, and ids are numbers that may exceed 32 bits.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The App's webhook secret (`fixtures/webhook-secret`).
pub const WEBHOOK_SECRET: &str = "fake-webhook-secret-for-tests-only";

/// `sha256=HEX`, the HMAC-SHA256 of `body` with `secret`, as GitHub signs a delivery.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn account(login: &str, id: u64) -> serde_json::Value {
    serde_json::json!({
        "login": login, "id": id + 7_000_000_000u64, "node_id": "MDEyOk9yZ2FuaXphdGlvbjE=",
        "type": "Organization", "site_admin": false,
    })
}

/// An `installation` event (`created`, `deleted`, `suspend`, `unsuspend`, ...).
pub fn installation_event(action: &str, installation_id: u64, login: &str) -> serde_json::Value {
    serde_json::json!({
        "action": action,
        "installation": {
            "id": installation_id,
            "account": account(login, installation_id),
            "repository_selection": "selected",
            "app_id": super::APP_ID,
            "target_id": installation_id + 7_000_000_000u64,
            "target_type": "Organization",
            "permissions": {"contents": "write", "metadata": "read"},
            "events": ["push"],
            "created_at": 1_764_000_000,
            "updated_at": 1_764_000_100,
            "single_file_name": null,
            "suspended_at": if action == "suspend" { serde_json::json!("2026-11-25T10:00:00Z") } else { serde_json::Value::Null },
        },
        "repositories": [{"id": 1_296_269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "widgets", "full_name": format!("{login}/widgets"), "private": true}],
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    })
}

/// An `installation_repositories` event with the repositories added and removed.
pub fn installation_repositories_event(
    action: &str,
    installation_id: u64,
    login: &str,
    added: &[&str],
    removed: &[&str],
) -> serde_json::Value {
    let repos = |names: &[&str]| -> Vec<serde_json::Value> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                serde_json::json!({"id": 5_000_000_000u64 + i as u64, "name": n, "full_name": format!("{login}/{n}"), "private": true})
            })
            .collect()
    };
    serde_json::json!({
        "action": action,
        "installation": {
            "id": installation_id,
            "account": account(login, installation_id),
            "app_id": super::APP_ID,
            "created_at": "2026-11-01T09:00:00.000Z",
            "updated_at": "2026-11-25T10:00:00.000Z",
        },
        "repository_selection": "selected",
        "repositories_added": repos(added),
        "repositories_removed": repos(removed),
        "requester": null,
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    })
}

/// Sends a delivery to `url`, signed with `secret`. `delivery` is its `X-GitHub-Delivery` id.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    payload: &serde_json::Value,
) -> reqwest::Response {
    let body = serde_json::to_vec(payload).expect("a payload serialises");
    client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/fake")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature(secret, &body))
        .body(body)
        .send()
        .await
        .expect("the webhook is delivered")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector for X-Hub-Signature-256.
    #[test]
    fn signs_like_github() {
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
