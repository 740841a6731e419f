//! `lanyard e2e run -- CMD` (CONTRACT §13): mints a test account, runs CMD with it in its
//! environment, and always reaps it: after success, after failure, and after SIGINT or SIGTERM,
//! which go to CMD first. CMD's exit code is ours, unless the reap fails: a leaked account is a
//! failure, so that exits non-zero even when CMD succeeded.

use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::signal::unix::{signal, SignalKind};

use super::E2eClient;

/// After forwarding a signal, how long CMD has to exit before its process group is killed and
/// the account reaped: CI runners allow a few seconds between cancelling and killing a job.
const GRACE: Duration = Duration::from_secs(5);
/// Reap attempts when Lanyard is unreachable or answers 429 or 5xx.
const REAP_ATTEMPTS: u32 = 4;
/// The longest wait between two reap attempts, whatever a 429 asks.
const MAX_REAP_WAIT: Duration = Duration::from_secs(10);

/// The created account. No `Debug`: it holds the session JWT and the runner token.
#[derive(Deserialize)]
struct Account {
    team_id: String,
    email: String,
    tier: String,
    session_jwt: String,
    #[serde(default)]
    seeded_tokens: Vec<Seeded>,
}

#[derive(Deserialize)]
struct Seeded {
    session_id: String,
    token: String,
}

/// The signals we forward, installed before anything is created so none is lost.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.term.recv() => Signal::SIGTERM,
        }
    }

    /// A signal that arrived already, without waiting.
    fn pending(&mut self) -> Option<Signal> {
        self.next().now_or_never()
    }
}

pub(super) async fn run(
    e2e: &E2eClient,
    tier: Option<&str>,
    with_resources: bool,
    cmd: &[String],
) -> anyhow::Result<i32> {
    let mut signals = Signals::install()?;
    let (status, body) = e2e.create(tier, with_resources).await?;
    if !(200..300).contains(&status) {
        eprintln!("{body}");
        e2e.check(status)?;
    }
    let account: Account = match serde_json::from_str(&body) {
        Ok(account) => account,
        Err(e) => {
            // Whatever else is wrong with the answer, an account it names must not leak.
            let team = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["team_id"].as_str().map(String::from));
            if let Some(team) = team {
                report_reap(reap(e2e, &team).await, &team);
            }
            return Err(anyhow::anyhow!(
                "the server's answer to the create is not a test account: {e}"
            ));
        }
    };
    eprintln!(
        "lanyard e2e: created test account {} (tier {}, {} seeded session{})",
        account.team_id,
        account.tier,
        account.seeded_tokens.len(),
        if account.seeded_tokens.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    let code = match signals.pending() {
        // Stopped while the account was being made: nothing to run, but it must go.
        Some(sig) => 128 + sig as i32,
        None => {
            mask_in_ci(&account);
            run_child(cmd, &account, e2e.api(), &mut signals).await
        }
    };
    let reaped = report_reap(reap(e2e, &account.team_id).await, &account.team_id);
    Ok(if reaped || code != 0 { code } else { 1 })
}

/// Says how the reap went, loudly when it failed; whether it succeeded.
fn report_reap(outcome: anyhow::Result<()>, team: &str) -> bool {
    match outcome {
        Ok(()) => {
            eprintln!("lanyard e2e: reaped test account {team}");
            true
        }
        Err(e) => {
            eprintln!(
                "lanyard e2e: ERROR: THE TEST ACCOUNT {team} WAS NOT REAPED: {e:#}\n\
                 lanyard e2e: reap it with `lanyard e2e reap {team}`; the server's sweep removes \
                 test accounts after LANYARD_TEST_COHORT_MAX_AGE (2h by default)"
            );
            false
        }
    }
}

