//! Every route (documented or hidden) must be exercised with a 2xx answer by some integration
//! test. `TestApp`s record what they served; `.ci/run` runs this check after the suite:
//! `cargo test -p lanyard-server --test route_coverage -- --ignored`.

#[test]
#[ignore = "run after the whole suite, by .ci/run"]
fn every_route_is_covered_by_an_integration_test() {
    let doc: serde_json::Value =
        serde_json::from_str(&lanyard_server::http::routes::openapi_json()).unwrap();
    let mut expected = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            expected.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    for (method, path, _) in lanyard_server::http::routes::HIDDEN_ROUTES {
        expected.push(format!("{method} {path}"));
    }
    let recorded = lanyard_testkit::coverage::recorded();
    assert!(
        !recorded.is_empty(),
        "no coverage recorded: run the suite first"
    );
    let missing: Vec<&String> = expected.iter().filter(|r| !recorded.contains(*r)).collect();
    assert!(
        missing.is_empty(),
        "routes without a successful integration test: {missing:?}"
    );
}

#[test]
fn the_ledger_parser_reads_only_successes() {
    let metrics = "lanyard_http_requests_total{route=\"/v1/me\",method=\"GET\",status=\"200\"} 3\n\
                   lanyard_http_requests_total{route=\"/v1/audit\",method=\"GET\",status=\"401\"} 1\n";
    assert_eq!(
        lanyard_testkit::coverage::successful_routes(metrics),
        vec!["GET /v1/me".to_string()]
    );
}
