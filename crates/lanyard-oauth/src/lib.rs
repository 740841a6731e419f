//! Lanyard's OAuth 2.0 client, for the providers of CONTRACT §14 (GitLab's OAuth and every
//! `[[oauth2]]`): a PKCE pair (RFC 7636), the authorization-code exchange and the refresh-token
//! grant (RFC 6749 §4.1.3, §6) with the client authenticated by HTTP Basic (§2.3.1), and
//! revocation (RFC 7009).
//!
//! Errors are told apart as the broker needs them: [`OauthError::InvalidGrant`] means the
//! grant is gone (the user revoked it, or a refresh token was used after it rotated: the
//! connection cannot be refreshed), [`OauthError::Unavailable`] that retrying later may work,
//! [`OauthError::Rejected`] that the request or the client's configuration is wrong. Every call
//! is bounded: 5 s to connect, 20 s in all, 64 KiB of answer. No token appears in `Debug`, in an
//! error, or in a log.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The most of an answer that is read.
pub const MAX_ANSWER: usize = 64 * 1024;
/// The most of a provider's `error_description` repeated in an error.
const MAX_DESCRIPTION: usize = 200;

/// Why a token request did not hand tokens over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OauthError {
    /// `invalid_grant`: the code or refresh token is expired, revoked, already used, or was
    /// issued to another client. Retrying will not help; the user must authorize again.
    #[error("the provider refused the grant: {description}")]
    InvalidGrant { description: String },
    /// Down, slow or throttling (a 5xx, a 429, a timeout): retry later.
    #[error("the provider is unavailable: {message}")]
    Unavailable {
        retry_after: Option<u64>,
        message: String,
    },
    /// `invalid_client`: the provider does not take this client's id and secret. The
    /// deployment's configuration is wrong, not the connection: never a reason to revoke it.
    #[error("the provider does not accept this client's credentials: {description}")]
    ClientRejected { description: String },
    /// Any other refusal (`invalid_scope`, `invalid_request`, …): configuration to fix.
    #[error("the provider refused the request ({status}, {error}): {description}")]
    Rejected {
        status: u16,
        error: String,
        description: String,
    },
    /// An answer that is not RFC 6749's.
    #[error("the provider's answer is not a token response: {0}")]
    Malformed(String),
}

/// What a token endpoint handed over. `Debug` shows neither token.
pub struct TokenSet {
    pub access_token: SecretString,
    /// Absent when the provider keeps the previous one, or grants no offline access.
    pub refresh_token: Option<SecretString>,
    /// Seconds, when the provider says.
    pub expires_in: Option<u64>,
    /// Space-separated, when the provider says (else as asked).
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    token_type: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<Seconds>,
    scope: Option<String>,
}

/// `expires_in` as a number, or as the text some providers send.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<u64> {
        match self {
            Seconds::Number(n) => Some(*n),
            Seconds::Text(t) => t.trim().parse().ok(),
        }
    }
}

/// A value of HTTP Basic credentials, form-urlencoded first (RFC 6749 §2.3.1).
fn basic_part(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

/// A PKCE pair: the verifier kept until the exchange, the S256 challenge sent with the
/// authorization request.
pub struct Pkce {
    pub verifier: SecretString,
    pub challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// 32 random bytes as the verifier (43 characters), and its S256 challenge.
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self::from_verifier(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_verifier(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier: SecretString::from(verifier),
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// One OAuth client of one provider.
pub struct OauthClient {
    http: reqwest::Client,
    token_url: String,
    revoke_url: Option<String>,
    client_id: String,
    client_secret: SecretString,
}

impl std::fmt::Debug for OauthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthClient")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn transport(e: &reqwest::Error) -> OauthError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    OauthError::Unavailable {
        retry_after: None,
        message: what.into(),
    }
}

fn short(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_DESCRIPTION).collect();
    if text.chars().nth(MAX_DESCRIPTION).is_some() {
        out.push('…');
    }
    out
}

/// The answer's body, at most [`MAX_ANSWER`] of it.
async fn bounded_body(mut response: reqwest::Response) -> Result<Vec<u8>, OauthError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(OauthError::Malformed(format!(
                "longer than {MAX_ANSWER} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl OauthClient {
    pub fn new(
        token_url: &str,
        revoke_url: Option<&str>,
        client_id: &str,
        client_secret: SecretString,
    ) -> Result<Self, OauthError> {
        Self::with_timeout(
            token_url,
            revoke_url,
            client_id,
            client_secret,
            REQUEST_TIMEOUT,
        )
    }

    /// As [`Self::new`], with another bound on each call than [`REQUEST_TIMEOUT`].
    pub fn with_timeout(
        token_url: &str,
        revoke_url: Option<&str>,
        client_id: &str,
        client_secret: SecretString,
        timeout: Duration,
    ) -> Result<Self, OauthError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OauthError::Malformed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            token_url: token_url.into(),
            revoke_url: revoke_url.map(String::from),
            client_id: client_id.into(),
            client_secret,
        })
    }

    /// Exchanges an authorization code (RFC 6749 §4.1.3), with the PKCE verifier when the
    /// authorization request carried a challenge.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&SecretString>,
    ) -> Result<TokenSet, OauthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.expose_secret()));
        }
        self.token_request(&form).await
    }

    /// The refresh-token grant (RFC 6749 §6).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, OauthError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        self.token_request(&form).await
    }

    /// Revokes a token (RFC 7009). `Ok(false)` when the provider has no revocation endpoint.
    pub async fn revoke(&self, token: &SecretString) -> Result<bool, OauthError> {
        let Some(url) = &self.revoke_url else {
            return Ok(false);
        };
        let response = self
            .http
            .post(url)
            .basic_auth(
                basic_part(&self.client_id),
                Some(basic_part(self.client_secret.expose_secret())),
            )
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        Err(self.refusal(status, response).await)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenSet, OauthError> {
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(
                basic_part(&self.client_id),
                Some(basic_part(self.client_secret.expose_secret())),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.refusal(status, response).await);
        }
        let body = bounded_body(response).await?;
        let parsed: TokenBody = serde_json::from_slice(&body)
            .map_err(|_| OauthError::Malformed("not a JSON token response".into()))?;
        let bearer = parsed
            .token_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
        if !bearer || parsed.access_token.is_empty() {
            return Err(OauthError::Malformed("not a bearer token".into()));
        }
        Ok(TokenSet {
            access_token: SecretString::from(parsed.access_token),
            refresh_token: parsed
                .refresh_token
                .filter(|r| !r.is_empty())
                .map(SecretString::from),
            expires_in: parsed.expires_in.as_ref().and_then(Seconds::get),
            scope: parsed.scope,
        })
    }

    /// A non-success answer, classified by its status and RFC 6749 §5.2 body.
    async fn refusal(&self, status: StatusCode, response: reqwest::Response) -> OauthError {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return OauthError::Unavailable {
                retry_after,
                message: format!("it answered {}", status.as_u16()),
            };
        }
        let body = bounded_body(response).await.unwrap_or_default();
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let (error, description) = match parsed {
            Some(b) => (
                short(&b.error),
                short(b.error_description.as_deref().unwrap_or("")),
            ),
            None => ("unknown".into(), String::new()),
        };
        match error.as_str() {
            "invalid_grant" => return OauthError::InvalidGrant { description },
            "invalid_client" => return OauthError::ClientRejected { description },
            _ => {}
        }
        OauthError::Rejected {
            status: status.as_u16(),
            error,
            description,
        }
    }
}
