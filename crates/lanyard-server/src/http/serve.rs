//! Serving connections, with the limits that keep a slow or greedy client from holding the
//! server: a bound on connections served at once, a deadline for each request head (which also
//! closes kept-alive connections left idle), and a deadline for each request (see
//! [`deadline`]). Shutdown stops accepting, lets requests in flight finish, and then closes
//! what is left.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lanyard_core::ErrorCode;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::HttpLimits;
use crate::http::error::ApiError;
use crate::services::Services;

/// The largest request head (request line and headers) read before the connection is refused.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Answers 408 `request_timeout` when a request, its body included, outlasts the limit. The
/// handler is dropped: an open transaction rolls back.
pub async fn deadline(State(svc): State<Services>, request: Request, next: Next) -> Response {
    let limit = svc.config().http.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "The request took longer than {} s, the server's limit.",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves `router` on `listener` until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let service = TowerToHyperService::new(router);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        // At the limit, connections wait in the kernel's backlog until one closes.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            // Errors here are the client's: a reset, a head timeout, a malformed request.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Requests in flight get their own deadline to finish; then the rest are cut.
    let drain = limits.request_timeout + limits.header_timeout;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "connections still open after the drain period were closed"
        );
    }
    connections.shutdown().await;
    Ok(())
}
