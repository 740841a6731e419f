//! Where configuration values come from, merged by figment: the TOML file, then `LANYARD_*`
//! environment variables (with `_FILE` variants for secrets), then flags. Later sources win key
//! by key; [`super::Config::load`] validates the merged result once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::providers::{GitlabLayer, Oauth2Layer, SecretLayer};
use super::values::{ConnectionCount, Deadline, Floor, HttpUrl, Origins, Parsed, Unsettable};
use super::{ConfigError, Flags, LogFormat, RedisUrl};
use lanyard_store::DatabaseUrl;
use std::net::SocketAddr;

/// One merged view of every source. Every field is optional; `None` keeps the lower layer's.
/// No `Debug`: it holds secrets and URLs with passwords before validation wraps them.
/// Scalar values are typed ([`Parsed`]): each is parsed by its own rule as it is extracted.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct Layer {
    pub listen: Parsed<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Parsed<DatabaseUrl>,
    pub redis_url: Unsettable<RedisUrl>,
    pub jwt_secret: Option<SecretString>,
    pub encryption_key: Option<SecretString>,
    pub public_url: Unsettable<HttpUrl>,
    pub e2e_account_token: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub allowed_return_origins: Unsettable<Origins>,
    pub token_min_remaining: Parsed<Floor>,
    pub log_format: Parsed<LogFormat>,
    pub metrics_listen: Unsettable<SocketAddr>,
    pub http_header_timeout: Parsed<Deadline>,
    pub http_request_timeout: Parsed<Deadline>,
    pub http_max_connections: Parsed<ConnectionCount>,
    pub github: Option<Vec<GithubLayer>>,
    /// `[[gitlab]]`, `[[oauth2]]` and `[[secret]]` (CONTRACT §14): TOML only.
    pub gitlab: Option<Vec<GitlabLayer>>,
    pub oauth2: Option<Vec<Oauth2Layer>>,
    pub secret: Option<Vec<SecretLayer>>,
    pub smtp_url: Option<SecretString>,
    pub smtp_from: Option<String>,
    pub test_cohort_max_age: Option<String>,
    pub churn_after: Option<String>,
    /// `[workers.<name>]` tables; the environment's `LANYARD_WORKER_<NAME>_INTERVAL` merge in.
    pub workers: Option<BTreeMap<String, WorkerLayer>>,
    /// `[e2e_seed]`: what a test account's seeded session holds.
    pub e2e_seed: Option<super::seed::SeedLayer>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkerLayer {
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GithubLayer {
    pub host: String,
    pub api_url: Option<String>,
    pub app_id: Option<u64>,
    pub private_key_file: Option<PathBuf>,
    pub web_url: Option<String>,
    pub app_slug: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub webhook_secret_file: Option<PathBuf>,
    pub max_concurrent_mints: Option<u64>,
}

/// A scalar setting: its TOML key, and whether it is a secret (and so has a `_FILE` variant).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub secret: bool,
}

const fn setting(key: &'static str, secret: bool) -> Setting {
    Setting { key, secret }
}

/// Every scalar setting. Its environment variable is `LANYARD_` and the key in capitals.
pub const SETTINGS: &[Setting] = &[
    setting("listen", false),
    setting("data_dir", false),
    setting("database_url", true),
    setting("redis_url", true),
    setting("jwt_secret", true),
    setting("encryption_key", true),
    setting("public_url", false),
    Setting {
        key: "e2e_account_token",
        secret: true,
    },
    setting("admin_token", true),
    setting("allowed_return_origins", false),
    setting("token_min_remaining", false),
    setting("log_format", false),
    setting("metrics_listen", false),
    setting("http_header_timeout", false),
    setting("http_request_timeout", false),
    setting("http_max_connections", false),
    setting("smtp_url", true),
    setting("smtp_from", false),
    setting("test_cohort_max_age", false),
    setting("churn_after", false),
];

/// The shortcut for a single GitHub host.
const GITHUB_VARIABLES: &[&str] = &[
    "LANYARD_GITHUB_HOST",
    "LANYARD_GITHUB_API_URL",
    "LANYARD_GITHUB_APP_ID",
    "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
    "LANYARD_GITHUB_WEB_URL",
    "LANYARD_GITHUB_APP_SLUG",
    "LANYARD_GITHUB_CLIENT_ID",
    "LANYARD_GITHUB_CLIENT_SECRET_FILE",
    "LANYARD_GITHUB_WEBHOOK_SECRET_FILE",
    "LANYARD_GITHUB_MAX_CONCURRENT_MINTS",
];

