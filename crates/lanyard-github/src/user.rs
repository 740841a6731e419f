//! What GitHub says about a user: the OAuth web flow's code exchange, the installations a user
//! can see (the proof that a team owns an installation), and who a PAT belongs to, with its
//! expiry when GitHub reports one.

use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{parse, status_error, transport_error};
use crate::{GithubError, GithubHost, Installation, InstallationBody};

/// Installations are listed 100 to a page, and at most this many pages are read: a user who can
/// see more than 3,000 installations must bind through the operator instead.
const MAX_INSTALLATION_PAGES: u32 = 30;
const PER_PAGE: u32 = 100;

/// A PAT as GitHub knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatCheck {
    /// The user the token belongs to.
    pub login: String,
    /// From `GitHub-Authentication-Token-Expiration`, for fine-grained and expiring tokens.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct OAuthToken {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct InstallationPage {
    installations: Vec<InstallationBody>,
}

#[derive(Deserialize)]
struct Membership {
    state: String,
    role: String,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

/// Parses GitHub's token-expiration header: `2026-12-01 12:00:00 UTC`, or with an offset such
/// as `2026-12-01 12:00:00 +0100`. `None` if it does not parse.
pub fn parse_token_expiration(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Some(naive) = raw.strip_suffix(" UTC") {
        return NaiveDateTime::parse_from_str(naive.trim(), "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|d| d.and_utc());
    }
    DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// An organization login for a URL path: GitHub logins are ASCII letters, digits and hyphens,
/// so anything else is percent-encoded rather than trusted.
fn urlencoding(login: &str) -> String {
    login
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl GithubHost {
    /// `POST {web_url}/login/oauth/access_token`: a user's code for a user token.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        code: &str,
    ) -> Result<SecretString, GithubError> {
        let response = self
            .http
            .post(format!("{}/login/oauth/access_token", self.web_url))
            .header("accept", "application/json")
            .form(&[
                ("client_id", client_id),
                ("client_secret", client_secret.expose_secret()),
                ("code", code),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        // GitHub answers a bad code with 200 and an `error` field.
        let body: OAuthToken = parse(response).await?;
        match (body.access_token, body.error) {
            (Some(token), None) if !token.is_empty() => Ok(SecretString::from(token)),
            (_, error) => Err(GithubError::Rejected {
                status: 401,
                message: format!(
                    "the authorization code was refused ({})",
                    error
                        .as_deref()
                        .unwrap_or("no token")
                        .chars()
                        .take(60)
                        .collect::<String>()
                ),
            }),
        }
    }

    /// `GET {api}/user/installations`, every page: the installations of this App the user can
    /// administer or see.
    pub async fn user_installations(
        &self,
        user_token: &SecretString,
    ) -> Result<Vec<Installation>, GithubError> {
        let mut all = Vec::new();
        for page in 1..=MAX_INSTALLATION_PAGES {
            let response = self
                .request(reqwest::Method::GET, "/user/installations")
                .query(&[("per_page", PER_PAGE), ("page", page)])
                .bearer_auth(user_token.expose_secret())
                .send()
                .await
                .map_err(transport_error)?;
            let body: InstallationPage = parse(response).await?;
            let last = body.installations.len() < PER_PAGE as usize;
            all.extend(body.installations.into_iter().map(Installation::from));
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// `GET {api}/user/memberships/orgs/{org}` with a user token: whether the user is an active
    /// admin of the organization. Not a member (404), or a token that may not ask (403): `false`.
    /// (A GitHub App needs the organization permission *Members: read* to ask.)
    pub async fn is_org_admin(
        &self,
        user_token: &SecretString,
        org: &str,
    ) -> Result<bool, GithubError> {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/user/memberships/orgs/{}", urlencoding(org)),
            )
            .bearer_auth(user_token.expose_secret())
            .send()
            .await
            .map_err(transport_error)?;
        if matches!(response.status().as_u16(), 403 | 404) {
            return Ok(false);
        }
        let membership: Membership = parse(response).await?;
        Ok(membership.state == "active" && membership.role == "admin")
    }

    /// `GET {api}/user` with a user token or a PAT: whose it is, and when it expires if GitHub
    /// says.
    pub async fn check_pat(&self, pat: &SecretString) -> Result<PatCheck, GithubError> {
        let response = self
            .request(reqwest::Method::GET, "/user")
            .bearer_auth(pat.expose_secret())
            .send()
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        let expires_at = response
            .headers()
            .get("github-authentication-token-expiration")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let parsed = parse_token_expiration(v);
                if parsed.is_none() {
                    tracing::warn!(host = %self.host, "GitHub reported a PAT expiry Lanyard cannot read; it is stored without one");
                }
                parsed
            });
        let user: Login = response
            .json()
            .await
            .map_err(|e| GithubError::Unavailable {
                status: None,
                retry_after: None,
                message: format!("unexpected response body ({e})"),
            })?;
        Ok(PatCheck {
            login: user.login,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_expiration_in_utc_and_with_offsets() {
        let want: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_token_expiration("2026-12-01 12:00:00 UTC"),
            Some(want)
        );
        assert_eq!(
            parse_token_expiration("2026-12-01 13:00:00 +0100"),
            Some(want)
        );
        assert_eq!(
            parse_token_expiration("2026-12-01 04:00:00 -0800"),
            Some(want)
        );
        for bad in ["", "tomorrow", "2026-12-01", "2026-13-01 12:00:00 UTC"] {
            assert_eq!(parse_token_expiration(bad), None, "{bad}");
        }
    }
}
