//! A small GitHub App client: the app JWT, installation lookup, and minting and revoking scoped
//! installation tokens, on github.com and on GitHub Enterprise Server hosts.
//!
//! Errors are typed so callers can tell "GitHub is down, retry" ([`GithubError::Unavailable`])
//! from "this request is wrong" ([`GithubError::Rejected`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lanyard_core::github::{InstallationId, PermissionSet, RepoName};
use lanyard_core::Clock;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

mod error;
mod user;

pub use error::GithubError;
use error::{parse, status_error, transport_error};
pub use user::{parse_token_expiration, PatCheck};

const USER_AGENT: &str = concat!("lanyard/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// GitHub allows app JWTs to live at most 10 minutes; we sign for 9 and back-date `iat` by 60 s
/// for clock drift, as GitHub recommends.
const JWT_LIFETIME_SECONDS: i64 = 9 * 60;
const JWT_BACKDATE_SECONDS: i64 = 60;

/// A GitHub App's identity. `Debug` never shows the key.
#[derive(Clone)]
pub struct AppCredentials {
    pub app_id: u64,
    key: EncodingKey,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl AppCredentials {
    /// From a PKCS#1 or PKCS#8 PEM.
    pub fn from_pem(app_id: u64, pem: &[u8]) -> Result<Self, GithubError> {
        let key = EncodingKey::from_rsa_pem(pem).map_err(|e| {
            GithubError::BadKey(format!("not an RSA private key in PEM form ({e})"))
        })?;
        Ok(Self { app_id, key })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// The App, as `GET /app` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AppInfo {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
}

/// An installation, as GitHub describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub id: InstallationId,
    pub account_login: String,
    pub account_kind: AccountKind,
    /// GitHub reports a `suspended_at`.
    pub suspended: bool,
}

/// The kind of account an installation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    User,
    /// An organization, or anything GitHub does not call a user (enterprise accounts): the
    /// stricter case, where ownership means being an admin.
    Organization,
}

/// A freshly minted installation token.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
    pub permissions: BTreeMap<String, String>,
    pub repositories: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// GitHub answered 401: the token was already expired or revoked.
    AlreadyDead,
}

/// A client for one GitHub host.
pub struct GithubHost {
    host: String,
    api_url: String,
    app: Option<AppCredentials>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    jwt: Mutex<Option<(String, i64)>>,
    /// Where users sign in (the OAuth web flow): `https://github.com`, or the GHES host.
    web_url: String,
}

impl fmt::Debug for GithubHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubHost")
            .field("host", &self.host)
            .field("api_url", &self.api_url)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
pub(crate) struct InstallationBody {
    id: InstallationId,
    account: Account,
    #[serde(default)]
    suspended_at: Option<String>,
}

#[derive(Deserialize)]
struct Account {
    login: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl From<InstallationBody> for Installation {
    fn from(body: InstallationBody) -> Self {
        Installation {
            id: body.id,
            account_kind: match body.account.kind.as_deref() {
                Some("User") => AccountKind::User,
                _ => AccountKind::Organization,
            },
            account_login: body.account.login,
            suspended: body.suspended_at.is_some(),
        }
    }
}

#[derive(Serialize)]
struct MintBody<'a> {
    #[serde(skip_serializing_if = "<[RepoName]>::is_empty")]
    repositories: &'a [RepoName],
    permissions: &'a PermissionSet,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
    #[serde(default)]
    repositories: Vec<RepoBody>,
}

#[derive(Deserialize)]
struct RepoBody {
    name: String,
}

