//! The `lanyard` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use lanyard_core::{Email, SystemClock, TeamName, Tier};
use lanyard_server::config::{Config, ConfigError, Flags, Loaded};
use lanyard_server::domain::accounts::create_team;
use lanyard_server::domain::connections::{connect, Connect};
use lanyard_server::{app, telemetry};
use lanyard_store::NewTeam;
use secrecy::ExposeSecret;

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
struct Cli {
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
enum E2eCommand {
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
enum AdminCommand {
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
}

fn main() -> ExitCode {
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

fn load(common: &Common, listen: Option<String>) -> anyhow::Result<Config> {
    let flags = Flags {
        config: common.config.clone(),
        data_dir: common.data_dir.clone(),
        listen,
    };
    let Loaded {
        config,
        unknown_env,
    } = Config::from_process(&flags)?;
    telemetry::init(config.log_format);
    for name in unknown_env {
        tracing::warn!(variable = %name, "ignoring unknown LANYARD_* environment variable");
    }
    Ok(config)
}

/// Sends an e2e call and prints the response body; a non-2xx answer is an error.
async fn e2e_call(
    api: Option<String>,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<()> {
    let token = std::env::var("LANYARD_E2E_ACCOUNT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("LANYARD_E2E_ACCOUNT_TOKEN must be set to the server's e2e token")
        })?;
    let api = api
        .or_else(|| std::env::var("LANYARD_PUBLIC_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let api = api.trim_end_matches('/');
    let client = reqwest::Client::new();
    let response = request(&client, api)
        .header("x-e2e-token", token)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {api}: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("{body}");
    match status.as_u16() {
        200..=299 => Ok(()),
        404 => anyhow::bail!("{api} answered 404: the e2e surface is disabled there, or LANYARD_E2E_ACCOUNT_TOKEN is wrong"),
        code => anyhow::bail!("{api} answered {code}"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::E2e {
            command:
                E2eCommand::Create {
                    tier,
                    with_resources,
                    api,
                },
        } => {
            let mut body = serde_json::json!({ "with_resources": with_resources });
            if let Some(t) = tier {
                body["tier"] = t.into();
            }
            e2e_call(api, |c, api| {
                c.post(format!("{api}/internal/e2e/account")).json(&body)
            })
            .await
        }
        Command::E2e {
            command: E2eCommand::Reap { team_id, api },
        } => {
            e2e_call(api, |c, api| {
                c.delete(format!("{api}/internal/e2e/account/{team_id}"))
            })
            .await
        }
        Command::Openapi => {
            println!("{}", lanyard_server::routes::openapi_json());
            Ok(())
        }
        Command::Serve { listen } => {
            let config = load(&cli.common, listen)?;
            let server = app::start(config, Arc::new(SystemClock)).await?;
            server.run_until(app::shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let config = load(&cli.common, None)?;
            let store = app::open_store(&config).await?;
            store.close().await;
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::ConnectGithub {
                    team,
                    host,
                    owner,
                    installation_id,
                    pat_file,
                },
        } => {
            let pat = pat_file
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map(|s| secrecy::SecretString::from(s.trim().to_string()))
                        .map_err(|e| anyhow::anyhow!("--pat-file {}: {e}", path.display()))
                })
                .transpose()?;
            let config = load(&cli.common, None)?;
            let secrets = lanyard_server::secrets::resolve(&config)?;
            let store = app::open_store(&config).await?;
            let hosts =
                lanyard_server::broker::GithubHosts::from_config(&config, Arc::new(SystemClock))?;
            let sealer = lanyard_server::state::sealer(&secrets)?;
            if store.get_team(team).await?.is_none() {
                store.close().await;
                anyhow::bail!("--team: no team {team}");
            }
            let input = Connect {
                host,
                owner,
                installation_id,
                pat,
            };
            let result = connect(
                &store,
                &hosts,
                &sealer,
                &SystemClock,
                team,
                input,
                "cli:admin",
            )
            .await;
            store.close().await;
            let record = result.map_err(|e| anyhow::anyhow!("{} ({})", e.message(), e.code))?;
            let out = serde_json::json!({
                "connection_id": record.id,
                "host": record.host,
                "owner": record.owner,
                "kind": record.kind.as_str(),
                "installation_id": record.installation_id,
            });
            println!("{out}");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateTeam {
                    name,
                    tier,
                    test_cohort,
                    email,
                },
        } => {
            let name = TeamName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let tier: Tier = tier.parse().map_err(|e| anyhow::anyhow!("--tier: {e}"))?;
            let primary_user = email
                .map(|e| Email::parse(&e).map_err(|err| anyhow::anyhow!("--email: {err}")))
                .transpose()?;
            let config = load(&cli.common, None)?;
            let store = app::open_store(&config).await?;
            let input = NewTeam {
                name,
                tier,
                is_test_cohort: test_cohort,
                primary_user,
                actor: "cli:admin".into(),
                extra_audit: vec![],
            };
            let created = create_team(&store, &SystemClock, &input).await;
            store.close().await;
            let created = created?;
            let out = serde_json::json!({
                "team_id": created.team.id,
                "api_key": created.api_key.expose_secret(),
                "tier": created.team.tier.as_str(),
            });
            println!("{out}");
            Ok(())
        }
    }
}
