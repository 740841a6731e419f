//! Route coverage: every `TestApp` records, when dropped, which (method, route template) pairs
//! answered 2xx, so a final check can fail when a route has no test; and which error codes each
//! answered (`ERROR METHOD route code`), so it can fail when a route answers a code its OpenAPI
//! entry does not list.

use std::path::PathBuf;

/// Where the ledger files go: `<workspace>/target/route-coverage/`.
pub fn ledger_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/route-coverage")
}

/// The `METHOD route` pairs with a 2xx answer in a metrics scrape.
pub fn successful_routes(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("lanyard_http_requests_total{"))
        .filter_map(|l| {
            let field = |name: &str| l.split(&format!("{name}=\"")).nth(1)?.split('"').next();
            let (status, method, route) = (field("status")?, field("method")?, field("route")?);
            status.starts_with('2').then(|| format!("{method} {route}"))
        })
        .collect()
}

/// The `ERROR METHOD route code` lines of the error answers in a metrics scrape.
pub fn error_answers(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("lanyard_http_errors_total{"))
        .filter_map(|l| {
            let field = |name: &str| l.split(&format!("{name}=\"")).nth(1)?.split('"').next();
            let (method, route, code) = (field("method")?, field("route")?, field("code")?);
            Some(format!("ERROR {method} {route} {code}"))
        })
        .collect()
}

/// Every ledger line recorded so far.
pub fn recorded() -> std::collections::BTreeSet<String> {
    let mut all = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(ledger_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            all.extend(text.lines().map(str::to_string));
        }
    }
    all
}

/// Appends the routes this server answered with 2xx to the coverage ledger.
pub(crate) fn record_coverage(server: &lanyard_server::RunningServer) {
    let metrics = server.services.metrics().encode();
    let mut routes = successful_routes(&metrics);
    routes.extend(error_answers(&metrics));
    let dir = ledger_dir();
    if !routes.is_empty() && std::fs::create_dir_all(&dir).is_ok() {
        let name = format!(
            "{}-{}.txt",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let _ = std::fs::write(dir.join(name), routes.join("\n"));
    }
}
