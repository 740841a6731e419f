//! A fault-injecting TCP proxy for chaos tests. Put it in front of Postgres, Redis, the fake
//! GitHub or Lanyard itself, then switch its [`Fault`] while traffic flows:
//!
//! - [`Fault::None`] forwards bytes both ways.
//! - [`Fault::Stall`] stops forwarding on every connection, old and new, without closing any,
//!   until the fault changes: the peer sees a server that hangs.
//! - [`Fault::Refuse`] closes new connections at once and cuts the live ones: the peer sees a
//!   server that is down.
//!
//! [`Proxy::cut`] closes every live connection once, leaving new ones to work (a database that
//! drops its connections). Listens on 127.0.0.1 only; it stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Stall,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    fault: Fault,
    /// Bumped by [`Proxy::cut`]: connections opened before it close.
    generation: u64,
}

/// A running proxy. Dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    state: watch::Sender<State>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.state.send_modify(|s| s.fault = Fault::Refuse);
    }
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 (a free port) that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the chaos proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (state, _) = watch::channel(State {
            fault: Fault::None,
            generation: 0,
        });
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            state.clone(),
            accepted.clone(),
        ));
        Self {
            addr,
            state,
            accepted,
            task,
        }
    }

    /// Starts a proxy in front of the host and port of `url` (`scheme://host:port/...`) and
    /// returns it with the same URL pointing at the proxy instead.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let upstream: SocketAddr = tokio::net::lookup_host(hostport)
            .await
            .expect("resolve the upstream")
            .next()
            .expect("an upstream address");
        let proxy = Self::start(upstream).await;
        let url = format!("{scheme}://{userinfo}{}{path}", proxy.addr);
        (proxy, url)
    }

    pub fn set(&self, fault: Fault) {
        self.state.send_modify(|s| s.fault = fault);
    }

    pub fn fault(&self) -> Fault {
        self.state.borrow().fault
    }

    /// Closes every connection open now; later ones are forwarded as the fault allows.
    pub fn cut(&self) {
        self.state.send_modify(|s| s.generation += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Sender<State>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let rx = state.subscribe();
        tokio::spawn(connection(client, upstream, rx));
    }
}

/// Waits until forwarding may go on: `false` when the connection must close instead.
async fn may_forward(rx: &mut watch::Receiver<State>, generation: u64) -> bool {
    loop {
        let s = *rx.borrow_and_update();
        if s.generation != generation || s.fault == Fault::Refuse {
            return false;
        }
        if s.fault == Fault::None {
            return true;
        }
        if rx.changed().await.is_err() {
            return false;
        }
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<State>) {
    let generation = rx.borrow().generation;
    if !may_forward(&mut rx, generation).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, rx.clone(), generation);
    let down = pump(server_read, client_write, rx, generation);
    // Either side closing (or the fault cutting) ends both.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Copies one direction, checking the fault before every chunk and abandoning a read the moment
/// the fault says to stall or cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<State>,
    generation: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !may_forward(&mut rx, generation).await {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Data read just as a stall began is held until it lifts.
        if !may_forward(&mut rx, generation).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