impl GithubHost {
    pub fn new(
        host: &str,
        api_url: &str,
        app: Option<AppCredentials>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, GithubError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| GithubError::BadKey(format!("cannot build the HTTP client: {e}")))?;
        let web_url = if host == "github.com" {
            "https://github.com".to_string()
        } else {
            format!("https://{host}")
        };
        Ok(Self {
            host: host.to_string(),
            api_url: api_url.trim_end_matches('/').to_string(),
            app,
            http,
            clock,
            jwt: Mutex::new(None),
            web_url,
        })
    }

    /// Sets where users sign in, when it is not the default for the host.
    #[must_use]
    pub fn with_web_url(mut self, web_url: &str) -> Self {
        self.web_url = web_url.trim_end_matches('/').to_string();
        self
    }

    pub fn web_url(&self) -> &str {
        &self.web_url
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    pub fn has_app(&self) -> bool {
        self.app.is_some()
    }

    /// The app JWT, re-signed when less than two minutes of it remain.
    fn app_jwt(&self) -> Result<String, GithubError> {
        let app = self
            .app
            .as_ref()
            .ok_or_else(|| GithubError::NoApp(self.host.clone()))?;
        let now = self.clock.now().timestamp();
        let mut cached = self.jwt.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((jwt, exp)) = cached.as_ref() {
            if exp - now > 120 {
                return Ok(jwt.clone());
            }
        }
        let claims = AppClaims {
            iat: now - JWT_BACKDATE_SECONDS,
            exp: now + JWT_LIFETIME_SECONDS,
            iss: app.app_id.to_string(),
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &app.key)
            .map_err(|e| GithubError::BadKey(e.to_string()))?;
        *cached = Some((jwt.clone(), claims.exp));
        Ok(jwt)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api_url))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
    }

    /// `GET /app`: the App this host's key signs for. A 401 means the key or the app id is
    /// wrong; a different `id` in the answer means the key belongs to another App.
    pub async fn app(&self) -> Result<AppInfo, GithubError> {
        let jwt = self.app_jwt()?;
        let response = self
            .request(reqwest::Method::GET, "/app")
            .bearer_auth(jwt)
            .send()
            .await
            .map_err(transport_error)?;
        parse(response).await
    }

    /// `GET /app/installations/{id}`.
    pub async fn installation(&self, id: InstallationId) -> Result<Installation, GithubError> {
        let jwt = self.app_jwt()?;
        let response = self
            .request(reqwest::Method::GET, &format!("/app/installations/{id}"))
            .bearer_auth(jwt)
            .send()
            .await
            .map_err(transport_error)?;
        let body: InstallationBody = parse(response).await?;
        Ok(body.into())
    }

    /// `POST /app/installations/{id}/access_tokens`, scoped to repository names and permissions.
    pub async fn mint(
        &self,
        installation_id: InstallationId,
        repositories: &[RepoName],
        permissions: &PermissionSet,
    ) -> Result<MintedToken, GithubError> {
        let jwt = self.app_jwt()?;
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("/app/installations/{installation_id}/access_tokens"),
            )
            .bearer_auth(jwt)
            .json(&MintBody {
                repositories,
                permissions,
            })
            .send()
            .await
            .map_err(transport_error)?;
        let body: TokenBody = parse(response).await?;
        Ok(MintedToken {
            token: SecretString::from(body.token),
            expires_at: body.expires_at,
            permissions: body.permissions,
            repositories: body.repositories.into_iter().map(|r| r.name).collect(),
        })
    }

    /// `DELETE /installation/token`, authenticated as the token itself.
    pub async fn revoke(&self, token: &SecretString) -> Result<Revocation, GithubError> {
        let response = self
            .request(reqwest::Method::DELETE, "/installation/token")
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(transport_error)?;
        match response.status() {
            s if s.is_success() => Ok(Revocation::Revoked),
            StatusCode::UNAUTHORIZED => Ok(Revocation::AlreadyDead),
            _ => Err(status_error(response).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS1: &[u8] = include_bytes!("../../lanyard-fake-github/fixtures/app-key.pem");
    const PKCS8: &[u8] = include_bytes!("../../lanyard-fake-github/fixtures/app-key.pkcs8.pem");
    const PUBLIC: &[u8] = include_bytes!("../../lanyard-fake-github/fixtures/app-key.pub.pem");

    #[test]
    fn app_jwt_is_rs256_backdated_and_short_lived_from_both_pem_forms() {
        for pem in [PKCS1, PKCS8] {
            let clock = Arc::new(lanyard_core::ManualClock::starting_now());
            let now = clock.now().timestamp();
            let app = AppCredentials::from_pem(4242, pem).unwrap();
            let host =
                GithubHost::new("github.com", "https://api.github.com", Some(app), clock).unwrap();
            let jwt = host.app_jwt().unwrap();
            let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
            v.validate_exp = false;
            v.set_required_spec_claims(&["exp", "iat", "iss"]);
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC).unwrap();
            let claims = jsonwebtoken::decode::<AppClaims>(&jwt, &key, &v)
                .unwrap()
                .claims;
            assert_eq!(claims.iss, "4242");
            assert_eq!(claims.iat, now - 60);
            assert!(claims.exp > now && claims.exp - now <= 600);
        }
    }

    #[test]
    fn bad_pem_is_a_clear_error_and_debug_hides_the_key() {
        assert!(AppCredentials::from_pem(1, b"not a key").is_err());
        let app = AppCredentials::from_pem(1, PKCS1).unwrap();
        let debug = format!("{app:?}");
        assert!(
            !debug.contains("PRIVATE") && debug.contains("app_id"),
            "{debug}"
        );
    }
}
