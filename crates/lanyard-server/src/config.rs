//! Configuration (CONTRACT §2): defaults, then a TOML file, then `LANYARD_*` env, then flags.
//!
//! Every source fills the same [`Layer`]; later layers win key by key. [`Config::load`] merges
//! them and validates once, so every error names the key and the variable that set it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanyard_core::redact::redact_url;
use lanyard_core::{format_duration, parse_duration};
use lanyard_store::DatabaseUrl;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./.lanyard";
pub const DEFAULT_TOKEN_MIN_REMAINING: Duration = Duration::from_secs(15 * 60);
/// A shared secret shorter than this is refused.
pub const MIN_SECRET_BYTES: usize = 32;

/// `LANYARD_*` variables that belong to the runner, not the server; they earn no warning.
const RUNNER_VARIABLES: &[&str] = &[
    "LANYARD_API_URL",
    "LANYARD_SESSION_ID",
    "LANYARD_RUNNER_TOKEN_FILE",
    "LANYARD_RUNNER_SOCKET",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One configured GitHub host (CONTRACT §2, `[[github]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubHost {
    /// Host (and port) as it appears in repo URLs.
    pub host: String,
    pub api_url: String,
    pub app_id: Option<u64>,
    pub private_key_file: Option<PathBuf>,
}

/// A Redis URL that redacts its password when printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl")
            .field(&redact_url(&self.0))
            .finish()
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The validated configuration. Secrets stay wrapped; `Debug` never shows them.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub redis_url: Option<RedisUrl>,
    /// `None` means: generate once and keep in the data dir.
    pub jwt_secret: Option<SecretString>,
    /// `None` means: generate once and keep in the data dir.
    pub encryption_key: Option<SecretString>,
    /// `None` means `http://<bound address>`.
    pub public_url: Option<String>,
    pub e2e_account_token: Option<SecretString>,
    pub token_min_remaining: Duration,
    pub log_format: LogFormat,
    pub github: Vec<GithubHost>,
}

/// What the command line adds on top.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl ConfigError {
    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key,
            message: message.into(),
        }
    }
}

/// One source's values. Every field is optional; `None` leaves the lower layer's value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    redis_url: Option<String>,
    jwt_secret: Option<SecretString>,
    encryption_key: Option<SecretString>,
    public_url: Option<String>,
    e2e_account_token: Option<SecretString>,
    token_min_remaining: Option<String>,
    log_format: Option<String>,
    github: Option<Vec<GithubLayer>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GithubLayer {
    host: String,
    api_url: Option<String>,
    app_id: Option<u64>,
    private_key_file: Option<PathBuf>,
}

impl Layer {
    fn merge(&mut self, over: Layer) {
        macro_rules! take {
            ($($field:ident),*) => { $( if over.$field.is_some() { self.$field = over.$field; } )* };
        }
        take!(
            listen,
            data_dir,
            database_url,
            redis_url,
            jwt_secret,
            encryption_key,
            public_url,
            e2e_account_token,
            token_min_remaining,
            log_format
        );
        if let Some(hosts) = over.github {
            let mut merged = self.github.take().unwrap_or_default();
            for host in hosts {
                merged.retain(|h| h.host != host.host);
                merged.push(host);
            }
            self.github = Some(merged);
        }
    }

    fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_path_buf(),
            message: e.message().to_string() + &line_hint(text, e.span()),
        })
    }

    /// Reads `LANYARD_*` variables; returns the names it did not recognise.
    fn from_env(env: &BTreeMap<String, String>) -> Result<(Self, Vec<String>), ConfigError> {
        let mut layer = Layer::default();
        let mut unknown = Vec::new();
        let mut gh_host = None;
        let mut gh_api = None;
        let mut gh_app_id = None;
        let mut gh_key = None;
        for (name, value) in env.iter().filter(|(k, _)| k.starts_with("LANYARD_")) {
            let value = value.clone();
            match name.as_str() {
                "LANYARD_CONFIG" => {}
                "LANYARD_LISTEN" => layer.listen = Some(value),
                "LANYARD_DATA_DIR" => layer.data_dir = Some(value.into()),
                "LANYARD_DATABASE_URL" => layer.database_url = Some(value),
                "LANYARD_REDIS_URL" => layer.redis_url = Some(value),
                "LANYARD_JWT_SECRET" => layer.jwt_secret = Some(value.into()),
                "LANYARD_ENCRYPTION_KEY" => layer.encryption_key = Some(value.into()),
                "LANYARD_PUBLIC_URL" => layer.public_url = Some(value),
                "LANYARD_E2E_ACCOUNT_TOKEN" => layer.e2e_account_token = Some(value.into()),
                "LANYARD_TOKEN_MIN_REMAINING" => layer.token_min_remaining = Some(value),
                "LANYARD_LOG_FORMAT" => layer.log_format = Some(value),
                "LANYARD_GITHUB_HOST" => gh_host = Some(value),
                "LANYARD_GITHUB_API_URL" => gh_api = Some(value),
                "LANYARD_GITHUB_APP_ID" => {
                    gh_app_id = Some(value.trim().parse::<u64>().map_err(|_| {
                        ConfigError::invalid("LANYARD_GITHUB_APP_ID", "must be a positive integer")
                    })?)
                }
                "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE" => gh_key = Some(PathBuf::from(value)),
                other if RUNNER_VARIABLES.contains(&other) => {}
                other => unknown.push(other.to_string()),
            }
        }
        if gh_host.is_some() || gh_api.is_some() || gh_app_id.is_some() || gh_key.is_some() {
            layer.github = Some(vec![GithubLayer {
                host: gh_host.unwrap_or_else(|| "github.com".into()),
                api_url: gh_api,
                app_id: gh_app_id,
                private_key_file: gh_key,
            }]);
        }
        Ok((layer, unknown))
    }

    fn from_flags(flags: &Flags) -> Self {
        Layer {
            listen: flags.listen.clone(),
            data_dir: flags.data_dir.clone(),
            ..Layer::default()
        }
    }
}

/// Points at the line of a TOML error, since toml's message alone has no position.
fn line_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| {
        format!(
            " (line {})",
            text[..s.start.min(text.len())].matches('\n').count() + 1
        )
    })
    .unwrap_or_default()
}

/// The result of loading: the config and the `LANYARD_*` variables nobody knows.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub unknown_env: Vec<String>,
}

impl Config {
    /// Loads from the process environment and the given flags.
    pub fn from_process(flags: &Flags) -> Result<Loaded, ConfigError> {
        Self::load(flags, &std::env::vars().collect())
    }

    /// Loads from an explicit environment (tests pass their own).
    pub fn load(flags: &Flags, env: &BTreeMap<String, String>) -> Result<Loaded, ConfigError> {
        let mut layer = Layer::default();
        let file = flags
            .config
            .clone()
            .or_else(|| env.get("LANYARD_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile {
                path: path.clone(),
                source,
            })?;
            layer.merge(Layer::from_toml(&path, &text)?);
        }
        let (env_layer, unknown_env) = Layer::from_env(env)?;
        layer.merge(env_layer);
        layer.merge(Layer::from_flags(flags));
        Ok(Loaded {
            config: Self::validate(layer)?,
            unknown_env,
        })
    }

    fn validate(layer: Layer) -> Result<Self, ConfigError> {
        let listen_raw = layer.listen.unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_raw.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "listen (LANYARD_LISTEN)",
                format!("{listen_raw:?} is not an IP:port address, like 127.0.0.1:8080"),
            )
        })?;
        let data_dir = layer.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let database_url = match layer.database_url {
            Some(raw) => DatabaseUrl::parse(&raw).map_err(|e| {
                ConfigError::invalid("database_url (LANYARD_DATABASE_URL)", e.to_string())
            })?,
            None => DatabaseUrl::sqlite_in(&data_dir),
        };
        let redis_url = layer
            .redis_url
            .filter(|s| !s.trim().is_empty())
            .map(|raw| {
                let raw = raw.trim().to_string();
                if !raw.starts_with("redis://") {
                    return Err(ConfigError::invalid(
                        "redis_url (LANYARD_REDIS_URL)",
                        format!("{} must start with redis://", redact_url(&raw)),
                    ));
                }
                redis::Client::open(raw.as_str()).map_err(|e| {
                    ConfigError::invalid(
                        "redis_url (LANYARD_REDIS_URL)",
                        format!(
                            "{} is not a valid Redis URL ({:?})",
                            redact_url(&raw),
                            e.kind()
                        ),
                    )
                })?;
                Ok(RedisUrl(raw))
            })
            .transpose()?;
        if let Some(secret) = &layer.jwt_secret {
            check_secret_length("jwt_secret (LANYARD_JWT_SECRET)", secret)?;
        }
        if let Some(key) = &layer.encryption_key {
            check_encryption_key(key.expose_secret())?;
        }
        if let Some(token) = &layer.e2e_account_token {
            check_secret_length("e2e_account_token (LANYARD_E2E_ACCOUNT_TOKEN)", token)?;
        }
        let public_url = layer
            .public_url
            .filter(|s| !s.trim().is_empty())
            .map(|raw| {
                let url = raw.trim().trim_end_matches('/').to_string();
                let host = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                match host {
                    Some(h) if !h.is_empty() => Ok(url),
                    _ => Err(ConfigError::invalid(
                        "public_url (LANYARD_PUBLIC_URL)",
                        format!("{raw:?} must be an absolute http:// or https:// URL"),
                    )),
                }
            })
            .transpose()?;
        let token_min_remaining = match layer.token_min_remaining {
            Some(raw) => {
                let key = "token_min_remaining (LANYARD_TOKEN_MIN_REMAINING)";
                let d =
                    parse_duration(&raw).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
                if d.is_zero() || d >= Duration::from_secs(3600) {
                    return Err(ConfigError::invalid(
                        key,
                        format!(
                            "{} must be more than 0s and less than 1h, the life of a GitHub App token",
                            format_duration(d)
                        ),
                    ));
                }
                d
            }
            None => DEFAULT_TOKEN_MIN_REMAINING,
        };
        let log_format = match layer.log_format.as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "log_format (LANYARD_LOG_FORMAT)",
                    format!("{other:?} is not one of text, json"),
                ))
            }
        };
        let github = layer
            .github
            .unwrap_or_default()
            .into_iter()
            .map(validate_github)
            .collect::<Result<_, _>>()?;
        Ok(Config {
            listen,
            data_dir,
            database_url,
            redis_url,
            jwt_secret: layer.jwt_secret,
            encryption_key: layer.encryption_key,
            public_url,
            e2e_account_token: layer.e2e_account_token,
            token_min_remaining,
            log_format,
            github,
        })
    }
}

