//! The e2e client commands against a served Lanyard.

use crate::{database_for, lanyard, Served};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_create_and_reap_through_the_cli() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let token = format!("cli-e2e-{}", uuid::Uuid::new_v4().simple());
    let server = Served::start(
        dir.path(),
        &db,
        &[("LANYARD_E2E_ACCOUNT_TOKEN", token.as_str())],
    );
    let base = server.base_url.clone();

    let out = lanyard(&[
        "e2e",
        "create",
        "--tier",
        "hobby",
        "--with-resources",
        "--api",
        &base,
    ])
    .env("LANYARD_E2E_ACCOUNT_TOKEN", &token)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let account: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(account["tier"], "hobby");
    assert_eq!(account["seeded_count"], 1);
    let team_id = account["team_id"].as_str().unwrap().to_string();

    let out = lanyard(&["e2e", "reap", &team_id, "--api", &base])
        .env(
            "LANYARD_E2E_ACCOUNT_TOKEN",
            "wrong-token-of-sufficient-length-000000",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));

    let out = lanyard(&["e2e", "reap", &team_id, "--api", &base])
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reaped: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reaped["team_deleted"], true);
    assert_eq!(reaped["sessions_stopped"], 1);

    let out = lanyard(&["e2e", "create", "--api", &base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LANYARD_E2E_ACCOUNT_TOKEN"));
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// A one-shot HTTP server on loopback that answers every request with `response` and reports
/// each request head it read.
async fn canned(response: String) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).to_string());
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_client_never_forwards_its_token() {
    // Clear text off loopback is refused before anything is sent.
    let out = lanyard(&["e2e", "create", "--api", "http://lanyard.example.com"])
        .env(
            "LANYARD_E2E_ACCOUNT_TOKEN",
            "a-token-that-must-not-travel-000000",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("only to a loopback host"), "{stderr}");
    assert!(!stderr.contains("a-token-that-must-not-travel"));

    // A redirect is not followed: the place it points to never sees the token.
    let (elsewhere, mut seen_elsewhere) =
        canned("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".into()).await;
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/internal/e2e/account\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (redirecting, mut seen_redirecting) = canned(redirect).await;
    let out = lanyard(&["e2e", "create", "--api", &redirecting])
        .env(
            "LANYARD_E2E_ACCOUNT_TOKEN",
            "a-token-that-must-not-travel-000000",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("a redirect"), "{stderr}");
    let first = seen_redirecting
        .try_recv()
        .expect("the first server was asked");
    assert!(first
        .to_ascii_lowercase()
        .contains("x-e2e-token: a-token-that-must-not-travel"));
    assert!(
        seen_elsewhere.try_recv().is_err(),
        "the redirect's target was never contacted"
    );
}
