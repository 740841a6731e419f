//! The command line, as clap reads it: every command, flag and its help. `--help`, the
//! completions and the man pages all come from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    pub(super) common: Common,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Args)]
pub(super) struct Common {
    /// TOML configuration file [env: LANYARD_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where the embedded database and generated secrets live [env: LANYARD_DATA_DIR] [default: ./.lanyard]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run the HTTP server (applies migrations first, then logs the address it listens on)
    #[command(
        after_help = "With --dev, Lanyard runs a throwaway local stack for trying it: a temporary \
        SQLite data dir, an embedded fake GitHub serving a demo repository over git smart HTTP, a \
        seeded team, connection and session, and GitHub tokens that live 2 minutes. It prints the \
        API key, a lanyard-runner line that clones the demo repository and a curl for the \
        credential route, reads no configuration, listens only on loopback, and removes \
        everything when stopped. It is not for production."
    )]
    Serve {
        /// Listen address; port 0 picks a free port [env: LANYARD_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// A throwaway local stack with a fake GitHub, seeded and printed (not for production)
        #[arg(long)]
        dev: bool,
        /// How long GitHub tokens live in dev mode (20s to 1h)
        #[arg(long, hide = true, requires = "dev", value_name = "DURATION", value_parser = dev_lifetime)]
        dev_token_lifetime: Option<std::time::Duration>,
    },
    /// Check the configuration the way serve would load it: data dir, secrets, database,
    /// migrations, Redis, each GitHub App, OAuth and webhook secrets, file modes and tokens
    #[command(
        after_help = "Prints a line per check with ✓ or ✗ and the reason, and exits 0 only when \
        every check passes. Nothing is created or changed: a data dir or SQLite file that does \
        not exist yet passes, since serve creates it."
    )]
    Doctor {
        /// Print {ok, checks: [{check, ok, detail}]} as JSON
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
    /// Exit 0 when the server's /healthz answers 200 (a container health check with no shell)
    Healthcheck {
        /// [default: /healthz on LANYARD_LISTEN, over loopback]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
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

/// What a test account is made with.
#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    /// anonymous, free, hobby, hobby_plus or pro (default free)
    #[arg(long)]
    pub(crate) tier: Option<String>,
    /// Also seed one active session and return (or pass on) its runner token
    #[arg(long)]
    pub(crate) with_resources: bool,
    /// Lanyard's base URL [env: LANYARD_PUBLIC_URL] [default: http://127.0.0.1:8080]
    #[arg(long, value_name = "URL")]
    pub(crate) api: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum E2eCommand {
    /// Create an isolated test-cohort team; prints the response JSON (team_id, session_jwt, ...)
    Create {
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Create a test account, run CMD with it, and always reap it; exits with CMD's code
    #[command(
        after_help = "CMD's environment carries LANYARD_E2E_TEAM_ID, LANYARD_E2E_SESSION_JWT, \
        LANYARD_E2E_EMAIL and LANYARD_E2E_API_URL, and with --with-resources LANYARD_E2E_RUNNER_TOKEN \
        and LANYARD_E2E_SESSION_ID; never LANYARD_E2E_ACCOUNT_TOKEN.\n\n\
        The account is reaped after CMD succeeds, fails, or is interrupted: SIGINT and SIGTERM are \
        passed to CMD, which then has 5s to exit before it is killed. Reaping is retried while the \
        server is unreachable or busy.\n\n\
        Exit status: CMD's own (128+N when signal N ended it, 127 when it could not run); non-zero \
        when the account could not be created; and non-zero, with an error on stderr, when the \
        reap failed, even if CMD succeeded."
    )]
    Run {
        #[command(flatten)]
        account: AccountArgs,
        /// The command to run, and its arguments
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
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

/// `--dev-token-lifetime`: 20 s to 1 h.
fn dev_lifetime(raw: &str) -> Result<std::time::Duration, String> {
    let d = lanyard_core::parse_duration(raw).map_err(|e| e.to_string())?;
    if !(20..=3600).contains(&d.as_secs()) {
        return Err("must be from 20s to 1h".into());
    }
    Ok(d)
}
