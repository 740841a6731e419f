//! The server's sockets: a trickled request head or body, an idle kept-alive connection, and a
//! flood of connections are all bounded.

use std::time::Duration;

use lanyard_testkit::{expect_error, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn app_with(env: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder();
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    builder.spawn().await
}

/// Reads until the server closes the connection; `true` if it did within `steps` reads of
/// 100 ms.
async fn closed_by_server(stream: &mut TcpStream, steps: u32) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..steps {
        let read = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() {
    let app = app_with(&[("LANYARD_HTTP_HEADER_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    // One byte every 100 ms would take 8 s to finish; the server closes long before.
    let mut cut = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(n)) => panic!(
                "the server answered a head it never got in full: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {}
        }
    }
    assert!(cut, "the connection outlived its whole trickled head");
    // The server still serves everyone else.
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = app_with(&[("LANYARD_HTTP_HEADER_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then left idle: closed after the head timeout (within 10 s of reads).
    assert!(closed_by_server(&mut stream, 100).await);
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let app = app_with(&[
        ("LANYARD_HTTP_MAX_CONNECTIONS", "2"),
        ("LANYARD_HTTP_HEADER_TIMEOUT", "30s"),
    ])
    .await;
    let first = TcpStream::connect(app.addr()).await.unwrap();
    let _second = TcpStream::connect(app.addr()).await.unwrap();
    // Give the server a moment to accept both (it accepts as fast as it can).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    let url = app.url("/healthz");
    let waiting = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served past the limit of two"
    );
    drop(first);
    let status = waiting.await.unwrap().unwrap();
    assert_eq!(status, 200, "served once a slot freed");
}

#[tokio::test]
async fn a_request_that_outlasts_its_deadline_gets_408() {
    let app = app_with(&[("LANYARD_HTTP_REQUEST_TIMEOUT", "1s")]).await;
    // A body that never finishes arriving.
    let team = app.create_team("Slow", lanyard_core::Tier::Free).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let head = format!(
        "POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"label\":",
        team.api_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    // No key was created by the half-sent request.
    let keys = app.get_json("/v1/api-keys", &team.api_key).await;
    assert_eq!(keys["api_keys"].as_array().unwrap().len(), 1, "{keys}");
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_public_one() {
    let app = app_with(&[("LANYARD_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let unknown = app.get("/no/such/route").send().await.unwrap();
    let unknown_status = unknown.status();
    let r = app.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), unknown_status);
    expect_error(r, "not_found", &app.public_url()).await;
    let private = app.metrics_url().expect("a metrics listener");
    let text = reqwest::get(&private).await.unwrap().text().await.unwrap();
    assert!(text.contains("lanyard_http_requests_total"), "{text}");
    // The refused public scrape is counted as an unknown route, not as /metrics.
    assert!(
        !text.contains(r#"route="/metrics",method="GET",status="404""#),
        "{text}"
    );
}
