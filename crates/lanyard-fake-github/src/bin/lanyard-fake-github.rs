//! The testkit's fake GitHub as a process, for tools outside `cargo test` (the schemathesis run
//! in CI): it serves on 127.0.0.1 with one App installation (id 1, account `acme`, repositories
//! `widgets` and `gadgets`), prints the `LANYARD_GITHUB_*` settings that point Lanyard at it, one
//! `KEY=VALUE` per line followed by `READY`, and serves until SIGINT or SIGTERM.

use std::io::Write;
use std::sync::Arc;

use lanyard_fake_github::{
    app_private_key_path, client_secret_path, webhook_secret_path, FakeGithub, APP_SLUG, CLIENT_ID,
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().nth(1).is_some() {
        eprintln!("usage: lanyard-fake-github (no arguments; prints LANYARD_GITHUB_* settings, then READY)");
        std::process::exit(2);
    }
    let fake = FakeGithub::start(Arc::new(lanyard_core::SystemClock)).await;
    fake.add_installation(1, "acme", &["widgets", "gadgets"]);
    let settings = [
        ("LANYARD_GITHUB_HOST", fake.host.clone()),
        ("LANYARD_GITHUB_API_URL", fake.api_url.clone()),
        ("LANYARD_GITHUB_WEB_URL", fake.web_url.clone()),
        ("LANYARD_GITHUB_APP_ID", fake.app_id.to_string()),
        (
            "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
            app_private_key_path().display().to_string(),
        ),
        ("LANYARD_GITHUB_APP_SLUG", APP_SLUG.to_string()),
        ("LANYARD_GITHUB_CLIENT_ID", CLIENT_ID.to_string()),
        (
            "LANYARD_GITHUB_CLIENT_SECRET_FILE",
            client_secret_path().display().to_string(),
        ),
        (
            "LANYARD_GITHUB_WEBHOOK_SECRET_FILE",
            webhook_secret_path().display().to_string(),
        ),
    ];
    // Handlers first: a SIGTERM sent on READY must find them.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    let mut out = std::io::stdout().lock();
    for (key, value) in settings {
        let _ = writeln!(out, "{key}={value}");
    }
    let _ = writeln!(out, "READY");
    let _ = out.flush();
    drop(out);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
