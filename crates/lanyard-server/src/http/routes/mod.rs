//! Every route, gathered in one place. The OpenAPI document is generated from this list.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::Services;

pub mod api_keys;
pub mod connections;
pub mod credentials;
pub mod e2e;
pub mod ops;
pub mod sessions;
pub mod team;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lanyard",
        description = "The credentials-and-accounts plane for AI-agent platforms. Errors share one \
                       envelope; their codes are listed on /docs.",
    ),
    modifiers(&BearerAuth),
    components(schemas(lanyard_core::wire::ErrorEnvelope)),
    tags(
        (name = "ops", description = "Health, readiness, metrics and this document"),
        (name = "team", description = "The calling team, its API keys and its audit log"),
        (name = "github", description = "GitHub connections: which owners the team's sessions can reach"),
        (name = "sessions", description = "Agent sessions and their runner tokens"),
        (name = "credentials", description = "Fresh GitHub credentials for a session's runner"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A team API key (lk_…), a session JWT, or on runner routes a runner token (lrt_…).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The router (without state) and the OpenAPI document describing it.
pub fn api() -> (Router<Services>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
        .routes(routes!(ops::docs))
        .routes(routes!(team::me))
        .routes(routes!(team::audit))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(connections::create, connections::list))
        .routes(routes!(connections::delete))
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::get, sessions::stop))
        .routes(routes!(credentials::github))
        .routes(routes!(credentials::compat))
        .split_for_parts()
}

/// Routes deliberately left out of the OpenAPI document, each with the reason.
pub const HIDDEN_ROUTES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/internal/e2e/account",
        "CI-only test accounts; without the token it must be indistinguishable from no route",
    ),
    (
        "DELETE",
        "/internal/e2e/account/{team_id}",
        "CI-only test account reaping; hidden for the same reason",
    ),
];

/// Adds the hidden routes. They take any method, so a wrong method cannot reveal them (405).
pub fn hidden(router: Router<Services>) -> Router<Services> {
    router
        .route("/internal/e2e/account", axum::routing::any(e2e::account))
        .route(
            "/internal/e2e/account/{team_id}",
            axum::routing::any(e2e::reap),
        )
}

/// The OpenAPI document, as `lanyard openapi` prints it and `/openapi.json` serves it.
pub fn openapi_json() -> String {
    api()
        .1
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}
