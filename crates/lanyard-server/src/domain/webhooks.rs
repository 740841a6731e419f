//! Webhooks from GitHub keep connections true: an uninstalled App revokes its connections and
//! tokens, a suspended one serves nothing until resumed, and a repository taken out of an
//! installation ends the scopes that held it.
//!
//! A delivery is verified (HMAC-SHA256 of the raw body with the host's webhook secret, compared
//! in constant time) before anything is read, and applied once: its id is recorded in the same
//! transaction as the changes, so a redelivery changes nothing.

use lanyard_core::github::echo;
use lanyard_core::github::InstallationId;
use lanyard_core::secret::constant_time_eq;
use lanyard_core::Host;
use lanyard_store::{Delivery, StoreError, WebhookChange};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use lanyard_github::GithubError;

use crate::hosts::ConfiguredHost;
use crate::metrics::{Label, WebhookEvent, WebhookLabels, WebhookResult};
use crate::services::Services;

/// The longest body accepted: GitHub's own cap is 25 MB, but the events Lanyard acts on are far
/// smaller (a removal of a thousand repositories is about 200 KB).
pub const MAX_BODY: usize = 2 * 1024 * 1024;
const MAX_DELIVERY_ID: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The host is unknown or has no webhook secret: like an unknown route.
    #[error("no webhook is configured for that host")]
    NotConfigured,
    #[error("the delivery's X-Hub-Signature-256 is missing or wrong")]
    InvalidSignature,
    #[error("the delivery has no usable X-GitHub-Delivery id")]
    MissingDelivery,
    #[error("the {event} payload cannot be read: {reason}")]
    InvalidPayload { event: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Processed,
    /// Seen before: nothing changed.
    Duplicate,
    /// An event or action Lanyard does not act on.
    Ignored,
}

/// A delivery as it arrived.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub host: &'a str,
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// An id GitHub sends as a number in some payloads and a string in others.
fn flexible_id<'de, D: Deserializer<'de>>(d: D) -> Result<InstallationId, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    let n = match Id::deserialize(d)? {
        Id::Number(n) => n,
        Id::Text(s) => s.trim().parse().map_err(de::Error::custom)?,
    };
    InstallationId::try_from(n).map_err(de::Error::custom)
}

#[derive(Debug, Deserialize)]
struct InstallationRef {
    #[serde(deserialize_with = "flexible_id")]
    id: InstallationId,
}

#[derive(Debug, Deserialize)]
struct RepoRef {
    name: String,
}

/// Only what Lanyard acts on; every other field (timestamps that are numbers in one event and
/// strings in the next, nested accounts, permissions) is skipped unread.
#[derive(Debug, Deserialize)]
struct Payload {
    action: Option<String>,
    installation: Option<InstallationRef>,
    #[serde(default)]
    repositories_removed: Vec<RepoRef>,
}

/// The signature header as GitHub writes it: `sha256=` and 64 hex digits.
fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(presented) = hex::decode(hex_sig) else {
        return false;
    };
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC takes any key length");
    mac.update(body);
    constant_time_eq(&mac.finalize().into_bytes(), &presented)
}

/// Reads what a delivery asks for. Unknown events and actions change nothing.
/// Reads what a delivery of `event` asks Lanyard to change (its signature already checked).
pub fn read_change(event: WebhookEvent, body: &[u8]) -> Result<WebhookChange, WebhookError> {
    if event == WebhookEvent::Other {
        return Ok(WebhookChange::Ignored);
    }
    let payload: Payload =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidPayload {
            event: event.as_str(),
            reason: echo(&e.to_string()),
        })?;
    let Some(installation) = payload.installation else {
        return Ok(WebhookChange::Ignored);
    };
    let installation_id = installation.id;
    Ok(match (event, payload.action.as_deref()) {
        (WebhookEvent::Installation, Some("deleted")) => {
            WebhookChange::InstallationDeleted { installation_id }
        }
        (WebhookEvent::Installation, Some("suspend")) => WebhookChange::InstallationSuspended {
            installation_id,
            suspended: true,
        },
        (WebhookEvent::Installation, Some("unsuspend")) => WebhookChange::InstallationSuspended {
            installation_id,
            suspended: false,
        },
        (WebhookEvent::InstallationRepositories, Some("removed"))
            if !payload.repositories_removed.is_empty() =>
        {
            WebhookChange::RepositoriesRemoved {
                installation_id,
                repositories: payload
                    .repositories_removed
                    .into_iter()
                    .map(|r| r.name.to_ascii_lowercase())
                    .collect(),
            }
        }
        _ => WebhookChange::Ignored,
    })
}

/// A suspension or resumption is applied only if GitHub still says so: a signed delivery
/// replayed later (an old `suspend` after the `unsuspend`) changes nothing. When GitHub cannot
/// be asked, the signed payload is trusted.
async fn confirmed(host: &ConfiguredHost, change: WebhookChange) -> WebhookChange {
    let WebhookChange::InstallationSuspended {
        installation_id,
        suspended,
    } = change
    else {
        return change;
    };
    match host.client.installation(installation_id).await {
        Ok(now) if now.suspended == suspended => change,
        Ok(_) | Err(GithubError::Rejected { .. }) => {
            tracing::info!(
                host = %host.client.host(),
                installation = %installation_id,
                suspended,
                "a suspension webhook GitHub no longer agrees with was ignored"
            );
            WebhookChange::Ignored
        }
        Err(e) => {
            tracing::warn!(host = %host.client.host(), installation = %installation_id, error = %e, "cannot confirm a suspension webhook with GitHub; applying the signed payload");
            change
        }
    }
}

