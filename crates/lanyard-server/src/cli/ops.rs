//! Commands for packaging and operating Lanyard: shell completions, man pages, and the
//! container health check (a shell-less image has no curl).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;

use super::Cli;

/// `lanyard completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "lanyard", &mut std::io::stdout());
}

/// `lanyard man [--dir DIR]`: `lanyard.1` on stdout, or a page per command into DIR.
pub(super) fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let command = Cli::command();
    match dir {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout())?,
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)?;
            eprintln!("wrote the man pages into {}", dir.display());
        }
    }
    Ok(())
}

/// `lanyard healthcheck [--url URL]`: exit 0 when `/healthz` answers 200 within 3 s. Without
/// `--url`, it asks the address `serve` listens on (`listen`, from the same configuration).
pub(super) async fn healthcheck(url: Option<String>, listen: SocketAddr) -> anyhow::Result<()> {
    let url = url.unwrap_or_else(|| health_url(listen));
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(3))
        .build()?;
    let status = client
        .get(&url)
        .send()
        .await
        .map_err(|e| {
            let why = if e.is_timeout() {
                "did not answer within 3 s"
            } else if e.is_connect() {
                "refused the connection (is lanyard serve running there?)"
            } else {
                "could not be asked"
            };
            anyhow::anyhow!("{url} {why}")
        })?
        .status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

/// `/healthz` on `listen`, reached over loopback when it is every address.
fn health_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{ip}:{}/healthz", listen.port())
}
