//! The runner's local socket: one JSON request and one JSON reply per connection, served only to
//! this user (private directory 0700, socket 0600). It is how `git-credential`, `token`, `status`
//! and the `gh` shim inside the child reach the refresh engine.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lanyard_core::wire::{SocketErrorKind, SocketReply, SocketRequest, SocketToken};
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::engine::{Engine, EngineError, Handout};

/// Requests are small; anything longer is refused.
const MAX_REQUEST: usize = 64 * 1024;

/// Binds the socket inside `dir` (created 0700), readable and writable only by this user.
pub fn bind(dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join("runner.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

pub async fn serve(
    listener: UnixListener,
    engine: Arc<Engine>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let engine = engine.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, &engine).await {
                        tracing::debug!(error = %e, "socket client went away");
                    }
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn error_reply(e: &EngineError) -> SocketReply {
    SocketReply::Error {
        kind: e.kind(),
        message: e.to_string(),
    }
}

fn token_reply(h: Handout) -> SocketReply {
    SocketReply::Token(SocketToken {
        token: h.token.expose_secret().to_string(),
        expires_at: h.expires_at,
        host: h.host,
        owner: h.owner,
        scheme: h.scheme,
    })
}

/// The answer to one request.
async fn answer(request: Option<SocketRequest>, engine: &Engine) -> SocketReply {
    let result = match request {
        None => {
            return SocketReply::Error {
                kind: SocketErrorKind::Malformed,
                message: "malformed request".into(),
            }
        }
        Some(SocketRequest::Get {
            host,
            owner,
            protocol,
        }) => engine
            .for_git(&host, owner.as_deref(), protocol.as_deref())
            .await
            .map(token_reply),
        Some(SocketRequest::Token { host, owner }) => engine
            .token(host.as_deref(), owner.as_deref())
            .await
            .map(token_reply),
        Some(SocketRequest::Erase { host, owner }) => engine
            .force_refresh(&host, owner.as_deref())
            .await
            .map(|()| SocketReply::Done),
        Some(SocketRequest::Hosts) => Ok(SocketReply::Hosts {
            hosts: engine.hosts(),
        }),
        Some(SocketRequest::Status) => Ok(SocketReply::Status {
            credentials: engine.status(),
        }),
    };
    result.unwrap_or_else(|e| error_reply(&e))
}

async fn handle(stream: UnixStream, engine: &Engine) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    reader.read_line(&mut line).await?;
    let reply = answer(serde_json::from_str(line.trim()).ok(), engine).await;
    let mut bytes = serde_json::to_vec(&reply).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// The longest a command inside the agent waits on the runner (a refresh is bounded by the
/// runner's own 30 s HTTP timeout, and a refusal is confirmed once).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// Sends one request to the runner at `socket` and returns its reply.
pub async fn call(socket: &Path, request: &SocketRequest) -> anyhow::Result<SocketReply> {
    tokio::time::timeout(CALL_TIMEOUT, call_unbounded(socket, request))
        .await
        .map_err(|_| anyhow::anyhow!("the runner did not answer within {CALL_TIMEOUT:?}"))?
}

async fn call_unbounded(socket: &Path, request: &SocketRequest) -> anyhow::Result<SocketReply> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the runner at {}: {e}", socket.display()))?;
    let (read, mut write) = stream.into_split();
    let mut bytes = serde_json::to_vec(request)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    let mut line = String::new();
    BufReader::new(read)
        .take(4 * 1024 * 1024)
        .read_line(&mut line)
        .await?;
    Ok(serde_json::from_str(&line)?)
}
