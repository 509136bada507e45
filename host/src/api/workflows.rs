//! `/workflows`: component uploads and the workflow catalogue.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::request::ComponentBytes;
use super::views::{ErrorBody, UploadedVersionView, WorkflowListView, WorkflowView, workflow_view};
use super::{AppState, BAD_PATH, INTERNAL, UPLOAD_TOO_LARGE};
use crate::blocking;
use crate::error::{Error, ErrorKind, Result};
use crate::model::WorkflowVersion;

/// Media types an upload may declare; an upload without `Content-Type` is
/// taken as a component too.
const COMPONENT_TYPES: [&str; 2] = ["application/wasm", "application/octet-stream"];

/// Upload a workflow component.
///
/// Validates the component against the world `layover:workflow/workflow@0.1.0`,
/// compiles it and stores it as the workflow's next version. Uploading the
/// bytes of the newest version again returns that version.
#[utoipa::path(
    put,
    path = "/workflows/{name}",
    tag = "workflows",
    params(
        ("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$", example = "expense-approval",
            description = "Workflow name: 1 to 64 lowercase letters, digits and `-`, starting \
                           with a letter."),
    ),
    request_body(
        description = "The component bytes, built for wasm32-wasip2 against the world \
                       `layover:workflow/workflow@0.1.0`. A body without `Content-Type` is \
                       taken as a component too.",
        content(
            (inline(ComponentBytes) = "application/wasm"),
            (inline(ComponentBytes) = "application/octet-stream"),
        ),
    ),
    responses(
        (status = 200, description = "The bytes are the newest version already; that version.",
            body = UploadedVersionView),
        (status = 201, description = "The component was stored as a new version.",
            body = UploadedVersionView),
        (status = 400, description = "`invalid_workflow_name`, or `invalid_request` for a path \
                                      that is not valid UTF-8 once percent-decoded.",
            body = ErrorBody),
        (status = 413, description = UPLOAD_TOO_LARGE, body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is neither \
                                      `application/wasm` nor `application/octet-stream`.",
            body = ErrorBody),
        (status = 422, description = "The host cannot run the component: `not_a_component`, \
                                      `invalid_component`, `unsupported_imports` or \
                                      `missing_export`.",
            body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn upload_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !COMPONENT_TYPES.contains(&essence) {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                "unsupported_media_type",
                format!(
                    "content type {content_type:?} is not a component; send the component \
                     bytes as application/wasm"
                ),
            ));
        }
    }
    let (version, created) = state.runtime.deploy(&name, body.to_vec()).await?;
    let status = if created {
        tracing::info!(workflow = %name, version = version.version, hash = %version.hash, "workflow version stored");
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UploadedVersionView::from(version))).into_response())
}

/// List the workflows.
///
/// Every workflow with its versions, by name.
#[utoipa::path(
    get,
    path = "/workflows",
    tag = "workflows",
    responses(
        (status = 200, description = "The workflows.", body = WorkflowListView),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn list_workflows(
    State(state): State<AppState>,
) -> Result<Json<WorkflowListView>> {
    let store = state.runtime.store();
    let versions = blocking(move || store.all_versions()).await?;
    let mut by_name: BTreeMap<String, Vec<WorkflowVersion>> = BTreeMap::new();
    for version in versions {
        by_name
            .entry(version.name.clone())
            .or_default()
            .push(version);
    }
    let workflows = by_name
        .values()
        .filter_map(|versions| workflow_view(versions))
        .collect();
    Ok(Json(WorkflowListView { workflows }))
}

/// Show a workflow.
///
/// The workflow with its versions, oldest first.
#[utoipa::path(
    get,
    path = "/workflows/{name}",
    tag = "workflows",
    params(
        ("name" = String, Path, example = "expense-approval", description = "Workflow name."),
    ),
    responses(
        (status = 200, description = "The workflow.", body = WorkflowView),
        (status = 400, description = BAD_PATH, body = ErrorBody),
        (status = 404, description = "`workflow_not_found`", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn get_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<WorkflowView>> {
    let store = state.runtime.store();
    let owned_name = name.clone();
    let versions = blocking(move || store.versions(&owned_name)).await?;
    workflow_view(&versions)
        .map(Json)
        .ok_or_else(|| Error::workflow_not_found(&name))
}
