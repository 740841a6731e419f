//! Assembling and running the server: state, router, middleware, listener, shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use lanyard_core::{Clock, ErrorCode};
use lanyard_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::{ApiError, RequestContext, REQUEST};
use crate::redis_conn::RedisHandle;
use crate::routes::{self, ops::PublishedDocs};
use crate::state::AppState;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Builds the full router for a state.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = routes::api();
    let json = openapi
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    let value: serde_json::Value = serde_json::from_str(&json).expect("just serialised");
    let docs = Arc::new(PublishedDocs {
        html: crate::docs::render(&value),
        openapi_json: json,
    });
    routes::hidden(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(Extension(docs))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The unknown-route answer. The e2e guard answers with exactly this too.
pub fn unknown_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No such route.")
}

async fn not_found() -> ApiError {
    unknown_route()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "This route does not accept that method.",
    )
}

/// An incoming request id is kept when it is short and plain; otherwise a new one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .filter(|v| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string)
}

/// Request id, metrics and one log line per request. Never logs headers or bodies.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let ctx = RequestContext {
        request_id: id.clone(),
        public_url: state.public_url().clone(),
    };
    let mut response = REQUEST.scope(ctx, next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics()
        .observe_http(&route, &method, status, elapsed.as_secs_f64());
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    pub public_url: String,
    pub state: AppState,
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
        self.state.store().close().await;
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
                self.state.store().close().await;
                result.context("server task panicked")?.context("server failed")
            }
        }
    }
}

/// Creates the data dir, private to this user, if it is missing.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))
}

/// Opens the store and applies migrations (idempotent).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    ensure_data_dir(config)?;
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database at {}", config.database_url))?;
    let applied = store.migrate().await.context("cannot apply migrations")?;
    tracing::info!(
        backend = store.dialect().as_str(),
        applied,
        "database ready"
    );
    Ok(store)
}

/// Starts the server: secrets, database, migrations, Redis, listener. Returns once listening.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<RunningServer> {
    ensure_data_dir(&config)?;
    let secrets = crate::secrets::resolve(&config)?;
    let store = open_store(&config).await?;
    let redis = config
        .redis_url
        .clone()
        .map(RedisHandle::new)
        .transpose()
        .context("invalid Redis URL")?;
    if let Some(redis) = &redis {
        if let Err(e) = redis.ping().await {
            tracing::warn!(error = %e, "redis is not answering yet; /readyz will report it");
        }
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState::new(config, public_url.clone(), store, redis, secrets, clock)?;
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(crate::workers::run_all(state.clone(), workers_stopped));
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        let _ = stop_workers.send(true);
        let _ = workers.await;
        served
    });
    tracing::info!(address = %addr, public_url = %public_url, "lanyard listening on http://{addr}");
    Ok(RunningServer {
        addr,
        public_url,
        state,
        shutdown: Some(tx),
        task,
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
