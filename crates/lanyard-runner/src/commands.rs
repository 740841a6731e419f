//! The commands that run inside the agent and talk to the runner over its socket: the git
//! credential helper, `token`, `status` and the `gh` shim.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use lanyard_core::wire::{SocketErrorKind, SocketReply, SocketRequest};
use lanyard_runner::client::ApiClient;
use lanyard_runner::{helper, ipc, supervise};

fn socket() -> Option<PathBuf> {
    std::env::var_os("LANYARD_RUNNER_SOCKET").map(PathBuf::from)
}

pub async fn git_credential(action: &str) -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin()
        .take(1024 * 1024)
        .read_to_string(&mut input)
    {
        eprintln!("lanyard-runner git-credential: cannot read the request: {e}");
        return 1;
    }
    let attrs = match helper::parse(&input) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lanyard-runner git-credential: malformed request: {e}");
            return 1;
        }
    };
    if action == "store" {
        return 0; // the runner owns the credential; nothing to store
    }
    let Some(socket) = socket() else {
        eprintln!("lanyard-runner git-credential: LANYARD_RUNNER_SOCKET is not set; run git under `lanyard-runner run`");
        return 0;
    };
    let Some(host) = attrs.get("host").map(|h| h.to_ascii_lowercase()) else {
        return 0;
    };
    if attrs
        .get("protocol")
        .is_some_and(|p| p != "https" && p != "http")
    {
        return 0;
    }
    let owner = helper::owner_of(&attrs);
    let request = if action == "erase" {
        SocketRequest::Erase { host, owner }
    } else {
        let protocol = attrs.get("protocol").cloned();
        SocketRequest::Get {
            host,
            owner,
            protocol,
        }
    };
    match ipc::call(&socket, &request).await {
        Ok(SocketReply::Token(t)) if action == "get" => {
            let expiry = t.expires_at.map(|d| d.timestamp());
            print!("{}", helper::format_get(&t.token, expiry));
            0
        }
        // Not a host or owner of this session: say nothing, so git tries its other helpers.
        Ok(SocketReply::Error {
            kind: SocketErrorKind::NoCredential,
            ..
        }) => 0,
        Ok(SocketReply::Error { message, .. }) => {
            eprintln!("lanyard-runner git-credential: {message}");
            0
        }
        Ok(_) => 0,
        Err(e) => {
            eprintln!("lanyard-runner git-credential: {e}");
            0
        }
    }
}

/// `lanyard-runner token`: from the runner inside the agent, else from Lanyard directly.
pub async fn token(
    host: Option<String>,
    owner: Option<String>,
    client: Result<ApiClient, String>,
) -> i32 {
    if let Some(socket) = socket() {
        return match ipc::call(&socket, &SocketRequest::Token { host, owner }).await {
            Ok(SocketReply::Token(t)) => {
                println!("{}", t.token);
                0
            }
            Ok(SocketReply::Error { message, .. }) => {
                eprintln!("lanyard-runner token: {message}");
                1
            }
            Ok(other) => {
                eprintln!("lanyard-runner token: unexpected reply {other:?}");
                1
            }
            Err(e) => {
                eprintln!("lanyard-runner token: {e}");
                1
            }
        };
    }
    // Outside a runner: ask Lanyard directly.
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lanyard-runner token: not inside `lanyard-runner run` and {e}");
            return 2;
        }
    };
    match client.fetch(host.as_deref(), owner.as_deref()).await {
        Ok(f) => {
            println!("{}", secrecy::ExposeSecret::expose_secret(&f.token));
            0
        }
        Err(e) => {
            eprintln!("lanyard-runner token: {e}");
            1
        }
    }
}

/// `lanyard-runner status`: each credential's expiry and refresh state, never a token.
pub async fn status(json: bool) -> i32 {
    let Some(socket) = socket() else {
        eprintln!("lanyard-runner status: LANYARD_RUNNER_SOCKET is not set; run it inside `lanyard-runner run`");
        return 2;
    };
    let creds = match ipc::call(&socket, &SocketRequest::Status).await {
        Ok(SocketReply::Status { credentials }) => credentials,
        Ok(other) => {
            eprintln!("lanyard-runner status: unexpected reply {other:?}");
            return 1;
        }
        Err(e) => {
            eprintln!("lanyard-runner status: {e}");
            return 1;
        }
    };
    if json {
        println!("{}", serde_json::to_string(&creds).unwrap_or_default());
        return 0;
    }
    println!(
        "{:<28} {:<12} {:<22} {:<22} {:<22} LAST ERROR",
        "HOST/OWNER", "SOURCE", "EXPIRES", "LAST REFRESH", "NEXT REFRESH"
    );
    // UTC, and marked as such.
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for c in creds {
        println!(
            "{:<28} {:<12} {:<22} {:<22} {:<22} {}",
            format!("{}/{}", c.host, c.owner),
            c.source.as_str(),
            c.expires_at.map_or_else(|| "-".to_string(), time),
            time(c.last_refresh),
            time(c.next_refresh),
            c.last_error.as_deref().unwrap_or("-"),
        );
    }
    0
}

/// The `gh` shim: runs the real `gh` with a fresh token for the session's host.
pub async fn gh_shim(args: Vec<String>) -> i32 {
    let Some(socket) = socket() else {
        eprintln!("gh (lanyard-runner shim): LANYARD_RUNNER_SOCKET is not set");
        return 127;
    };
    let shim_dir = socket.parent().map(|d| d.join("bin"));
    let Some(real) = supervise::find_real_gh(shim_dir.as_deref()) else {
        eprintln!("gh (lanyard-runner shim): no real `gh` found further down PATH");
        return 127;
    };
    let hosts = match ipc::call(&socket, &SocketRequest::Hosts).await {
        Ok(SocketReply::Hosts { hosts }) => hosts,
        _ => Vec::new(),
    };
    let host = std::env::var("GH_HOST")
        .ok()
        .filter(|h| hosts.contains(h))
        .unwrap_or_else(|| {
            if hosts.iter().any(|h| h == "github.com") {
                "github.com".into()
            } else {
                hosts.first().cloned().unwrap_or_default()
            }
        });
    let owner = std::env::var("LANYARD_GH_OWNER").ok();
    let request = SocketRequest::Token {
        host: Some(host.clone()),
        owner,
    };
    let token = match ipc::call(&socket, &request).await {
        Ok(SocketReply::Token(t)) => t.token,
        Ok(SocketReply::Error { message, .. }) => {
            eprintln!("gh (lanyard-runner shim): {message} (set LANYARD_GH_OWNER to choose)");
            return 1;
        }
        Ok(other) => {
            eprintln!("gh (lanyard-runner shim): unexpected reply {other:?}");
            return 1;
        }
        Err(e) => {
            eprintln!("gh (lanyard-runner shim): {e}");
            return 1;
        }
    };
    let mut command = std::process::Command::new(real);
    command.args(args);
    if host == "github.com" {
        command
            .env("GH_TOKEN", token)
            .env_remove("GH_ENTERPRISE_TOKEN");
    } else {
        command
            .env("GH_ENTERPRISE_TOKEN", token)
            .env("GH_HOST", &host)
            .env_remove("GH_TOKEN");
    }
    let err = command.exec();
    eprintln!("gh (lanyard-runner shim): cannot run gh: {err}");
    127
}
