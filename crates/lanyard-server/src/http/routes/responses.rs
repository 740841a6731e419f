//! Statuses that every operation of a kind can answer, added to the OpenAPI document once here
//! rather than repeated (and forgotten) on each route:
//!
//! - every operation: 408 `request_timeout` (the request deadline);
//! - with a JSON body: 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type`;
//! - with a query: 400 `invalid_query`;
//! - with path parameters: 404 `not_found` (a malformed or someone else's id);
//! - behind a bearer: 401 `unauthorized`; behind the admin token, 404 (it answers like an
//!   unknown route).
//!
//! Routes do not repeat these; a route that documents one of these statuses itself (a 404 with
//! its own meaning, say) keeps its own description.

use lanyard_core::ErrorCode;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

fn error(codes: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(codes)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build(),
    )
}

fn add(op: &mut Operation, status: u16, codes: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| error(codes));
}

fn complete(path: &str, op: &mut Operation) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let in_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let in_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    add(op, 408, "`request_timeout`");
    if op.request_body.is_some() {
        add(op, 400, "`invalid_body`");
        add(op, 413, "`payload_too_large`");
        add(op, 415, "`unsupported_media_type`");
    }
    if in_query {
        add(op, 400, "`invalid_query`");
    }
    if in_path {
        add(op, 404, "`not_found`");
    }
    if path.starts_with("/admin/") {
        add(
            op,
            404,
            "`not_found`: no admin token configured, or a wrong one",
        );
    } else if secured {
        add(op, 401, "`unauthorized`");
    }
}

/// Lists `codes` on `op`: each under its status, added to the status's entry when the route
/// documents it already (with words of its own), or as a new entry.
fn list_codes(op: &mut Operation, codes: &[ErrorCode]) {
    for code in codes {
        let status = code.spec().status.to_string();
        let named = format!("`{code}`");
        match op.responses.responses.get_mut(&status) {
            Some(RefOr::T(response)) => {
                if !response.description.contains(&named) {
                    response.description = format!("{}; {}", response.description, line(*code));
                }
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                op.responses.responses.insert(status, error(&line(*code)));
            }
        }
    }
}

/// "`code`: what it means", from the registry.
fn line(code: ErrorCode) -> String {
    format!(
        "`{code}`: {}",
        code.spec().description.trim_end_matches('.')
    )
}

/// Lists on each operation the codes its error types can become (see [`super::answers`]).
pub fn document_errors(doc: &mut OpenApi, answers: &[super::Answers]) {
    for answer in answers {
        let item = doc
            .paths
            .paths
            .get_mut(answer.path)
            .unwrap_or_else(|| panic!("{} is not a documented path", answer.path));
        let op = match answer.method {
            "GET" => &mut item.get,
            "POST" => &mut item.post,
            "PATCH" => &mut item.patch,
            "DELETE" => &mut item.delete,
            "PUT" => &mut item.put,
            other => panic!("{other} is not a method the API uses"),
        };
        let op = op
            .as_mut()
            .unwrap_or_else(|| panic!("{} {} is not documented", answer.method, answer.path));
        list_codes(op, &answer.codes);
    }
}

/// Adds the common statuses to every operation of `doc`.
pub fn complete_all(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete(path, op);
        }
    }
}