/// On GitHub Actions, asks the runner to mask the account's secrets in the job's log before
/// CMD can print them (the workflow command itself is not shown).
fn mask_in_ci(account: &Account) {
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        return;
    }
    let secrets =
        std::iter::once(&account.session_jwt).chain(account.seeded_tokens.iter().map(|s| &s.token));
    for secret in secrets {
        println!("::add-mask::{secret}");
    }
}

/// CMD's environment: the account, and never the token that mints accounts.
fn child_env(account: &Account, api: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("LANYARD_E2E_TEAM_ID", account.team_id.clone()),
        ("LANYARD_E2E_SESSION_JWT", account.session_jwt.clone()),
        ("LANYARD_E2E_EMAIL", account.email.clone()),
        ("LANYARD_E2E_API_URL", api.to_string()),
    ];
    if let Some(seeded) = account.seeded_tokens.first() {
        env.push(("LANYARD_E2E_RUNNER_TOKEN", seeded.token.clone()));
        env.push(("LANYARD_E2E_SESSION_ID", seeded.session_id.clone()));
    }
    env
}

/// Runs CMD to its end and returns its exit code (128+N when signal N ended it, 127 when it
/// could not start). Signals are forwarded; after one, CMD has [`GRACE`] before SIGKILL.
async fn run_child(cmd: &[String], account: &Account, api: &str, signals: &mut Signals) -> i32 {
    let mut command = tokio::process::Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .envs(child_env(account, api))
        .env_remove("LANYARD_E2E_ACCOUNT_TOKEN")
        .env_remove("LANYARD_E2E_ACCOUNT_TOKEN_FILE");
    // Without a terminal, CMD gets a process group of its own so a signal reaches all of it,
    // once, from us; at a terminal, Ctrl-C already reaches CMD's group.
    let own_group = !std::io::IsTerminal::is_terminal(&std::io::stdin());
    if own_group {
        command.process_group(0);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lanyard e2e: cannot run {:?}: {e}", cmd[0]);
            return 127;
        }
    };
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    let send = |sig: Signal| {
        if let Some(pid) = pid {
            let target = if own_group {
                Pid::from_raw(-pid.as_raw())
            } else {
                pid
            };
            let _ = kill(target, sig);
        }
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let grace_over = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => return status.map_or(1, exit_code),
            sig = signals.next() => {
                // At a terminal, Ctrl-C reached CMD's group already: a second SIGINT would read
                // as "abort now" to many tools.
                if own_group || sig != Signal::SIGINT {
                    eprintln!("lanyard e2e: got {}; passing it to {:?}", sig.as_str(), cmd[0]);
                    send(sig);
                }
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + GRACE);
            }
            () = grace_over => {
                eprintln!("lanyard e2e: {:?} did not exit within {}s; killing it", cmd[0], GRACE.as_secs());
                send(Signal::SIGKILL);
                deadline = None;
            }
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Reaps, retrying what may pass (unreachable, 429, 5xx); a refusal is final.
async fn reap(e2e: &E2eClient, team_id: &str) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        let outcome = e2e.reap(team_id).await;
        let retry = match &outcome {
            Ok((status, _)) if (200..300).contains(status) => return Ok(()),
            Ok((status, _)) => *status == 429 || *status >= 500,
            Err(_) => true,
        };
        // A 429 says how long to wait; honour it, up to a bound, so a reap is never far off.
        if let Ok((429, body)) = &outcome {
            let asked = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["retry_after_seconds"].as_u64())
                .unwrap_or(1);
            delay = delay.max(Duration::from_secs(asked.min(MAX_REAP_WAIT.as_secs())));
        }
        if !retry || attempt == REAP_ATTEMPTS {
            return match outcome {
                Ok((status, body)) => e2e
                    .check(status)
                    .with_context(|| format!("the reap was refused: {}", body.trim())),
                Err(e) => Err(e),
            };
        }
        eprintln!("lanyard e2e: reap attempt {attempt} failed; retrying in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_REAP_WAIT);
        attempt += 1;
    }
}