fn check_secret_length(key: &'static str, secret: &SecretString) -> Result<(), ConfigError> {
    let len = secret.expose_secret().len();
    if len < MIN_SECRET_BYTES {
        return Err(ConfigError::invalid(
            key,
            format!("must be at least {MIN_SECRET_BYTES} bytes long, but it has {len}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_encryption_key(hex_key: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    bytes.ok_or_else(|| {
        ConfigError::invalid(
            "encryption_key (LANYARD_ENCRYPTION_KEY)",
            "must be 32 bytes written as 64 hex characters (try: openssl rand -hex 32)",
        )
    })
}

fn validate_github(h: GithubLayer) -> Result<GithubHost, ConfigError> {
    let key = "github (LANYARD_GITHUB_*)";
    let host = h.host.trim().to_ascii_lowercase();
    if host.is_empty() || host.contains("://") || host.contains('/') {
        return Err(ConfigError::invalid(
            key,
            format!(
                "host {:?} must be a bare host like github.com or ghe.example.com:8443",
                h.host
            ),
        ));
    }
    let api_url = match h.api_url {
        Some(url) => url.trim().trim_end_matches('/').to_string(),
        None if host == "github.com" => "https://api.github.com".to_string(),
        None => format!("https://{host}/api/v3"),
    };
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(ConfigError::invalid(
            key,
            format!("api_url {api_url:?} for {host} must start with https:// or http://"),
        ));
    }
    if h.app_id == Some(0) {
        return Err(ConfigError::invalid(
            key,
            format!("app_id for {host} must be positive"),
        ));
    }
    Ok(GithubHost {
        host,
        api_url,
        app_id: h.app_id,
        private_key_file: h.private_key_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("lanyard.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::load(&Flags::default(), &env(&[])).unwrap().config;
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.database_url.expose(), "sqlite://./.lanyard/lanyard.db");
        assert_eq!(c.token_min_remaining, Duration::from_secs(900));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.redis_url.is_none() && c.public_url.is_none() && c.github.is_empty());
    }

    #[test]
    fn layers_apply_in_order_file_then_env_then_flags() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = write(
            &dir,
            "listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\nlog_format = \"json\"\n",
        );
        let e = env(&[
            ("LANYARD_CONFIG", path.to_str().unwrap()),
            ("LANYARD_LISTEN", "127.0.0.1:2222"),
        ]);
        let c = Config::load(&Flags::default(), &e).unwrap().config;
        assert_eq!(c.listen.port(), 2222, "env beats file");
        assert_eq!(
            c.data_dir,
            PathBuf::from("/from/file"),
            "file beats default"
        );
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.database_url.expose(),
            "sqlite:///from/file/lanyard.db",
            "follows data_dir"
        );
        let flags = Flags {
            listen: Some("127.0.0.1:3333".into()),
            ..Flags::default()
        };
        assert_eq!(
            Config::load(&flags, &e).unwrap().config.listen.port(),
            3333,
            "flag beats env"
        );
    }

    #[test]
    fn unknown_file_key_is_an_error_naming_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = write(&dir, "listen = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n");
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let err = Config::load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("listen_adress") && err.contains("line 2"),
            "{err}"
        );

        let path = write(&dir, "[[github]]\nhost = \"ghe.test\"\napp_idd = 3\n");
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let err = Config::load(&flags, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("app_idd"), "{err}");
    }

    #[test]
    fn unknown_env_variables_are_reported_not_fatal() {
        let e = env(&[
            ("LANYARD_LISTN", "x"),
            ("LANYARD_SESSION_ID", "s"),
            ("OTHER", "y"),
        ]);
        let loaded = Config::load(&Flags::default(), &e).unwrap();
        assert_eq!(loaded.unknown_env, vec!["LANYARD_LISTN".to_string()]);
    }

    #[test]
    fn short_secrets_are_refused_naming_the_variable() {
        for var in ["LANYARD_JWT_SECRET", "LANYARD_E2E_ACCOUNT_TOKEN"] {
            let err = Config::load(&Flags::default(), &env(&[(var, "too-short")])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(var) && msg.contains("32 bytes"), "{msg}");
            assert!(
                !msg.contains("too-short"),
                "the secret itself is not echoed: {msg}"
            );
        }
        let ok = "x".repeat(32);
        assert!(Config::load(&Flags::default(), &env(&[("LANYARD_JWT_SECRET", &ok)])).is_ok());
        let err = Config::load(
            &Flags::default(),
            &env(&[("LANYARD_ENCRYPTION_KEY", "abcd")]),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("LANYARD_ENCRYPTION_KEY"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (var, value, needle) in [
            (
                "LANYARD_DATABASE_URL",
                "mysql://root:pw@h/db",
                "LANYARD_DATABASE_URL",
            ),
            ("LANYARD_LISTEN", "not-an-address", "LANYARD_LISTEN"),
            ("LANYARD_REDIS_URL", "http://h", "LANYARD_REDIS_URL"),
            (
                "LANYARD_PUBLIC_URL",
                "lanyard.example.com",
                "LANYARD_PUBLIC_URL",
            ),
            (
                "LANYARD_TOKEN_MIN_REMAINING",
                "2h",
                "LANYARD_TOKEN_MIN_REMAINING",
            ),
            (
                "LANYARD_TOKEN_MIN_REMAINING",
                "soon",
                "LANYARD_TOKEN_MIN_REMAINING",
            ),
            ("LANYARD_LOG_FORMAT", "xml", "LANYARD_LOG_FORMAT"),
            ("LANYARD_GITHUB_APP_ID", "abc", "LANYARD_GITHUB_APP_ID"),
        ] {
            let err = Config::load(&Flags::default(), &env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{var}={value}: {err}");
            assert!(!err.contains(":pw@"), "{err}");
        }
    }

    #[test]
    fn github_hosts_from_toml_and_the_env_shortcut() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = write(
            &dir,
            "[[github]]\nhost = \"ghe.example.com\"\napi_url = \"https://ghe.example.com/api/v3/\"\n\
             app_id = 12345\nprivate_key_file = \"/etc/lanyard/ghe-app.pem\"\n",
        );
        let e = env(&[
            ("LANYARD_CONFIG", path.to_str().unwrap()),
            ("LANYARD_GITHUB_APP_ID", "7"),
            ("LANYARD_GITHUB_APP_PRIVATE_KEY_FILE", "/k.pem"),
        ]);
        let c = Config::load(&Flags::default(), &e).unwrap().config;
        assert_eq!(c.github.len(), 2);
        assert_eq!(c.github[0].api_url, "https://ghe.example.com/api/v3");
        assert_eq!(c.github[1].host, "github.com");
        assert_eq!(c.github[1].api_url, "https://api.github.com");
        assert_eq!(c.github[1].app_id, Some(7));
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let jwt = "jwt-secret-value-that-is-long-enough-000";
        let enc = "ab".repeat(32);
        let e2e = "e2e-token-value-that-is-long-enough-0000";
        let e = env(&[
            ("LANYARD_JWT_SECRET", jwt),
            ("LANYARD_ENCRYPTION_KEY", &enc),
            ("LANYARD_E2E_ACCOUNT_TOKEN", e2e),
            (
                "LANYARD_DATABASE_URL",
                "postgres://lanyard:db-password-1@db/lanyard",
            ),
            (
                "LANYARD_REDIS_URL",
                "redis://:redis-password-2@127.0.0.1:6379",
            ),
        ]);
        let c = Config::load(&Flags::default(), &e).unwrap().config;
        let debug = format!("{c:?} {c:#?}");
        for secret in [jwt, enc.as_str(), e2e, "db-password-1", "redis-password-2"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("REDACTED") || debug.contains("***"));
    }
}
