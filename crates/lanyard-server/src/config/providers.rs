//! The providers beyond GitHub (CONTRACT §14): `[[gitlab]]` hosts, `[[oauth2]]` providers and
//! `[[secret]]` kinds, read from the TOML file and checked once, together, since their names
//! share one space.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use lanyard_core::Host;
use serde::Deserialize;

use super::github::GithubHost;
use super::ConfigError;

/// The scopes a GitLab OAuth connection asks for unless configured: `read_api` lets Lanyard
/// check namespaces, the other two are git's.
pub const DEFAULT_GITLAB_SCOPES: [&str; 3] = ["read_api", "read_repository", "write_repository"];

/// Names no provider may take: the provider kinds themselves.
const KINDS: [&str; 4] = ["github", "gitlab", "oauth2", "secret"];

/// A field name of a secret, and a provider's name: `[a-z0-9_-]`, 1 to 32 characters.
fn name_ok(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GitlabLayer {
    pub host: String,
    pub api_url: Option<String>,
    pub web_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Oauth2Layer {
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub client_id: String,
    pub client_secret_file: PathBuf,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    pub refresh_revokes_previous: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretLayer {
    pub name: String,
    pub fields: Vec<String>,
    #[serde(default)]
    pub secret_fields: Vec<String>,
}

/// One configured GitLab host (`[[gitlab]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabHost {
    /// As it appears in repository URLs.
    pub host: Host,
    /// `https://HOST/api/v4` unless configured.
    pub api_url: String,
    /// `https://HOST` unless configured: the OAuth endpoints live here.
    pub web_url: String,
    /// The OAuth application, when the connect flow is enabled.
    pub oauth: Option<ClientConfig>,
    pub scopes: Vec<String>,
}

/// An OAuth client: its id, and the file holding its secret (read at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret_file: PathBuf,
}

/// One configured OAuth 2.0 provider (`[[oauth2]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oauth2Provider {
    /// Its id in routes and grants.
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub client: ClientConfig,
    pub scopes: Vec<String>,
    pub authorize_params: BTreeMap<String, String>,
    pub refresh_revokes_previous: bool,
}

/// One configured kind of secret (`[[secret]]`): exactly these fields, some never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKind {
    pub name: String,
    pub fields: Vec<String>,
    /// Encrypted at rest and never listed.
    pub secret_fields: BTreeSet<String>,
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::invalid(key, message)
}

/// An endpoint that carries the client secret and tokens: `https://`, or `http://` only on
/// this machine (a local or test provider).
fn secure_url(key: &'static str, what: &str, url: &str) -> Result<String, ConfigError> {
    let url = http_url(key, what, url)?;
    let parsed = url::Url::parse(&url).ok();
    let local = parsed.as_ref().is_some_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    });
    if url.starts_with("https://") || local {
        Ok(url)
    } else {
        Err(invalid(
            key,
            format!("{what} {url:?} must be https:// (http:// only on localhost)"),
        ))
    }
}

/// The field names of a secret as the compatibility routes show them: `api_token` is
/// `apiToken`.
fn camel(field: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in field.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `url` as an absolute http(s) URL without a trailing slash, or why not.
fn http_url(key: &'static str, what: &str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    let parsed = url::Url::parse(url).ok();
    let ok = parsed.is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
    if ok {
        Ok(url.to_string())
    } else {
        Err(invalid(
            key,
            format!("{what} {url:?} must start with https:// or http://"),
        ))
    }
}

fn scope_list(
    key: &'static str,
    owner: &str,
    scopes: Vec<String>,
) -> Result<Vec<String>, ConfigError> {
    let ok = |s: &String| {
        !s.is_empty() && s.len() <= 256 && !s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\')
    };
    match scopes.iter().find(|s| !ok(s)) {
        Some(bad) => Err(invalid(
            key,
            format!("scope {bad:?} of {owner} is not a scope token"),
        )),
        None => Ok(scopes),
    }
}

pub(super) fn validate_gitlab(
    layers: Vec<GitlabLayer>,
    github: &[GithubHost],
) -> Result<Vec<GitlabHost>, ConfigError> {
    const KEY: &str = "gitlab";
    let mut hosts: Vec<GitlabHost> = Vec::new();
    for g in layers {
        let host = Host::parse(&g.host).map_err(|e| invalid(KEY, format!("host {e}")))?;
        if hosts.iter().any(|h| h.host == host) {
            return Err(invalid(KEY, format!("host {host} is configured twice")));
        }
        if github.iter().any(|h| h.host == host) {
            return Err(invalid(
                KEY,
                format!("host {host} is a [[github]] host too; a host is one or the other"),
            ));
        }
        let api_url = g
            .api_url
            .unwrap_or_else(|| format!("https://{host}/api/v4"));
        let web_url = g.web_url.unwrap_or_else(|| format!("https://{host}"));
        let oauth = match (g.client_id, g.client_secret_file) {
            (Some(id), Some(_)) if id.trim().is_empty() => {
                return Err(invalid(KEY, format!("client_id for {host} is empty")))
            }
            (Some(client_id), Some(client_secret_file)) => Some(ClientConfig {
                client_id,
                client_secret_file,
            }),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    KEY,
                    format!("client_id and client_secret_file for {host} go together"),
                ))
            }
        };
        let scopes = g
            .scopes
            .unwrap_or_else(|| DEFAULT_GITLAB_SCOPES.map(String::from).to_vec());
        // The namespace check after each connect needs API read access.
        if !scopes.iter().any(|s| s == "read_api" || s == "api") {
            return Err(invalid(KEY, format!("scopes for {host} must include read_api (or api): Lanyard checks namespaces with it")));
        }
        hosts.push(GitlabHost {
            api_url: http_url(KEY, &format!("api_url for {host}"), &api_url)?,
            web_url: http_url(KEY, &format!("web_url for {host}"), &web_url)?,
            scopes: scope_list(KEY, host.as_str(), scopes)?,
            host,
            oauth,
        });
    }
    Ok(hosts)
}

