//! The HTTP API: axum routes, the mapping of errors to statuses and the
//! OpenAPI document. Bodies are JSON in and out, and every error is
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! Every handler carries a `#[utoipa::path]` attribute and is registered
//! through utoipa-axum's `OpenApiRouter`, which adds the route and its
//! OpenAPI entry together, so the document served at `GET /openapi.json`
//! lists exactly the routes the router has.

mod instances;
mod openapi;
mod request;
mod tasks;
mod views;
mod workflows;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorKind};
use crate::runtime::Runtime;
use views::{ErrorBody, HealthView};

pub use openapi::{document, document_json};

/// Response descriptions that several routes share.
const INTERNAL: &str = "`internal`: a fault inside the host; the host log has the details.";
const BAD_PATH: &str =
    "`invalid_request`: a path parameter is not valid UTF-8 once percent-decoded.";
const JSON_TOO_LARGE: &str = "`payload_too_large`: the body is over the limit of JSON request \
                              bodies, 2 MiB or twice `layover serve --document-limit-kib`, \
                              whichever is larger.";
const UPLOAD_TOO_LARGE: &str = "`payload_too_large`: the component is over the upload limit \
                                that `layover serve --upload-limit-mib` sets, 64 MiB by default.";

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest component upload. Default: 64 MiB.
    pub upload_bytes: usize,
    /// Largest JSON request body. Default: 2 MiB.
    pub json_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            upload_bytes: 64 << 20,
            json_bytes: 2 << 20,
        }
    }
}

#[derive(Clone)]
struct AppState {
    runtime: Arc<Runtime>,
}

/// Builds the HTTP API on the runtime.
pub fn router(runtime: Arc<Runtime>, config: &ApiConfig) -> Router {
    let (router, _document) = routes(config).split_for_parts();
    router
        .fallback(route_not_found)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(AppState { runtime })
}

/// Registers every route with its OpenAPI entry. Uploads get their own body
/// limit, every other route the limit of JSON bodies.
fn routes(config: &ApiConfig) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::default()
        .routes(routes!(workflows::upload_workflow, workflows::get_workflow))
        .layer(DefaultBodyLimit::max(config.upload_bytes));
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health))
        .routes(routes!(openapi::serve_document))
        .routes(routes!(workflows::list_workflows))
        .routes(routes!(instances::start_instance))
        .routes(routes!(instances::get_instance))
        .routes(routes!(instances::get_history))
        .routes(routes!(instances::send_message))
        .routes(routes!(instances::cancel_instance))
        .routes(routes!(tasks::list_tasks))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::claim_task))
        .routes(routes!(tasks::release_task))
        .routes(routes!(tasks::complete_task))
        .layer(DefaultBodyLimit::max(config.json_bytes))
        .merge(uploads)
}

/// Rewrites the plain-text errors that axum's extractors and router produce
/// (a body over its limit, a method the route does not take) into the API's
/// JSON error shape, so that every error has one form.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 << 10).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is over the size limit of this call".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method; GET /openapi.json lists the routes and \
             their methods"
                .to_owned(),
        ),
        StatusCode::NOT_FOUND => ("route_not_found", "no such route".to_owned()),
        _ if status.is_server_error() => {
            tracing::error!(%status, body = %text, "request failed");
            (
                "internal",
                "internal error; the host log has the details".to_owned(),
            )
        }
        _ => ("invalid_request", format!("the request is invalid: {text}")),
    };
    let mut rewritten = (status, Json(ErrorBody::new(code, message))).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        rewritten.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewritten
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match self.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.message, "request failed");
            "internal error; the host log has the details".to_owned()
        } else {
            tracing::debug!(code = self.code, message = %self.message, "request rejected");
            self.message
        };
        (status, Json(ErrorBody::new(self.code, message))).into_response()
    }
}

async fn route_not_found() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "route_not_found",
        "no such route; GET /openapi.json lists the routes",
    )
}

/// Check the host's health.
///
/// Returns `ok` with the number of instances in memory.
#[utoipa::path(
    get,
    path = "/health",
    tag = "host",
    responses((status = 200, description = "The host is up.", body = HealthView)),
)]
async fn health(State(state): State<AppState>) -> Json<HealthView> {
    let (runners, parked) = state.runtime.resident();
    Json(HealthView {
        status: "ok",
        runners,
        parked,
    })
}
