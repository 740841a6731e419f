//! The types both binaries put on the wire: the server's credential responses and error
//! envelope, and the runner's local socket protocol. The server serialises borrowed values (the
//! hot path copies nothing); the runner deserialises owned ones from the same types.
//!
//! Readers are tolerant where a newer peer may say more: an unknown credential source is
//! [`CredentialSource::Other`], unknown envelope fields land in `details`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::github::Scheme;

/// Where a credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    GithubApp,
    Pat,
    /// A source this reader does not know yet.
    #[serde(other)]
    Other,
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl crate::Registry for CredentialSource {
    /// The sources a server serves (`Other` is only ever read).
    fn all() -> &'static [Self] {
        &[CredentialSource::GithubApp, CredentialSource::Pat]
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl CredentialSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialSource::GithubApp => "github_app",
            CredentialSource::Pat => "pat",
            CredentialSource::Other => "other",
        }
    }
}

/// Parses an RFC 3339 expiry with `Z` or an offset. `None` if it does not parse.
pub fn parse_expiry(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// An expiry a reader cannot parse is unknown, not an unreadable credential: the token is still
/// good to use, and is refreshed by interval.
fn lenient_expiry<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let raw = Option::<Cow<'de, str>>::deserialize(d)?;
    Ok(raw.as_deref().and_then(parse_expiry))
}

/// `GET /v1/sessions/{id}/credentials/github`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubCredential<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Cow<'a, str>,
    /// Present for `github_app` tokens and for PATs whose expiry GitHub reported; at least
    /// `token_min_remaining` away for App tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_expiry"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub host: Cow<'a, str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owner: Cow<'a, str>,
    /// The only scheme git may use this token over: that of the host's `api_url`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "https"))]
    pub scheme: Scheme,
    pub source: CredentialSource,
    /// Repository names the token is scoped to.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub repositories: Cow<'a, [String]>,
    /// As GitHub granted them.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub permissions: Cow<'a, BTreeMap<String, String>>,
}

impl std::fmt::Debug for GithubCredential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubCredential")
            .field("host", &self.host)
            .field("owner", &self.owner)
            .field("source", &self.source)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The compatibility shape for existing agent runners (camelCase).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompatCredential<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Cow<'a, str>,
    /// The git identity to commit as.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user_name: Cow<'a, str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub email: Cow<'a, str>,
    /// Always `github`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provider: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for CompatCredential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompatCredential")
            .field("user_name", &self.user_name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A credential of a session: one per (host, owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostOwner {
    pub host: String,
    pub owner: String,
}

/// The error envelope (CONTRACT §5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope<'a> {
    /// Always `false`.
    #[serde(default)]
    pub ok: bool,
    /// A code from the registry; see the error table on `/docs`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(default)]
    pub error: Cow<'a, str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(default)]
    pub message: Cow<'a, str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(default)]
    pub request_id: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// With `owner_required`: the credentials the session holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<HostOwner>>,
    /// Other code-specific fields.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// A request on the runner's local socket: one JSON line per connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SocketRequest {
    /// git `get`: `owner` from the request path when git sends one; `protocol` as git sent it.
    Get {
        host: String,
        owner: Option<String>,
        #[serde(default)]
        protocol: Option<String>,
    },
    /// git `erase`: the credential was refused; refresh it.
    Erase {
        host: String,
        owner: Option<String>,
    },
    /// A token for scripts and the gh shim.
    Token {
        host: Option<String>,
        owner: Option<String>,
    },
    Hosts,
    Status,
}

/// A token handed out on the socket.
#[derive(Clone, Serialize, Deserialize)]
pub struct SocketToken {
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub host: String,
    pub owner: String,
    pub scheme: Scheme,
}

impl std::fmt::Debug for SocketToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketToken")
            .field("host", &self.host)
            .field("owner", &self.owner)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One credential as `lanyard-runner status` shows it: never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialStatus {
    pub host: String,
    pub owner: String,
    pub source: CredentialSource,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refresh: DateTime<Utc>,
    pub next_refresh: DateTime<Utc>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

/// Why the runner refused a socket request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketErrorKind {
    /// The session holds no credential for that host (and owner): git should try other helpers.
    NoCredential,
    /// Several credentials match; name the owner.
    Ambiguous,
    /// The current token has expired and refreshing failed.
    Expired,
    /// The session has ended at the server.
    Ended,
    /// The request was not understood.
    Malformed,
}

/// The runner's answer on its socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum SocketReply {
    Token(SocketToken),
    Done,
    Hosts {
        hosts: Vec<String>,
    },
    Status {
        credentials: Vec<CredentialStatus>,
    },
    Error {
        kind: SocketErrorKind,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_credential_reads_back_and_hides_its_token_in_debug() {
        let perms = BTreeMap::from([("contents".to_string(), "read".to_string())]);
        let repos = vec!["widgets".to_string()];
        let served = GithubCredential {
            token: Cow::Borrowed("tok-value-1"),
            expires_at: None,
            host: Cow::Borrowed("github.com"),
            owner: Cow::Borrowed("acme"),
            scheme: Scheme::Https,
            source: CredentialSource::GithubApp,
            repositories: Cow::Borrowed(&repos),
            permissions: Cow::Borrowed(&perms),
        };
        let json = serde_json::to_string(&served).unwrap();
        assert!(!json.contains("expires_at"), "{json}");
        let read: GithubCredential<'static> = serde_json::from_str(&json).unwrap();
        assert_eq!(read.token, "tok-value-1");
        assert_eq!(read.scheme, Scheme::Https);
        assert!(!format!("{read:?}").contains("tok-value-1"));
        let odd = json.replace("\"host\"", "\"expires_at\":\"soon\",\"host\"");
        let read: GithubCredential<'static> = serde_json::from_str(&odd).unwrap();
        assert_eq!(read.expires_at, None, "an unparsable expiry is unknown");
        let newer = json.replace("github_app", "gitlab_oauth");
        let read: GithubCredential<'static> = serde_json::from_str(&newer).unwrap();
        assert_eq!(read.source, CredentialSource::Other);
    }

    #[test]
    fn envelope_choices_are_typed_and_other_details_kept() {
        let text = r#"{"ok":false,"error":"owner_required","message":"m","request_id":"r",
            "choices":[{"host":"h","owner":"o"}],"repo":"x"}"#;
        let e: ErrorEnvelope<'static> = serde_json::from_str(text).unwrap();
        assert_eq!(e.choices.unwrap()[0].owner, "o");
        assert_eq!(e.details["repo"], "x");
    }

    #[test]
    fn socket_replies_round_trip() {
        let reply = SocketReply::Error {
            kind: SocketErrorKind::NoCredential,
            message: "no credential for h/*".into(),
        };
        let json = serde_json::to_string(&reply).unwrap();
        match serde_json::from_str::<SocketReply>(&json).unwrap() {
            SocketReply::Error { kind, .. } => assert_eq!(kind, SocketErrorKind::NoCredential),
            other => panic!("{other:?}"),
        }
    }
}
