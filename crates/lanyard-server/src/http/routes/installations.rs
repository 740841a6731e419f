//! The installation flow: a team starts it, and GitHub's setup URL completes it in the user's
//! browser, so the answers there are pages (or a redirect), not JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_core::wire::ErrorEnvelope as ErrorBody;
use lanyard_core::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::installations::{self, with_connection_id, Completed, InstallError, Setup};
use crate::http::auth::TeamAuth;
use crate::http::docs::esc;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::ApiJson;
use crate::services::Services;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInstallation {
    /// The GitHub host, as in repo URLs (e.g. `github.com`).
    pub host: String,
    /// Where to send the user when the connection is made; its origin must be allowed.
    pub return_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StartedInstallation {
    /// GitHub's page to install the App (or pick an installation), carrying the signed state.
    pub install_url: String,
    /// The state is single use and expires at this time.
    pub state_expires_at: DateTime<Utc>,
}

/// Start the installation flow: the URL to send the user to.
#[utoipa::path(post, path = "/v1/github/installations", tag = "github", request_body = StartInstallation, security(("bearer" = [])), responses(
    (status = 201, body = StartedInstallation),
    (status = 422, description = "`unknown_github_host`, `installation_flow_unconfigured` or `invalid_return_to`", body = ErrorBody),
    (status = 429, description = "`rate_limited`", body = ErrorBody),
))]
pub async fn start(
    State(svc): State<Services>,
    auth: TeamAuth,
    ApiJson(body): ApiJson<StartInstallation>,
) -> ApiResult<(StatusCode, Json<StartedInstallation>)> {
    let started =
        installations::start(&svc, auth.team.id, &body.host, body.return_to.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(StartedInstallation {
            install_url: started.install_url,
            state_expires_at: started.state_expires_at,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SetupQuery {
    /// The installation GitHub made or the user picked.
    pub installation_id: Option<String>,
    /// `install`, `update`, or `request` when an owner's approval is pending.
    pub setup_action: Option<String>,
    /// The OAuth code for the user who authorised the App.
    pub code: Option<String>,
    /// The state from the install URL.
    pub state: Option<String>,
}

/// A small page for the browser: the outcome, and for an error its code.
fn page(status: StatusCode, title: &str, message: &str, code: Option<ErrorCode>) -> Response {
    let code = code.map_or_else(String::new, |c| {
        format!(
            "<p><small>Error code: <code>{}</code></small></p>",
            c.as_str()
        )
    });
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;\
         padding:0 1em;color:#1d2330}}</style></head><body><h1>{t}</h1><p>{m}</p>{code}\
         </body></html>",
        t = esc(title),
        m = esc(message),
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_page(e: InstallError) -> Response {
    let api = ApiError::from(e);
    let message = api.message().to_string();
    page(
        api.status(),
        "GitHub was not connected",
        &message,
        Some(api.code),
    )
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(LOCATION, location);
            response
        }
        Err(_) => error_page(InstallError::InvalidReturnTo),
    }
}

/// GitHub's setup URL: binds the installation if the authorising user can see it. No bearer:
/// the state authenticates the request. Answers with a page, or a redirect to `return_to`.
#[utoipa::path(get, path = "/v1/github/setup", tag = "github", params(SetupQuery), responses(
    (status = 200, description = "A page naming the bound owner, or saying approval is pending", content_type = "text/html"),
    (status = 303, description = "To `return_to`, with `connection_id` added"),
    (status = 400, description = "`invalid_state` or `invalid_query` (a page)", content_type = "text/html"),
    (status = 403, description = "`installation_not_owned` (a page)", content_type = "text/html"),
    (status = 422, description = "`unknown_github_host` or `installation_flow_unconfigured` (a page)", content_type = "text/html"),
    (status = 502, description = "`github_rejected` (a page)", content_type = "text/html"),
    (status = 503, description = "`github_unavailable` (a page)", content_type = "text/html"),
))]
pub async fn setup(
    State(svc): State<Services>,
    query: Result<Query<SetupQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return page(
            StatusCode::BAD_REQUEST,
            "GitHub was not connected",
            "The setup link is malformed.",
            Some(ErrorCode::InvalidQuery),
        );
    };
    let installation_id = match query.installation_id.as_deref().map(str::parse::<u64>) {
        Some(Err(_)) => {
            return page(
                StatusCode::BAD_REQUEST,
                "GitHub was not connected",
                "installation_id must be a number.",
                Some(ErrorCode::InvalidQuery),
            )
        }
        other => other.and_then(Result::ok),
    };
    let setup = Setup {
        installation_id,
        setup_action: query.setup_action,
        code: query.code,
        state: query.state,
    };
    match installations::complete(&svc, setup).await {
        Err(e) => error_page(e),
        Ok(Completed::Pending { return_to }) => match return_to {
            Some(to) => redirect(&to),
            None => page(
                StatusCode::OK,
                "Waiting for approval",
                "An owner of the GitHub account must approve the App's installation. Nothing is \
                 connected yet: start again once it is approved.",
                None,
            ),
        },
        Ok(Completed::Bound {
            connection,
            team_name,
            return_to,
        }) => match return_to {
            Some(to) => redirect(&with_connection_id(&to, connection.id)),
            None => page(
                StatusCode::OK,
                "GitHub connected",
                &format!(
                    "{} on {} is now connected to the Lanyard team \u{201c}{team_name}\u{201d}. \
                     If you did not mean to connect it to that team, uninstall the App from {} \
                     on GitHub. You can close this page.",
                    connection.owner, connection.host, connection.owner
                ),
                None,
            ),
        },
    }
}
