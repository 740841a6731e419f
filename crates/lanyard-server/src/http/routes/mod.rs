//! Every route, gathered in one place. The OpenAPI document is generated from this list.

use axum::Router;
use lanyard_core::ErrorCode;
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
    responses::document_errors(&mut doc, &answers());
    (router, doc)
}

/// An operation, and the codes its handler can answer beyond those every operation of its kind
/// has (`responses::complete_all`): those of the error types it returns through, and those it
/// makes itself. Its OpenAPI entry lists each (CONTRACT §17); `tests/route_coverage.rs` fails when
/// a test saw an operation answer a code its entry does not list.
#[derive(Debug)]
pub struct Answers {
    pub method: &'static str,
    pub path: &'static str,
    pub codes: Vec<ErrorCode>,
}

/// What every operation's error types can become. Authentication reads the store, so every
/// authenticated operation can answer as the store does.
pub fn answers() -> Vec<Answers> {
    use crate::domain::accounts::AccountError;
    use crate::domain::admin::AdminError;
    use crate::domain::connections::ConnectionError;
    use crate::domain::credentials::CredentialError;
    use crate::domain::installations::InstallError;
    use crate::domain::sessions::SessionError;
    use crate::domain::webhooks::WebhookError;
    use crate::http::error::{codes_of, Documented};
    use lanyard_store::StoreError;
    use ErrorCode as C;

    let store = StoreError::codes();
    let with = |mut codes: Vec<ErrorCode>, more: &[ErrorCode]| {
        codes.extend_from_slice(more);
        codes
    };
    let team = with(store.clone(), &[C::Unauthorized]);
    let runner = with(CredentialError::codes(), &team);
    // The admin guard answers an unknown route's 404; each operation fails in some of the admin
    // domain's ways.
    let admin =
        |errors: Vec<AdminError>| with(codes_of(errors), &with(store.clone(), &[C::NotFound]));
    use AdminError as A;
    let team_fields = || vec![A::InvalidTier, A::InvalidExternalId, A::InvalidEmail];
    let op = |method, path, codes: Vec<ErrorCode>| Answers {
        method,
        path,
        codes,
    };
    vec![
        op("GET", "/readyz", vec![C::NotReady]),
        op("GET", "/metrics", vec![C::NotFound]),
        op("GET", "/v1/me", team.clone()),
        op("PATCH", "/v1/me", with(codes_of(team_fields()), &team)),
        op("GET", "/v1/audit", team.clone()),
        op("GET", "/v1/usage", team.clone()),
        op("GET", "/v1/notifications", team.clone()),
        op(
            "POST",
            "/v1/api-keys",
            with(
                AccountError::codes(),
                &with(team.clone(), &[C::InvalidLabel]),
            ),
        ),
        op("GET", "/v1/api-keys", team.clone()),
        op(
            "DELETE",
            "/v1/api-keys/{key_id}",
            with(AccountError::codes(), &team),
        ),
        op(
            "POST",
            "/v1/github/connections",
            with(ConnectionError::codes(), &team),
        ),
        op("GET", "/v1/github/connections", team.clone()),
        op(
            "DELETE",
            "/v1/github/connections/{connection_id}",
            with(ConnectionError::codes(), &team),
        ),
        op(
            "PATCH",
            "/v1/github/connections/{connection_id}",
            with(ConnectionError::codes(), &team),
        ),
        op("POST", "/v1/sessions", with(SessionError::codes(), &team)),
        op("GET", "/v1/sessions", team.clone()),
        op("GET", "/v1/sessions/{session_id}", team.clone()),
        op(
            "DELETE",
            "/v1/sessions/{session_id}",
            with(SessionError::codes(), &team),
        ),
        op(
            "GET",
            "/v1/sessions/{session_id}/credentials/github",
            runner.clone(),
        ),
        op(
            "GET",
            "/api/projects/{team_id}/agentic-sessions/{session_id}/credentials/github",
            runner,
        ),
        op(
            "POST",
            "/v1/github/installations",
            with(InstallError::codes(), &team),
        ),
        op("GET", "/v1/github/setup", InstallError::codes()),
        op("POST", "/v1/github/webhooks/{host}", WebhookError::codes()),
        op("POST", "/admin/v1/teams", admin(team_fields())),
        op("GET", "/admin/v1/teams", admin(vec![A::InvalidExternalId])),
        op("PATCH", "/admin/v1/teams/{team_id}", admin(team_fields())),
        op("DELETE", "/admin/v1/teams/{team_id}", admin(Vec::new())),
        op(
            "POST",
            "/admin/v1/teams/{team_id}/api-keys",
            with(
                admin(Vec::new()),
                &with(AccountError::codes(), &[C::InvalidLabel]),
            ),
        ),
        op(
            "POST",
            "/admin/v1/teams/{team_id}/github/connections",
            with(admin(Vec::new()), &ConnectionError::codes()),
        ),
    ]
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
