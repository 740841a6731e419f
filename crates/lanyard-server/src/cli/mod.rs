//! The `lanyard` command: parses the command line and calls the same domain functions as the
//! HTTP routes, through one [`Services`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use lanyard_core::SystemClock;
use tracing_appender::non_blocking::WorkerGuard;

use crate::config::{Config, ConfigError, Flags, Loaded};
use crate::services::Services;
use crate::{server, telemetry};

mod admin;
mod e2e;

#[derive(Debug, Parser)]
#[command(
    name = "lanyard",
    version,
    about = "Lanyard: short-lived GitHub credentials for AI-agent sessions, and guarded test accounts",
    long_about = "Lanyard brokers GitHub App installation tokens and PATs for long-running agent \
                  sessions, serving each with its true expiry.\n\nConfiguration is layered: \
                  defaults, then the TOML file (--config or LANYARD_CONFIG), then LANYARD_* \
                  environment variables, then flags. With no configuration, Lanyard keeps an \
                  embedded SQLite database and its generated secrets in ./.lanyard."
)]
pub struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// TOML configuration file [env: LANYARD_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the embedded database and generated secrets live [env: LANYARD_DATA_DIR] [default: ./.lanyard]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies migrations first, then logs the address it listens on)
    Serve {
        /// Listen address; port 0 picks a free port [env: LANYARD_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply database migrations and exit (idempotent)
    Migrate,
    /// Operator commands that act on the database directly
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the OpenAPI document that the server serves at /openapi.json
    Openapi,
    /// CI client for guarded test accounts; reads the token from LANYARD_E2E_ACCOUNT_TOKEN
    E2e {
        #[command(subcommand)]
        command: E2eCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum E2eCommand {
    /// Create an isolated test-cohort team; prints the response JSON (team_id, session_jwt, ...)
    Create {
        /// anonymous, free, hobby, hobby_plus or pro (default free)
        #[arg(long)]
        tier: Option<String>,
        /// Also seed one active session and return its runner token
        #[arg(long)]
        with_resources: bool,
        /// Lanyard's base URL [env: LANYARD_PUBLIC_URL] [default: http://127.0.0.1:8080]
        #[arg(long, value_name = "URL")]
        api: Option<String>,
    },
    /// Reap a test team: stop its sessions, revoke their tokens, delete it (never a real team)
    Reap {
        /// The test team's id
        team_id: String,
        /// Lanyard's base URL [env: LANYARD_PUBLIC_URL] [default: http://127.0.0.1:8080]
        #[arg(long, value_name = "URL")]
        api: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Create a team and its first API key; prints {team_id, api_key, tier} as JSON.
    /// The API key is shown only this once.
    CreateTeam {
        /// The team's display name
        #[arg(long)]
        name: String,
        /// anonymous, free, hobby, hobby_plus, pro, team or growth
        #[arg(long, default_value = "free")]
        tier: String,
        /// Mark the team as a test cohort (skipped by billing and email workers)
        #[arg(long)]
        test_cohort: bool,
        /// Also create a verified primary user with this email (the git identity agents commit as)
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// The platform's id for the team: if a team has it already, that team is printed with
        /// "created": false and no new key
        #[arg(long, value_name = "ID")]
        external_id: Option<String>,
        /// Where notifications go (else the primary user)
        #[arg(long, value_name = "EMAIL")]
        notification_email: Option<String>,
    },
    /// Change a team's name, tier or notification address; prints the team as JSON
    UpdateTeam {
        #[arg(long, value_name = "TEAM_ID")]
        team: uuid::Uuid,
        #[arg(long)]
        name: Option<String>,
        /// anonymous, free, hobby, hobby_plus, pro, team or growth
        #[arg(long)]
        tier: Option<String>,
        /// A new address; an empty value clears it
        #[arg(long, value_name = "EMAIL")]
        notification_email: Option<String>,
    },
    /// Issue another API key for a team; prints {key_id, api_key} as JSON (shown only once)
    IssueKey {
        #[arg(long, value_name = "TEAM_ID")]
        team: uuid::Uuid,
        #[arg(long, default_value = "default")]
        label: String,
    },
    /// Delete a team: stops its sessions (revoking their GitHub tokens), deletes its keys and
    /// connections, keeps its audit. Prints {team_id, sessions_stopped, team_deleted} as JSON
    DeleteTeam {
        #[arg(long, value_name = "TEAM_ID")]
        team: uuid::Uuid,
    },
    /// Bind a GitHub owner (org or user) on a host to a team, by App installation (checked with
    /// GitHub) or by a PAT read from a file. Prints the connection as JSON.
    ConnectGithub {
        /// The team id (from create-team)
        #[arg(long, value_name = "TEAM_ID")]
        team: uuid::Uuid,
        /// The host as it appears in repo URLs, e.g. github.com (must be configured)
        #[arg(long)]
        host: String,
        /// The GitHub user or organisation
        #[arg(long)]
        owner: String,
        /// The GitHub App installation on that owner
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "pat_file",
            required_unless_present = "pat_file"
        )]
        installation_id: Option<u64>,
        /// A file holding a personal access token (stored encrypted)
        #[arg(long, value_name = "FILE")]
        pat_file: Option<PathBuf>,
    },
    /// List the background workers: each one's last run, its result and its next run, as
    /// recorded in the database that every replica shares
    Workers {
        /// Print {workers: [{worker, last_run, result, next_run}]} as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command line; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("error: configuration: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration as `serve` does and starts logging; keep the guard while logging.
fn load(common: &Common, listen: Option<String>) -> anyhow::Result<(Config, WorkerGuard)> {
    let flags = Flags {
        config: common.config.clone(),
        data_dir: common.data_dir.clone(),
        listen,
    };
    let Loaded {
        config,
        unknown_env,
    } = Config::from_process(&flags)?;
    let guard = telemetry::init(config.log_format);
    for name in unknown_env {
        tracing::warn!(variable = %name, "ignoring unknown LANYARD_* environment variable");
    }
    Ok((config, guard))
}

/// The services for an operator command: the configured database, without a listener.
async fn services(config: Config) -> anyhow::Result<Services> {
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    Services::open(config, public_url, Arc::new(SystemClock)).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::E2e { command } => e2e::run(command).await,
        Command::Openapi => {
            println!("{}", crate::http::routes::openapi_json());
            Ok(())
        }
        Command::Serve { listen } => {
            let (config, _logs) = load(&cli.common, listen)?;
            let stop = server::shutdown_signal()?;
            let server = server::start(config, Arc::new(SystemClock)).await?;
            server.run_until(stop).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let (config, _logs) = load(&cli.common, None)?;
            let store = crate::services::open_store(&config).await?;
            store.close().await;
            Ok(())
        }
        Command::Admin { command } => {
            let action = admin::parse(command)?;
            let (config, _logs) = load(&cli.common, None)?;
            let svc = services(config).await?;
            let result = admin::run(&svc, action).await;
            svc.store().close().await;
            result
        }
    }
}
