//! The `lanyard-runner` command.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lanyard_core::{parse_duration, SystemClock};
use lanyard_runner::client::ApiClient;
use lanyard_runner::client::EndCause;
use lanyard_runner::engine::Engine;
use lanyard_runner::ipc;
use lanyard_runner::policy::Policy;
use lanyard_runner::supervise::{self, Outcome};
use lanyard_runner::EXIT_START_FAILED;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    name = "lanyard-runner",
    version,
    about = "Keeps an agent's GitHub credentials fresh for days, for git and gh",
    long_about = "lanyard-runner runs an agent command with GitHub credentials that never go stale.\n\n\
        It fetches the session's credentials from Lanyard, refreshes them in the background, and \
        serves them on a private socket: git gets them through a credential helper wired in with \
        GIT_CONFIG_* variables (no config file is written, no token is put in a URL), and `gh` \
        through a shim on PATH. Inside the agent, `lanyard-runner token`, `status` and \
        `git-credential` need no flags."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Session {
    /// Lanyard's base URL
    #[arg(long = "api", env = "LANYARD_API_URL", value_name = "URL")]
    api: Option<String>,
    /// The session id
    #[arg(long, env = "LANYARD_SESSION_ID", value_name = "ID")]
    session: Option<String>,
    /// File holding the runner token (lrt_…); re-read on every use, so it can be rotated
    #[arg(long, env = "LANYARD_RUNNER_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run CMD with credentials kept fresh; exits with CMD's exit code
    #[command(after_help = "Exit status:\n  \
        CMD's own exit status when CMD exits (128+N when signal N ended it)\n  \
        3    the runner could not start: bad token, unknown session, Lanyard unreachable\n  \
        4    the session ended at the server (410: stopped or expired); CMD was stopped\n  \
        5    the server refused the runner token after start (401: revoked, or the team is gone); CMD was stopped\n  \
        6    the server no longer knows the session after start (404); CMD was stopped\n  \
        127  CMD could not be run\n\n\
        When CMD is stopped it gets SIGTERM, then SIGKILL to its whole process group after --grace.")]
    Run {
        #[command(flatten)]
        session: Session,
        /// Refresh at least this often
        #[arg(long, default_value = "60s", value_parser = duration)]
        refresh_interval: Duration,
        /// Refresh when a token is this close to expiry
        #[arg(long, default_value = "5m", value_parser = duration)]
        refresh_buffer: Duration,
        /// After SIGTERM, how long CMD has before SIGKILL when the session ends
        #[arg(long, default_value = "10s", value_parser = duration)]
        grace: Duration,
        /// The agent command and its arguments
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// A git credential helper: answers get with username=x-access-token and a fresh token
    GitCredential {
        /// get, store or erase (git passes it)
        #[arg(value_parser = ["get", "store", "erase"])]
        action: String,
    },
    /// Print a token that meets the runner's refresh policy (for scripts)
    Token {
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        session: Session,
    },
    /// Print each credential's source, expiry and refresh state (never a token)
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or with --dir write one page per command into DIR
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Used by the gh shim: run the real gh with a fresh token
    #[command(hide = true)]
    GhShim {
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: stderr sent to a file or a log collector stays
    // plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if std::env::var("LANYARD_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lanyard-runner: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

mod commands;

fn session_client(s: &Session) -> Result<ApiClient, String> {
    let api = s
        .api
        .clone()
        .ok_or("--api (or LANYARD_API_URL) is required")?;
    let session = s
        .session
        .clone()
        .ok_or("--session (or LANYARD_SESSION_ID) is required")?;
    let token_file = s
        .token_file
        .clone()
        .ok_or("--token-file (or LANYARD_RUNNER_TOKEN_FILE) is required")?;
    ApiClient::new(&api, &session, token_file).map_err(|e| format!("--api: {e}"))
}

async fn run(cli: Cli) -> i32 {
    match cli.command {
        Cmd::Run {
            session,
            refresh_interval,
            refresh_buffer,
            grace,
            cmd,
        } => {
            init_logs();
            run_agent(
                &session,
                Policy {
                    interval: refresh_interval,
                    buffer: refresh_buffer,
                },
                grace,
                cmd,
            )
            .await
        }
        Cmd::GitCredential { action } => commands::git_credential(&action).await,
        Cmd::Token {
            host,
            owner,
            session,
        } => {
            let client = session_client(&session);
            commands::token(host, owner, client).await
        }
        Cmd::Status { json } => commands::status(json).await,
        Cmd::GhShim { args } => commands::gh_shim(args).await,
        Cmd::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                shell,
                &mut command,
                "lanyard-runner",
                &mut std::io::stdout(),
            );
            0
        }
        Cmd::Man { dir } => match man(dir.as_deref()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("lanyard-runner man: {e}");
                1
            }
        },
    }
}