/// `LANYARD_*` variables that belong to the runner or select the file; they earn no warning.
const OTHER_VARIABLES: &[&str] = &[
    "LANYARD_CONFIG",
    "LANYARD_API_URL",
    "LANYARD_SESSION_ID",
    "LANYARD_RUNNER_TOKEN_FILE",
    "LANYARD_RUNNER_SOCKET",
    "LANYARD_GH_OWNER",
];

pub fn env_name(key: &str) -> String {
    format!("LANYARD_{}", key.to_ascii_uppercase())
}

/// Every environment variable the server reads.
pub fn known_variables() -> Vec<String> {
    let mut names: Vec<String> = SETTINGS
        .iter()
        .flat_map(|s| {
            let name = env_name(s.key);
            let file = s.secret.then(|| format!("{name}_FILE"));
            std::iter::once(name).chain(file)
        })
        .collect();
    names.extend(GITHUB_VARIABLES.iter().map(|s| (*s).to_string()));
    names.extend(OTHER_VARIABLES.iter().map(|s| (*s).to_string()));
    names.extend(
        lanyard_core::Worker::ALL
            .iter()
            .map(|w| worker_env_name(*w)),
    );
    names
}

/// `LANYARD_WORKER_<NAME>_INTERVAL`.
pub fn worker_env_name(worker: lanyard_core::Worker) -> String {
    format!(
        "LANYARD_WORKER_{}_INTERVAL",
        worker.as_str().to_ascii_uppercase()
    )
}

/// The environment's contribution: string values (never re-typed, so a secret of digits stays
/// text), the GitHub shortcut, and the `LANYARD_*` names nobody knows.
#[derive(Debug, Default)]
pub(super) struct EnvSource {
    values: Dict,
    pub github: Option<GithubLayer>,
    pub unknown: Vec<String>,
}

impl EnvSource {
    pub fn read(env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut source = EnvSource::default();
        for setting in SETTINGS {
            let name = env_name(setting.key);
            let direct = env.get(&name);
            let file = setting
                .secret
                .then(|| env.get(&format!("{name}_FILE")))
                .flatten();
            let value = match (direct, file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid {
                        key: setting.key,
                        message: format!("set {name} or {name}_FILE, not both"),
                    })
                }
                (Some(v), None) => v.clone(),
                (None, Some(path)) => read_secret_file(setting.key, &name, Path::new(path))?,
                (None, None) => continue,
            };
            source.values.insert(setting.key.into(), Value::from(value));
        }
        source.github = github_shortcut(env)?;
        let mut workers = Dict::new();
        for &worker in lanyard_core::Worker::ALL {
            if let Some(interval) = env.get(&worker_env_name(worker)) {
                let mut table = Dict::new();
                table.insert("interval".into(), Value::from(interval.clone()));
                workers.insert(worker.as_str().into(), Value::from(table));
            }
        }
        if !workers.is_empty() {
            source.values.insert("workers".into(), Value::from(workers));
        }
        let known = known_variables();
        source.unknown = env
            .keys()
            .filter(|k| k.starts_with("LANYARD_") && !known.contains(k))
            .cloned()
            .collect();
        Ok(source)
    }
}

