//! The `lanyard` command: parses the command line and calls the same domain functions as the
//! HTTP routes, through one [`Services`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use lanyard_core::SystemClock;
use tracing_appender::non_blocking::WorkerGuard;

use crate::config::{self, Config, Flags, Loaded};
use crate::services::Services;
use crate::{server, telemetry};

mod admin;
mod args;
#[cfg(feature = "dev")]
mod dev;
mod doctor;
mod e2e;
mod failure;
mod ops;

pub use args::Cli;
use args::{AdminCommand, Command, Common, E2eCommand};

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
        Err(e) => {
            let report = failure::Report::of(&e);
            eprintln!("{}", report.line());
            report.exit_code()
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

/// Where the configuration came from, for `doctor`'s first line.
fn config_source(common: &Common) -> String {
    let file = common
        .config
        .clone()
        .or_else(|| std::env::var_os("LANYARD_CONFIG").map(PathBuf::from));
    let vars = std::env::vars()
        .filter(|(k, _)| k.starts_with("LANYARD_"))
        .count();
    match file {
        Some(f) => format!("loaded from {} and {vars} LANYARD_* variables", f.display()),
        None => format!("loaded from defaults and {vars} LANYARD_* variables"),
    }
}

/// The services for an operator command: the configured database, without a listener.
async fn services(config: Config) -> anyhow::Result<Services> {
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    Services::open(config, public_url, Arc::new(SystemClock)).await
}

#[cfg(feature = "dev")]
async fn serve_dev(
    listen: Option<String>,
    lifetime: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let listen = dev::dev_listen(listen.as_deref())?;
    dev::run(listen, lifetime.unwrap_or(dev::DEFAULT_TOKEN_LIFETIME)).await
}

#[cfg(not(feature = "dev"))]
async fn serve_dev(
    _listen: Option<String>,
    _lifetime: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    anyhow::bail!("this lanyard was built without dev mode, which is opt-in: run `cargo run --features dev --bin lanyard -- serve --dev` in a checkout of Lanyard")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            dev: true,
            dev_token_lifetime,
        } => {
            if cli.common.config.is_some() || cli.common.data_dir.is_some() {
                return Err(failure::bad(
                    "dev",
                    "it reads no configuration and keeps its data in a throwaway directory: leave out --config and --data-dir",
                ));
            }
            serve_dev(listen, dev_token_lifetime).await
        }
        Command::Doctor { json } => {
            let report = match load(&cli.common, None) {
                Ok((config, _logs)) => {
                    let source = config_source(&cli.common);
                    doctor::run(&config, source).await
                }
                Err(e) => doctor::unloadable(&e),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.ok() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Completions { shell } => {
            ops::completions(shell);
            Ok(())
        }
        Command::Man { dir } => ops::man(dir.as_deref()),
        Command::Healthcheck { url } => {
            // The address serve would listen on, from the same layers; a configuration that
            // does not load falls back to LANYARD_LISTEN and the default.
            let flags = Flags {
                config: cli.common.config.clone(),
                data_dir: cli.common.data_dir.clone(),
                listen: None,
            };
            let listen = match Config::from_process(&flags) {
                Ok(loaded) => loaded.config.listen,
                Err(_) => std::env::var("LANYARD_LISTEN")
                    .ok()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or_else(|| config::DEFAULT_LISTEN.parse().expect("a valid default")),
            };
            ops::healthcheck(url, listen).await
        }
        Command::E2e { command } => e2e::run(command).await,
        Command::Openapi => {
            println!("{}", crate::http::routes::openapi_json());
            Ok(())
        }
        Command::Serve { listen, .. } => {
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
