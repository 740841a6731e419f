//! Configuration (CONTRACT §2): defaults, then a TOML file, then `LANYARD_*` env, then flags.
//!
//! figment merges the sources (see [`sources`]); [`Config::load`] validates the result once, so
//! every error names the key and the variable that set it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lanyard_store::DatabaseUrl;
use secrecy::{ExposeSecret, SecretString};

use github::validate_github;
pub use github::{origin_of, GithubHost, DEFAULT_MAX_CONCURRENT_MINTS, MAX_CONCURRENT_MINTS_LIMIT};
pub use providers::{ClientConfig, GitlabHost, Oauth2Provider, SecretKind, DEFAULT_GITLAB_SCOPES};
pub use seed::{E2eSeed, SeedCredential};
pub use sources::{env_name, known_variables, require_private, worker_env_name, Setting, SETTINGS};
use sources::{EnvSource, Layer};
pub use workers::{Smtp, WorkerSettings, DEFAULT_SMTP_FROM};

mod github;
mod providers;
mod seed;
mod sources;
#[cfg(test)]
mod tests;
mod values;
mod workers;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./.lanyard";
pub const DEFAULT_TOKEN_MIN_REMAINING: Duration = Duration::from_secs(15 * 60);

/// Limits on the server's sockets: what a slow or greedy client can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The longest a connection may take to send a request's head, counted from when it opens or
    /// from its previous response: it is also how long a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// The longest a request may take, its body included, before it is answered 408.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            // Above the longest GitHub call (5 s to connect, 20 s to answer) with room for a
            // mint that waits on another replica's.
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}
/// A shared secret shorter than this is refused.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub use lanyard_broker::redis_conn::RedisUrl;

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
    /// Enables the admin API (`/admin/v1/...`) when set.
    pub admin_token: Option<SecretString>,
    /// Origins the installation flow may redirect to; empty means the public URL's origin.
    pub allowed_return_origins: Vec<String>,
    pub token_min_remaining: Duration,
    pub log_format: LogFormat,
    /// A separate listener for `/metrics`; the main one then answers it as an unknown route.
    pub metrics_listen: Option<SocketAddr>,
    pub http: HttpLimits,
    pub github: Vec<GithubHost>,
    /// `[[gitlab]]` hosts, `[[oauth2]]` providers and `[[secret]]` kinds (CONTRACT §14).
    pub gitlab: Vec<GitlabHost>,
    pub oauth2: Vec<Oauth2Provider>,
    pub secrets: Vec<SecretKind>,
    /// Where notifications go; `None` keeps them, marked undeliverable.
    pub smtp: Option<Smtp>,
    pub workers: WorkerSettings,
    /// `[e2e_seed]`: the connection and repositories of a test account's seeded session.
    pub e2e_seed: Option<E2eSeed>,
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
    /// The cause is in the message and not a `source`, so a chain prints it once.
    #[error("cannot read config file {path}: {error}")]
    ReadFile {
        path: PathBuf,
        error: std::io::Error,
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
        let path = flags
            .config
            .clone()
            .or_else(|| env.get("LANYARD_CONFIG").map(PathBuf::from));
        let text = path
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path).map_err(|error| ConfigError::ReadFile {
                    path: path.clone(),
                    error,
                })
            })
            .transpose()?;
        let env = EnvSource::read(env)?;
        let file = path.as_deref().zip(text.as_deref());
        let layer = sources::merge(file, &env, flags)?;
        Ok(Loaded {
            config: Self::validate(layer)?,
            unknown_env: env.unknown,
        })
    }

    fn validate(mut layer: Layer) -> Result<Self, ConfigError> {
        let http = http_limits(&layer);
        let smtp = workers::smtp(&mut layer)?;
        let worker_settings = workers::worker_settings(&mut layer)?;
        let listen = layer
            .listen
            .or(DEFAULT_LISTEN.parse().expect("the default address"));
        let data_dir = layer.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let database_url = layer
            .database_url
            .or_else(|| DatabaseUrl::sqlite_in(&data_dir));
        let redis_url = layer.redis_url.0;
        let jwt_secret = layer.jwt_secret;
        if let Some(secret) = &jwt_secret {
            check_secret_length("jwt_secret (LANYARD_JWT_SECRET)", secret)?;
        }
        let encryption_key = layer.encryption_key;
        if let Some(key) = &encryption_key {
            check_encryption_key(key.expose_secret())?;
        }
        let e2e_account_token = layer.e2e_account_token;
        if let Some(token) = &e2e_account_token {
            check_secret_length("e2e_account_token (LANYARD_E2E_ACCOUNT_TOKEN)", token)?;
        }
        let admin_token = layer.admin_token;
        if let Some(token) = &admin_token {
            check_secret_length("admin_token (LANYARD_ADMIN_TOKEN)", token)?;
        }
        let allowed_return_origins = layer.allowed_return_origins.0.map(|o| o.0);
        let public_url = layer.public_url.0.map(|u| u.0);
        let token_min_remaining =
            (layer.token_min_remaining.0).map_or(DEFAULT_TOKEN_MIN_REMAINING, |f| f.0);
        let log_format = layer.log_format.or(LogFormat::Text);
        let metrics_listen = layer.metrics_listen.0;
        let github: Vec<GithubHost> = layer
            .github
            .unwrap_or_default()
            .into_iter()
            .map(validate_github)
            .collect::<Result<_, _>>()?;
        let e2e_seed = seed::validate_seed(layer.e2e_seed, &github)?;
        let gitlab = providers::validate_gitlab(layer.gitlab.unwrap_or_default(), &github)?;
        let (oauth2, secrets) = providers::validate_named(
            layer.oauth2.unwrap_or_default(),
            layer.secret.unwrap_or_default(),
        )?;
        Ok(Config {
            listen,
            data_dir,
            database_url,
            redis_url,
            jwt_secret,
            encryption_key,
            public_url,
            e2e_account_token,
            admin_token,
            allowed_return_origins: allowed_return_origins.unwrap_or_default(),
            token_min_remaining,
            log_format,
            metrics_listen,
            http,
            github,
            gitlab,
            oauth2,
            secrets,
            smtp,
            workers: worker_settings,
            e2e_seed,
        })
    }
}

fn http_limits(layer: &Layer) -> HttpLimits {
    let defaults = HttpLimits::default();
    HttpLimits {
        header_timeout: (layer.http_header_timeout.0).map_or(defaults.header_timeout, |d| d.0),
        request_timeout: (layer.http_request_timeout.0).map_or(defaults.request_timeout, |d| d.0),
        max_connections: (layer.http_max_connections.0).map_or(defaults.max_connections, |n| n.0),
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