/// Refuses a secret file that anyone but its owner may read or write (looser than 0600), with a
/// message that says how to fix it. A file that cannot be inspected is left to the read that
/// follows, which names the problem.
pub fn require_private(path: &Path) -> Result<(), String> {
    match lanyard_core::file_mode::secret_file_problem(path) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

fn read_secret_file(key: &'static str, name: &str, path: &Path) -> Result<String, ConfigError> {
    require_private(path).map_err(|message| ConfigError::Invalid {
        key,
        message: format!("{name}_FILE: {message}"),
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        key,
        message: format!("{name}_FILE: cannot read {}: {e}", path.display()),
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn github_shortcut(env: &BTreeMap<String, String>) -> Result<Option<GithubLayer>, ConfigError> {
    if !GITHUB_VARIABLES.iter().any(|v| env.contains_key(*v)) {
        return Ok(None);
    }
    let app_id = env
        .get("LANYARD_GITHUB_APP_ID")
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                key: "github",
                message: "LANYARD_GITHUB_APP_ID must be a positive integer".into(),
            })
        })
        .transpose()?;
    let max_concurrent_mints = env
        .get("LANYARD_GITHUB_MAX_CONCURRENT_MINTS")
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                key: "github",
                message:
                    "LANYARD_GITHUB_MAX_CONCURRENT_MINTS must be a whole number from 1 to 1000"
                        .into(),
            })
        })
        .transpose()?;
    Ok(Some(GithubLayer {
        host: env
            .get("LANYARD_GITHUB_HOST")
            .cloned()
            .unwrap_or_else(|| "github.com".into()),
        api_url: env.get("LANYARD_GITHUB_API_URL").cloned(),
        app_id,
        private_key_file: env
            .get("LANYARD_GITHUB_APP_PRIVATE_KEY_FILE")
            .map(PathBuf::from),
        web_url: env.get("LANYARD_GITHUB_WEB_URL").cloned(),
        app_slug: env.get("LANYARD_GITHUB_APP_SLUG").cloned(),
        client_id: env.get("LANYARD_GITHUB_CLIENT_ID").cloned(),
        client_secret_file: env
            .get("LANYARD_GITHUB_CLIENT_SECRET_FILE")
            .map(PathBuf::from),
        webhook_secret_file: env
            .get("LANYARD_GITHUB_WEBHOOK_SECRET_FILE")
            .map(PathBuf::from),
        max_concurrent_mints,
    }))
}

impl Provider for EnvSource {
    fn metadata(&self) -> Metadata {
        Metadata::named("LANYARD_* environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.values.clone())]))
    }
}

#[derive(Debug, Default, Serialize)]
struct FlagValues {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
}

/// Merges the sources in order and extracts the layer; errors name the key and its source.
pub(super) fn merge(
    file: Option<(&Path, &str)>,
    env: &EnvSource,
    flags: &Flags,
) -> Result<Layer, ConfigError> {
    let mut figment = Figment::new();
    if let Some((_, text)) = file {
        figment = figment.merge(Toml::string(text));
    }
    figment = figment.merge(env).merge(Serialized::defaults(FlagValues {
        listen: flags.listen.clone(),
        data_dir: flags.data_dir.clone(),
    }));
    let mut layer: Layer = figment.extract().map_err(|e| explain(e, file))?;
    if let Some(host) = &env.github {
        let mut hosts = layer.github.take().unwrap_or_default();
        hosts.retain(|h| h.host != host.host);
        hosts.push(host.clone());
        layer.github = Some(hosts);
    }
    Ok(layer)
}

/// One sentence for a figment error: the key, what is wrong, and where it was set.
fn explain(e: figment::Error, file: Option<(&Path, &str)>) -> ConfigError {
    let from_file = e.metadata.as_ref().is_some_and(|m| m.name.contains("TOML"));
    let from_flags = (e.metadata.as_ref()).is_some_and(|m| m.name.ends_with("FlagValues"));
    let key = e.path.join(".");
    // A top-level setting is also named as the environment names it, or as its flag.
    let also = match SETTINGS.iter().find(|s| s.key == key) {
        Some(_) if from_flags => format!(" (--{})", key.replace('_', "-")),
        Some(_) => format!(" ({})", env_name(&key)),
        None => String::new(),
    };
    let problem = match &e.kind {
        figment::error::Kind::UnknownField(name, _) => format!("unknown key `{name}`"),
        // A syntax error belongs to no key. Its message quotes the offending line after the
        // first; that line may hold a secret, so only the first (where it is) is kept.
        other if key.is_empty() => other
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .trim()
            .to_string(),
        other => format!("`{key}`{also}: {other}"),
    };
    match file {
        Some((path, text)) if from_file => {
            let needle = match &e.kind {
                figment::error::Kind::UnknownField(name, _) => name.clone(),
                _ => e.path.last().cloned().unwrap_or_default(),
            };
            ConfigError::Toml {
                path: path.to_path_buf(),
                message: problem + &line_hint(text, &needle),
            }
        }
        _ => ConfigError::Invalid {
            key: if from_flags { "flags" } else { "environment" },
            message: problem,
        },
    }
}

/// Points at the first line that sets `key`, since figment's errors carry no position.
fn line_hint(text: &str, key: &str) -> String {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| format!(" (line {})", i + 1))
        .unwrap_or_default()
}
