//! A small SMTP server for tests: it speaks enough of RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT) for a real client such as lettre, and keeps every message it accepted.
//!
//! [`SmtpSink::fail_next`] answers the next N messages' DATA with a 451 (a transient failure),
//! and [`SmtpSink::reject_next`] with a 550 (a permanent one), so tests can watch a sender retry
//! and give up. Listens on 127.0.0.1 only; every read has a timeout, and a
//! message over 1 MiB is refused. It stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MAX_MESSAGE: usize = 1 << 20;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers, a blank line, the body (dot-unstuffed).
    pub data: String,
}

impl Received {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                }
            }
        }
        value
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    fail_next: AtomicUsize,
    reject_next: AtomicUsize,
}

/// A running sink.
#[derive(Debug)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, shared.clone()));
                }
            }
        });
        Self { addr, shared, task }
    }

    /// `smtp://127.0.0.1:<port>`, for `LANYARD_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("not poisoned").clone()
    }

    /// Refuses the next `n` messages with `451` (try again later) after their DATA.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Refuses the next `n` messages with `550` (permanently) after their DATA.
    pub fn reject_next(&self, n: usize) {
        self.shared.reject_next.store(n, Ordering::SeqCst);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg.rfind('>').unwrap_or(arg.len());
    arg.get(start..end).unwrap_or_default().to_string()
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write
        .write_all(b"220 lanyard-testkit ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        match tokio::time::timeout(READ_TIMEOUT, lines.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let argument = command.split_once(':').map_or("", |(_, a)| a);
        let answer: &str = match verb.as_str() {
            "EHLO" => "250-lanyard-testkit\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n",
            "HELO" => "250 lanyard-testkit\r\n",
            "MAIL" => {
                from = address(argument);
                to.clear();
                "250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(argument));
                "250 OK\r\n"
            }
            "DATA" => {
                if write.write_all(b"354 end with .\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    match tokio::time::timeout(READ_TIMEOUT, lines.read_line(&mut l)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    if data.len() > MAX_MESSAGE {
                        let _ = write.write_all(b"552 too big\r\n").await;
                        return;
                    }
                }
                let take = |counter: &AtomicUsize| {
                    counter
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                };
                if take(&shared.reject_next) {
                    "550 mailbox unavailable\r\n"
                } else if take(&shared.fail_next) {
                    "451 try again later\r\n"
                } else {
                    shared
                        .received
                        .lock()
                        .expect("not poisoned")
                        .push(Received {
                            from: from.clone(),
                            to: std::mem::take(&mut to),
                            data: data.trim_end_matches("\r\n").to_string(),
                        });
                    "250 OK queued\r\n"
                }
            }
            "RSET" => {
                from.clear();
                to.clear();
                "250 OK\r\n"
            }
            "NOOP" => "250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "502 not implemented\r\n",
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