/// `lanyard-runner.1` on stdout, or a page per command into `dir`.
fn man(dir: Option<&std::path::Path>) -> std::io::Result<()> {
    let command = <Cli as clap::CommandFactory>::command();
    match dir {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)
        }
    }
}

/// A private directory for the socket and the shim, removed on exit.
fn private_dir() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let name = format!(
        "lanyard-runner-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let dir = base.join(name);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

async fn run_agent(session: &Session, policy: Policy, grace: Duration, cmd: Vec<String>) -> i32 {
    let client = match session_client(session) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lanyard-runner: {e}");
            return 2;
        }
    };
    let (api, session_id) = (client.api().to_string(), client.session().to_string());
    let engine = match Engine::start(client, Arc::new(SystemClock), policy).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("lanyard-runner: cannot start session {session_id}: {e}");
            return EXIT_START_FAILED;
        }
    };
    for s in engine.status() {
        tracing::info!(host = %s.host, owner = %s.owner, source = %s.source, expires_at = %lanyard_runner::engine::expiry(s.expires_at), "credential ready");
    }
    let dir = match private_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("lanyard-runner: cannot create a private directory: {e}");
            return EXIT_START_FAILED;
        }
    };
    let result = supervise_in(&dir, engine, &api, &session_id, grace, &cmd).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn supervise_in(
    dir: &std::path::Path,
    engine: Arc<Engine>,
    api: &str,
    session_id: &str,
    grace: Duration,
    cmd: &[String],
) -> i32 {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("lanyard-runner"));
    let bin = dir.join("bin");
    let bound = ipc::bind(dir).and_then(|b| supervise::write_gh_shim(&bin, &exe).map(|()| b));
    let (listener, socket) = match bound {
        Ok(b) => b,
        Err(e) => {
            eprintln!("lanyard-runner: cannot set up {}: {e}", dir.display());
            return EXIT_START_FAILED;
        }
    };
    let (stop, stopped) = watch::channel(false);
    let refresher = tokio::spawn(engine.clone().run(stopped.clone()));
    let server = tokio::spawn(ipc::serve(listener, engine.clone(), stopped));
    let env = supervise::child_env(&exe, &bin, &socket, api, session_id);
    let code = match supervise::spawn(cmd, &env) {
        Err(e) => {
            eprintln!("lanyard-runner: cannot run {:?}: {e}", cmd[0]);
            127
        }
        Ok(child) => match supervise::supervise(child, engine.ended(), grace).await {
            Ok(Outcome::Exited(status)) => supervise::exit_code(status),
            Ok(Outcome::SessionEnded { ended, .. }) => {
                let why = match ended.cause {
                    EndCause::SessionEnded => "ended at the server",
                    EndCause::TokenRefused => {
                        "lost its runner token (revoked, or the team is gone)"
                    }
                    EndCause::SessionGone => "is no longer known to the server",
                };
                eprintln!(
                    "lanyard-runner: session {session_id} {why}: {}; the agent was stopped",
                    ended.message
                );
                ended.cause.exit_code()
            }
            Err(e) => {
                eprintln!("lanyard-runner: lost the agent process: {e}");
                1
            }
        },
    };
    let _ = stop.send(true);
    let _ = refresher.await;
    let _ = server.await;
    code
}
