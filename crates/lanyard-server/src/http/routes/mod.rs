//! Every route, gathered in one place. The OpenAPI document is generated from this list.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::Services;

pub mod admin;
pub mod api_keys;
pub mod connections;
pub mod credentials;
pub mod e2e;
pub mod installations;
pub mod ops;
mod responses;
pub mod sessions;
pub mod team;
pub mod usage;
pub mod webhooks;

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
        (name = "admin", description = "For platforms that provision teams: enabled by LANYARD_ADMIN_TOKEN, sent as a bearer token"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's admin token (LANYARD_ADMIN_TOKEN). Without it, or with \
                         none configured, every /admin/ route answers like an unknown route.",
                    ))
                    .build(),
            ),
        );
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

/// The admin API's routes, behind their guard. The guard needs the services, so the caller adds
/// it: see [`api`].
fn admin_routes() -> OpenApiRouter<Services> {
    OpenApiRouter::new()
        .routes(routes!(admin::create_team, admin::find_teams))
        .routes(routes!(admin::change_team, admin::delete_team))
        .routes(routes!(admin::issue_key))
        .routes(routes!(admin::connect))
}

/// The router (without state) and the OpenAPI document describing it. With `services`, the
/// admin routes are guarded by its admin token; without, they are closed (every call answers
/// like an unknown route), so even that router is safe to serve.
pub fn api_with(services: Option<&Services>) -> (Router<Services>, OpenApiDoc) {
    let admin = match services {
        Some(svc) => admin_routes().layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            admin::guard,
        )),
        None => admin_routes().layer(axum::middleware::from_fn(admin::closed)),
    };
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
        .routes(routes!(ops::docs))
        .routes(routes!(team::me, team::change_me))
        .routes(routes!(team::audit))
        .routes(routes!(usage::usage))
        .routes(routes!(usage::notifications))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(connections::create, connections::list))
        .routes(routes!(connections::delete, connections::rotate))
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::get, sessions::stop))
        .routes(routes!(credentials::github))
        .routes(routes!(credentials::compat))
        .routes(routes!(installations::start))
        .routes(routes!(installations::setup))
        .routes(routes!(webhooks::receive))
        .merge(admin)
        .split_for_parts();
    responses::complete_all(&mut doc);
    (router, doc)
}

/// The router with the admin API closed, and the OpenAPI document (see [`api_with`]).
pub fn api() -> (Router<Services>, OpenApiDoc) {
    api_with(None)
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