/// Checks a provider's name against the rule, the kinds and the names taken so far.
fn claim_name(
    key: &'static str,
    name: &str,
    taken: &mut BTreeSet<String>,
) -> Result<(), ConfigError> {
    if !name_ok(name) {
        return Err(invalid(
            key,
            format!("name {name:?} must be 1 to 32 of a-z, 0-9, _ and -"),
        ));
    }
    if KINDS.contains(&name) {
        return Err(invalid(
            key,
            format!("name {name:?} is a provider kind; choose another"),
        ));
    }
    if !taken.insert(name.to_string()) {
        return Err(invalid(
            key,
            format!("name {name:?} is used twice ([[oauth2]] and [[secret]] names are one space)"),
        ));
    }
    Ok(())
}

pub(super) fn validate_named(
    oauth2: Vec<Oauth2Layer>,
    secrets: Vec<SecretLayer>,
) -> Result<(Vec<Oauth2Provider>, Vec<SecretKind>), ConfigError> {
    let mut taken = BTreeSet::new();
    let mut providers = Vec::new();
    for o in oauth2 {
        const KEY: &str = "oauth2";
        claim_name(KEY, &o.name, &mut taken)?;
        let name = o.name;
        let what = |field: &str| format!("{field} of {name}");
        let optional = |field: &str, url: Option<String>| {
            url.map(|u| secure_url(KEY, &what(field), &u)).transpose()
        };
        if o.client_id.trim().is_empty() {
            return Err(invalid(KEY, format!("client_id of {name} is empty")));
        }
        if let Some(bad) = o.authorize_params.keys().find(|k| {
            matches!(
                k.as_str(),
                "client_id"
                    | "redirect_uri"
                    | "response_type"
                    | "state"
                    | "scope"
                    | "code_challenge"
                    | "code_challenge_method"
            )
        }) {
            return Err(invalid(
                KEY,
                format!("authorize_params of {name} may not set {bad:?}: Lanyard sets it"),
            ));
        }
        providers.push(Oauth2Provider {
            authorize_url: secure_url(KEY, &what("authorize_url"), &o.authorize_url)?,
            token_url: secure_url(KEY, &what("token_url"), &o.token_url)?,
            revoke_url: optional("revoke_url", o.revoke_url)?,
            userinfo_url: optional("userinfo_url", o.userinfo_url)?,
            client: ClientConfig {
                client_id: o.client_id,
                client_secret_file: o.client_secret_file,
            },
            scopes: scope_list(KEY, &name, o.scopes)?,
            authorize_params: o.authorize_params,
            refresh_revokes_previous: o.refresh_revokes_previous,
            name,
        });
    }
    let mut kinds = Vec::new();
    for s in secrets {
        const KEY: &str = "secret";
        claim_name(KEY, &s.name, &mut taken)?;
        let name = s.name;
        if s.fields.is_empty() || s.fields.len() > 32 {
            return Err(invalid(
                KEY,
                format!("fields of {name} must name 1 to 32 fields"),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut shown = BTreeSet::new();
        for field in &s.fields {
            if !name_ok(field) || !seen.insert(field.as_str()) || !shown.insert(camel(field)) {
                return Err(invalid(KEY, format!("field {field:?} of {name} must be 1 to 32 of a-z, 0-9, _ and -, named once (api_key and api-key are one name on the compatibility routes)")));
            }
        }
        let secret_fields: BTreeSet<String> = s.secret_fields.into_iter().collect();
        if let Some(stray) = secret_fields.iter().find(|f| !seen.contains(f.as_str())) {
            return Err(invalid(
                KEY,
                format!("secret field {stray:?} of {name} is not one of its fields"),
            ));
        }
        kinds.push(SecretKind {
            name,
            fields: s.fields,
            secret_fields,
        });
    }
    Ok((providers, kinds))
}
