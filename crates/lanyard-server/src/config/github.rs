//! The GitHub hosts (`[[github]]`) and the origins the installation flow may return to.

use std::path::PathBuf;

use super::sources::GithubLayer;
use super::ConfigError;
use lanyard_core::Host;

/// One configured GitHub host (CONTRACT §2, `[[github]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubHost {
    /// Host (and port) as it appears in repo URLs.
    pub host: Host,
    pub api_url: String,
    pub app_id: Option<u64>,
    pub private_key_file: Option<PathBuf>,
    /// Where users sign in and install the App: `https://github.com`, or the GHES host.
    pub web_url: String,
    /// The App's URL name, for its install page.
    pub app_slug: Option<String>,
    /// The App's OAuth client, for the installation flow.
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// Verifies webhook deliveries; without it, the host's webhook route answers 404.
    pub webhook_secret_file: Option<PathBuf>,
    /// Mints in flight to this host at once, shared fairly between teams.
    pub max_concurrent_mints: usize,
}

/// The default number of mints in flight per host: about two thirds of GitHub's documented 100
/// concurrent requests, leaving room for the App's other calls (installation checks,
/// revocations, webhooks' follow-ups).
pub const DEFAULT_MAX_CONCURRENT_MINTS: usize = 64;

/// The most `max_concurrent_mints` may be: ten times GitHub's documented 100 concurrent requests,
/// for a GHES host sized for it.
pub const MAX_CONCURRENT_MINTS_LIMIT: u64 = 1000;

const KEY: &str = "github (LANYARD_GITHUB_*)";

fn http_url(what: &str, host: &Host, url: String) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&url).ok();
    if parsed.is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some()) {
        Ok(url)
    } else {
        Err(ConfigError::invalid(
            KEY,
            format!("{what} {url:?} for {host} must start with https:// or http://"),
        ))
    }
}

pub(super) fn validate_github(h: GithubLayer) -> Result<GithubHost, ConfigError> {
    let host = Host::parse(&h.host).map_err(|e| ConfigError::invalid(KEY, format!("host {e}")))?;
    let api_url = match h.api_url {
        Some(url) => url,
        None if host == "github.com" => "https://api.github.com".to_string(),
        None => format!("https://{host}/api/v3"),
    };
    let api_url = http_url("api_url", &host, api_url)?;
    let web_url = match h.web_url {
        Some(url) => url,
        None if host == "github.com" => "https://github.com".to_string(),
        None => format!("https://{host}"),
    };
    let web_url = http_url("web_url", &host, web_url)?;
    if h.app_id == Some(0) {
        return Err(ConfigError::invalid(
            KEY,
            format!("app_id for {host} must be positive"),
        ));
    }
    let slug_ok = |s: &String| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if h.app_slug.as_ref().is_some_and(|s| !slug_ok(s)) {
        return Err(ConfigError::invalid(
            KEY,
            format!("app_slug for {host} must be the App's URL name (letters, digits, - and _)"),
        ));
    }
    if h.client_id.is_some() != h.client_secret_file.is_some() {
        return Err(ConfigError::invalid(
            KEY,
            format!("client_id and client_secret_file for {host} go together"),
        ));
    }
    let max_concurrent_mints = match h.max_concurrent_mints {
        None => DEFAULT_MAX_CONCURRENT_MINTS,
        Some(n @ 1..=MAX_CONCURRENT_MINTS_LIMIT) => n as usize,
        Some(n) => {
            return Err(ConfigError::invalid(
                KEY,
                format!(
                    "max_concurrent_mints for {host} is {n}; it must be from 1 to {MAX_CONCURRENT_MINTS_LIMIT}"
                ),
            ))
        }
    };
    Ok(GithubHost {
        host,
        api_url,
        app_id: h.app_id,
        private_key_file: h.private_key_file,
        web_url,
        app_slug: h.app_slug,
        client_id: h.client_id,
        client_secret_file: h.client_secret_file,
        webhook_secret_file: h.webhook_secret_file,
        max_concurrent_mints,
    })
}

/// The origin (`scheme://host[:port]`) of an absolute http(s) URL without credentials,
/// lowercased and with a default port left out, as a browser would compare it.
pub fn origin_of(raw: &str) -> Option<String> {
    if raw
        .bytes()
        .any(|b| b == b'\\' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    let userinfo = !url.username().is_empty() || url.password().is_some();
    if !matches!(url.scheme(), "https" | "http") || userinfo || url.host().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// `LANYARD_ALLOWED_RETURN_ORIGINS`: comma-separated origins.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_authority_only() {
        assert_eq!(
            origin_of("https://App.example.com:8443/x?y#z").as_deref(),
            Some("https://app.example.com:8443")
        );
        for bad in [
            "javascript:alert(1)",
            "//evil.test",
            "https://user@evil.test/",
            "ftp://x",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
        use super::super::values::{FromText, Origins};
        assert_eq!(
            Origins::from_text("https://a.test, http://127.0.0.1:3000")
                .unwrap()
                .0,
            ["https://a.test", "http://127.0.0.1:3000"]
        );
        assert!(Origins::from_text("https://a.test/path").is_err());
    }
}
