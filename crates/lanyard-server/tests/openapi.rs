//! The OpenAPI document is the contract in machine form: any change to it shows up in review as a
//! diff of `tests/snapshots/openapi__document.snap`. Accept an intended change with
//! `INSTA_UPDATE=always cargo test -p lanyard-server --test openapi` (or `cargo insta review`).

#[test]
fn document() {
    insta::assert_snapshot!(lanyard_server::http::routes::openapi_json());
}
