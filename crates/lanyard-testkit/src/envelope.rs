//! Checking error envelopes the way a client reads them.

use lanyard_core::ErrorCode;

/// Asserts that `response` is the error envelope for `code`, and returns its body.
///
/// Checks the status, `ok: false`, a non-empty message, that `request_id` equals the
/// `x-request-id` header, the registry's agent action for this deployment, and `Retry-After`.
pub async fn expect_error(
    response: reqwest::Response,
    code: &str,
    public_url: &str,
) -> serde_json::Value {
    let registered =
        ErrorCode::parse(code).unwrap_or_else(|| panic!("{code} is not a registered code"));
    let spec = registered.spec();
    let status = response.status().as_u16();
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry_header = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.expect("body");
    assert_eq!(status, spec.status, "status for {code}: {text}");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not a JSON envelope: {text}"));
    assert_eq!(body["ok"], false, "{text}");
    assert_eq!(body["error"], code, "{text}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{text}"
    );
    let id = body["request_id"].as_str().expect("request_id");
    assert_eq!(
        Some(id.to_string()),
        header_id,
        "x-request-id must match the body"
    );
    match registered.agent_action(public_url) {
        Some(action) => assert_eq!(body["agent_action"], action.as_str(), "{text}"),
        None => assert!(body.get("agent_action").is_none(), "{text}"),
    }
    if matches!(status, 429 | 502 | 503 | 504) {
        let seconds = body["retry_after_seconds"]
            .as_u64()
            .expect("retry_after_seconds");
        assert_eq!(
            retry_header,
            Some(seconds.to_string()),
            "Retry-After header"
        );
    }
    body
}