/// Verifies, de-duplicates and applies one delivery, then revokes what it claimed at GitHub
/// and makes every replica's cached sessions of the affected teams be read afresh.
pub async fn receive(svc: &Services, incoming: Incoming<'_>) -> Result<Received, WebhookError> {
    let event = incoming
        .event
        .and_then(WebhookEvent::parse)
        .unwrap_or(WebhookEvent::Other);
    let outcome = handle(svc, &incoming, event).await;
    let result = match &outcome {
        Ok(Received::Processed) => WebhookResult::Processed,
        Ok(Received::Duplicate) => WebhookResult::Duplicate,
        Ok(Received::Ignored) => WebhookResult::Ignored,
        Err(WebhookError::InvalidSignature | WebhookError::NotConfigured) => WebhookResult::Refused,
        Err(_) => WebhookResult::Error,
    };
    svc.metrics()
        .github_webhooks
        .get_or_create(&WebhookLabels {
            event: Label(event),
            result: Label(result),
        })
        .inc();
    outcome
}

async fn handle(
    svc: &Services,
    incoming: &Incoming<'_>,
    event: WebhookEvent,
) -> Result<Received, WebhookError> {
    let host = Host::parse(incoming.host)
        .ok()
        .and_then(|h| svc.hosts().get(&h))
        .ok_or(WebhookError::NotConfigured)?;
    let secret = host
        .webhook_secret
        .as_ref()
        .ok_or(WebhookError::NotConfigured)?;
    use secrecy::ExposeSecret;
    if !signature_ok(
        secret.expose_secret().as_bytes(),
        incoming.body,
        incoming.signature,
    ) {
        return Err(WebhookError::InvalidSignature);
    }
    let delivery_id = incoming
        .delivery
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= MAX_DELIVERY_ID)
        .ok_or(WebhookError::MissingDelivery)?;
    let change = confirmed(host, read_change(event, incoming.body)?).await;
    let ignored = matches!(change, WebhookChange::Ignored);
    let delivery = Delivery {
        host: host.name.clone(),
        id: delivery_id.to_string(),
        event: event.as_str().to_string(),
        body_sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(incoming.body))
        },
    };
    let Some(applied) = svc
        .store()
        .apply_webhook(&delivery, &change, svc.clock().now())
        .await?
    else {
        return Ok(Received::Duplicate);
    };
    for team in &applied.teams {
        svc.broker().forget_team(*team);
    }
    let revoked = svc.broker().revoke(applied.revoke).await;
    if !ignored {
        tracing::info!(
            host = %delivery.host,
            delivery = %delivery.id,
            event = event.as_str(),
            changed = applied.changed,
            revoked,
            "applied a GitHub webhook"
        );
    }
    Ok(if ignored {
        Received::Ignored
    } else {
        Received::Processed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published test vector for `X-Hub-Signature-256`.
    #[test]
    fn github_test_vector_verifies_and_tampering_does_not() {
        let secret = b"It's a Secret to Everybody";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_ok(secret, b"Hello, World!", Some(good)));
        assert!(!signature_ok(secret, b"Hello, World?", Some(good)));
        assert!(!signature_ok(
            b"another secret",
            b"Hello, World!",
            Some(good)
        ));
        assert!(!signature_ok(secret, b"Hello, World!", None));
        assert!(!signature_ok(secret, b"Hello, World!", Some("sha1=abc")));
        assert!(!signature_ok(secret, b"Hello, World!", Some(&good[..40])));
    }

    #[test]
    fn ids_and_timestamps_of_either_type_are_read() {
        let numeric =
            br#"{"action":"deleted","installation":{"id":12345678901,"created_at":1764000000}}"#;
        let textual =
            br#"{"action":"removed","installation":{"id":"42","created_at":"2026-11-01T09:00:00Z"},
            "repositories_removed":[{"id":5000000000,"name":"Widgets"}]}"#;
        match read_change(WebhookEvent::Installation, numeric).unwrap() {
            WebhookChange::InstallationDeleted { installation_id } => {
                assert_eq!(installation_id.get(), 12_345_678_901)
            }
            other => panic!("{other:?}"),
        }
        match read_change(WebhookEvent::InstallationRepositories, textual).unwrap() {
            WebhookChange::RepositoriesRemoved {
                installation_id,
                repositories,
            } => assert_eq!(
                (installation_id.get(), repositories),
                (42, vec!["widgets".into()])
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_change(
                WebhookEvent::Installation,
                br#"{"action":"created","installation":{"id":1}}"#
            ),
            Ok(WebhookChange::Ignored)
        ));
        assert!(read_change(WebhookEvent::Installation, b"not json").is_err());
        // An id GitHub never issues is refused, not read as some other installation.
        for id in ["0", "-3", "\"0\"", "\"x\"", "18446744073709551615"] {
            let body = format!(r#"{{"action":"deleted","installation":{{"id":{id}}}}}"#);
            let read = read_change(WebhookEvent::Installation, body.as_bytes());
            assert!(read.is_err(), "{id}: {read:?}");
        }
    }
}
