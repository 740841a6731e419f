//! Running the server: services, router, listener, workers, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use lanyard_core::Clock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::serve::serve;
use crate::services::Services;

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The separate metrics listener's address, when `LANYARD_METRICS_LISTEN` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub public_url: String,
    pub services: Services,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and closes the database.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops (after `shutdown` or a fatal error).
    pub async fn wait(self) -> anyhow::Result<()> {
        let result = self.task.await.context("server task panicked")?;
        self.services.store().close().await;
        result.context("server failed")
    }

    /// Stops on the first of `signal` or a server error.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            () = signal => {
                tracing::info!("shutting down: finishing in-flight requests");
                self.shutdown().await
            }
            result = &mut self.task => {
                self.services.store().close().await;
                result.context("server task panicked")?.context("server failed")
            }
        }
    }
}

/// Starts the server: listener, secrets, database, migrations, Redis, workers. Returns once
/// listening.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<RunningServer> {
    crate::services::ensure_data_dir(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let services = Services::open(config, public_url.clone(), clock).await?;
    if let Some(redis) = services.redis() {
        if let Err(e) = redis.ping().await {
            tracing::warn!(error = %e, "redis is not answering yet; /readyz will report it");
        }
    }
    let config = services.config();
    let unserved = config.gitlab.len() + config.oauth2.len() + config.secrets.len();
    if unserved > 0 {
        tracing::warn!(
            providers = unserved,
            "[[gitlab]], [[oauth2]] and [[secret]] are read and checked, but this release does not serve their connections yet"
        );
    }
    let metrics_listener = match services.config().metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen for metrics on {at}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let app = crate::http::router(services.clone());
    let limits = services.config().http;
    let (tx, rx) = oneshot::channel::<()>();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = if services.config().workers.background {
        tokio::spawn(crate::workers::run_all(services.clone(), stopped.clone()))
    } else {
        tokio::spawn(async {})
    };
    let metrics = metrics_listener.map(|listener| {
        let router = crate::http::metrics_router(services.clone());
        tokio::spawn(serve(listener, router, limits, stopped.clone()))
    });
    let task = tokio::spawn(async move {
        let stopping = async move {
            let _ = rx.await;
            let _ = stop.send(true);
        };
        let (served, ()) = tokio::join!(serve(listener, app, limits, stopped), stopping);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        let _ = workers.await;
        served
    });
    if let Some(at) = metrics_addr {
        tracing::info!(address = %at, "metrics listening on http://{at}/metrics");
    }
    tracing::info!(address = %addr, public_url = %public_url, "lanyard listening on http://{addr}");
    Ok(RunningServer {
        addr,
        metrics_addr,
        public_url,
        services,
        shutdown: Some(tx),
        task,
    })
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: call it before the server says it is listening, or a signal sent on
/// that line would find the default action and kill the process.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
