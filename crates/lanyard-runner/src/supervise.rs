//! Running the agent: its environment (helper, shim, socket), signal forwarding, and stopping it
//! when the session ends.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::engine::Ended;

/// Writes the `gh` shim into `bin_dir`: it re-enters this binary, which fetches a fresh token and
/// runs the real `gh` found further down `PATH`.
pub fn write_gh_shim(bin_dir: &Path, runner_exe: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(bin_dir)?;
    let exe = runner_exe.display().to_string().replace('\'', "'\\''");
    let script = format!("#!/bin/sh\nexec '{exe}' gh-shim -- \"$@\"\n");
    let path = bin_dir.join("gh");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
}

/// The child's environment changes: git's helper through `GIT_CONFIG_*` (no file is written), the
/// shim first on `PATH`, and where the runner listens.
pub fn child_env(
    runner_exe: &Path,
    bin_dir: &Path,
    socket: &Path,
    api: &str,
    session: &str,
) -> Vec<(String, OsString)> {
    let helper = format!(
        "!'{}' git-credential",
        runner_exe.display().to_string().replace('\'', "'\\''")
    );
    let mut path = OsString::from(bin_dir.as_os_str());
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    // An empty helper first resets any helper list inherited from global or system config.
    let config = [
        ("credential.helper", ""),
        ("credential.helper", helper.as_str()),
        ("credential.useHttpPath", "true"),
    ];
    let mut env: Vec<(String, OsString)> = vec![
        ("PATH".into(), path),
        ("LANYARD_API_URL".into(), api.into()),
        ("LANYARD_SESSION_ID".into(), session.into()),
        (
            "LANYARD_RUNNER_SOCKET".into(),
            socket.as_os_str().to_owned(),
        ),
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
        ("GIT_CONFIG_COUNT".into(), config.len().to_string().into()),
    ];
    for (i, (key, value)) in config.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), (*key).into()));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), (*value).into()));
    }
    env
}

/// Variables the child must not inherit: stale tokens would shadow the fresh ones.
pub const SCRUBBED: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "LANYARD_RUNNER_TOKEN_FILE",
];

/// A spawned agent. When it runs in its own process group, signals go to the whole group, so
/// the agent's own children stop with it.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    /// Saved at spawn: once the child is reaped, `Child::id` is `None`, but its group (led by
    /// that id) may still hold grandchildren that must be killed.
    pid: Option<i32>,
    own_group: bool,
}

/// Spawns the agent. Unless the runner is interactive (stdin is a terminal, which the agent must
/// keep as its foreground), the agent gets a process group of its own.
pub fn spawn(cmd: &[String], env: &[(String, OsString)]) -> std::io::Result<Agent> {
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    let own_group = !std::io::IsTerminal::is_terminal(&std::io::stdin());
    if own_group {
        command.process_group(0);
    }
    for name in SCRUBBED {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn()?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    Ok(Agent {
        child,
        pid,
        own_group,
    })
}

/// Signals the agent, or its whole process group when it has one. Without a group, a reaped
/// child is never signalled (its pid may belong to someone else by now).
fn send(agent: &Agent, sig: Signal) {
    let Some(pid) = agent.pid.filter(|p| *p > 0) else {
        return;
    };
    if agent.own_group {
        let _ = kill(Pid::from_raw(-pid), sig);
    } else if agent.child.id().is_some() {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// The exit code a shell would report for this status.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// How supervision ended.
#[derive(Debug)]
pub enum Outcome {
    Exited(ExitStatus),
    /// The server will not serve the session again; the agent was stopped.
    SessionEnded {
        ended: Ended,
        status: Option<ExitStatus>,
    },
}

/// Waits for the child, forwarding SIGINT and SIGTERM to it. When the session ends, sends it
/// SIGTERM, then SIGKILL after `grace`, and SIGKILL to whatever is left in its process group.
pub async fn supervise(
    mut agent: Agent,
    mut ended: watch::Receiver<Option<Ended>>,
    grace: Duration,
) -> std::io::Result<Outcome> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            status = agent.child.wait() => return Ok(Outcome::Exited(status?)),
            _ = sigint.recv() => send(&agent, Signal::SIGINT),
            _ = sigterm.recv() => send(&agent, Signal::SIGTERM),
            changed = ended.changed() => {
                let message = ended.borrow().clone();
                match (changed, message) {
                    (Ok(()), Some(ended)) => {
                        send(&agent, Signal::SIGTERM);
                        let status = match tokio::time::timeout(grace, agent.child.wait()).await {
                            Ok(status) => status.ok(),
                            Err(_) => {
                                send(&agent, Signal::SIGKILL);
                                agent.child.wait().await.ok()
                            }
                        };
                        // Whatever the agent left behind in its group goes too.
                        if agent.own_group {
                            send(&agent, Signal::SIGKILL);
                        }
                        return Ok(Outcome::SessionEnded { ended, status });
                    }
                    (Ok(()), None) => {}
                    // The engine is gone; keep waiting for the child alone.
                    (Err(_), _) => return Ok(Outcome::Exited(agent.child.wait().await?)),
                }
            }
        }
    }
}

/// The real `gh`: the first executable `gh` on `PATH` that is not the shim itself.
pub fn find_real_gh(shim_dir: Option<&Path>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let shim = shim_dir.and_then(|d| d.canonicalize().ok());
    std::env::split_paths(&path).find_map(|dir| {
        if dir.as_os_str().is_empty() {
            return None;
        }
        if shim.is_some() && dir.canonicalize().ok() == shim {
            return None;
        }
        let candidate = dir.join("gh");
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}
