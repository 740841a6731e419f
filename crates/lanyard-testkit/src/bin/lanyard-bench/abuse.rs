//! What hostile clients cost the server, measured: a slowloris crowd that trickles request heads,
//! a flood of requests with made-up 20 KB methods, and a GitHub that stalls while cached
//! credentials are read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_testkit::chaos::{Fault, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::load::{load, Load};
use crate::rss_kib;

/// Slowloris connections opened at once (below the server's connection limit, so the measure
/// is the head timeout, not the limit).
const SLOW_CONNECTIONS: usize = 400;
/// Requests with a made-up method.
const METHOD_REQUESTS: usize = 2_000;
const METHOD_BYTES: usize = 20 * 1024;

pub(crate) struct Slowloris {
    pub(crate) opened: usize,
    /// Closed by the server before the test's own deadline (head timeout + 5 s).
    pub(crate) closed_by_server: usize,
    pub(crate) longest_held: Duration,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_during_kib: u64,
    pub(crate) rss_after_kib: u64,
    /// `/healthz` while the crowd is connected.
    pub(crate) healthz_during: Load,
}

/// Opens `SLOW_CONNECTIONS` connections that send a request head one byte a second, and waits
/// for the server to close them.
pub(crate) async fn slowloris(
    client: &reqwest::Client,
    base: &str,
    addr: &str,
    pid: u32,
    head_timeout: Duration,
) -> Slowloris {
    let rss_before_kib = rss_kib(pid);
    let deadline = head_timeout + Duration::from_secs(5);
    let mut crowd = tokio::task::JoinSet::new();
    for _ in 0..SLOW_CONNECTIONS {
        let addr = addr.to_string();
        crowd.spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&addr).await else {
                return None;
            };
            let opened = Instant::now();
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
            let mut buf = [0u8; 256];
            loop {
                tokio::select! {
                    _ = stream.read(&mut buf) => {
                        // The server answered (408) or closed: either way it let go.
                        return Some((true, opened.elapsed()));
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        if opened.elapsed() > deadline {
                            return Some((false, opened.elapsed()));
                        }
                        if stream.write_all(b"a").await.is_err() {
                            return Some((true, opened.elapsed()));
                        }
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_during_kib = rss_kib(pid);
    let healthz = Arc::new(vec![("/healthz".to_string(), None)]);
    let healthz_during = load(client, base, pid, healthz).await;
    let (mut opened, mut closed_by_server, mut longest_held) = (0, 0, Duration::ZERO);
    while let Some(done) = crowd.join_next().await {
        if let Ok(Some((closed, held))) = done {
            opened += 1;
            if closed {
                closed_by_server += 1;
            }
            longest_held = longest_held.max(held);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Slowloris {
        opened,
        closed_by_server,
        longest_held,
        rss_before_kib,
        rss_during_kib,
        rss_after_kib: rss_kib(pid),
        healthz_during,
    }
}

pub(crate) struct MethodFlood {
    pub(crate) sent: usize,
    pub(crate) statuses: std::collections::BTreeMap<String, usize>,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) metrics_bytes_before: usize,
    pub(crate) metrics_bytes_after: usize,
}

async fn metrics_bytes(client: &reqwest::Client, base: &str) -> usize {
    match client.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.bytes().await.map_or(0, |b| b.len()),
        Err(_) => 0,
    }
}

/// Sends `METHOD_REQUESTS` requests, each with a different random 20 KB method, 16 at a time.
pub(crate) async fn method_flood(
    client: &reqwest::Client,
    base: &str,
    addr: &str,
    pid: u32,
) -> MethodFlood {
    let rss_before_kib = rss_kib(pid);
    let metrics_bytes_before = metrics_bytes(client, base).await;
    let statuses = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let addr = addr.to_string();
        let statuses = statuses.clone();
        workers.spawn(async move {
            let mut i = worker;
            while i < METHOD_REQUESTS {
                let method: String = (0..METHOD_BYTES)
                    .map(|_| char::from(b'A' + rand::random::<u8>() % 26))
                    .collect();
                let status = match TcpStream::connect(&addr).await {
                    Ok(mut stream) => {
                        let head = format!(
                            "{method} /v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let mut answer = Vec::new();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(10),
                            stream.read_to_end(&mut answer),
                        )
                        .await;
                        String::from_utf8_lossy(&answer)
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or("closed")
                            .to_string()
                    }
                    Err(_) => "refused".to_string(),
                };
                *statuses.lock().unwrap().entry(status).or_insert(0) += 1;
                i += 16;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let statuses = statuses.lock().unwrap().clone();
    MethodFlood {
        sent: METHOD_REQUESTS,
        statuses,
        rss_before_kib,
        rss_after_kib: rss_kib(pid),
        metrics_bytes_before,
        metrics_bytes_after: metrics_bytes(client, base).await,
    }
}

pub(crate) struct Stall {
    pub(crate) normal: Load,
    pub(crate) stalled: Load,
    /// Mints left hanging at GitHub while the cached path was measured.
    pub(crate) mints_pending: usize,
}

/// The cached credential path with GitHub answering, then with GitHub stalled and mints for
/// other scopes hanging on it.
pub(crate) async fn github_stall(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    targets: Arc<Vec<(String, Option<String>)>>,
    proxy: &Proxy,
    new_scopes: Vec<(String, String)>,
) -> Stall {
    let normal = load(client, base, pid, targets.clone()).await;
    proxy.set(Fault::Stall);
    let mut pending = tokio::task::JoinSet::new();
    for (path, runner) in &new_scopes {
        let request = client
            .get(format!("{base}{path}"))
            .bearer_auth(runner)
            .timeout(Duration::from_secs(60))
            .send();
        pending.spawn(request);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stalled = load(client, base, pid, targets).await;
    proxy.set(Fault::None);
    let mints_pending = new_scopes.len();
    pending.abort_all();
    Stall {
        normal,
        stalled,
        mints_pending,
    }
}
