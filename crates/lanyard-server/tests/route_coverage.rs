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

/// CONTRACT §17: every error code a test saw an operation answer is listed in that operation's
/// OpenAPI entry (the entries are generated from the error types, so this catches a route that
/// answers through a type its entry does not name).
#[test]
#[ignore = "run after the whole suite, by .ci/run"]
fn every_error_code_answered_is_documented() {
    let doc: serde_json::Value =
        serde_json::from_str(&lanyard_server::http::routes::openapi_json()).unwrap();
    let recorded = lanyard_testkit::coverage::recorded();
    let mut checked = 0;
    let mut missing = Vec::new();
    for line in &recorded {
        let Some(rest) = line.strip_prefix("ERROR ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let (Some(method), Some(route), Some(code)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(op) = doc["paths"][route].get(method.to_lowercase()) else {
            // An unknown route, a hidden one, or a method the route does not take.
            continue;
        };
        checked += 1;
        let named = format!("`{code}`");
        let listed = op["responses"].as_object().unwrap().values().any(|r| {
            r["description"]
                .as_str()
                .unwrap_or_default()
                .contains(&named)
        });
        if !listed {
            missing.push(line.clone());
        }
    }
    assert!(
        checked > 0,
        "no error answers recorded: run the suite first"
    );
    assert!(
        missing.is_empty(),
        "codes answered but not in the operation's OpenAPI entry: {missing:#?}"
    );
}

#[test]
fn the_ledger_parser_reads_errors_by_code() {
    let metrics = "lanyard_http_errors_total{route=\"/v1/sessions\",method=\"POST\",code=\"rate_limited\"} 2\n";
    assert_eq!(
        lanyard_testkit::coverage::error_answers(metrics),
        vec!["ERROR POST /v1/sessions rate_limited".to_string()]
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
