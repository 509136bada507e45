//! Instances: starting them, reading them and their journal, messages and
//! cancellation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::request::{
    IdempotencyParams, RESUME_QUERY, START_QUERY, SyncParams, VersionParams, parse_json,
    parse_query, parse_sync,
};
use super::views::{
    DeliveredTo, DeliveryView, ErrorBody, EventView, HistoryView, InstanceView, instance_view,
    load_instance, timestamp,
};
use super::{AppState, BAD_PATH, INTERNAL};
use crate::blocking;
use crate::error::{Error, Result};
use crate::model::JournalEntry;
use crate::runtime::{Progress, StartRequest};

/// Longest `Idempotency-Key`, in bytes.
const MAX_IDEMPOTENCY_KEY: usize = 256;

fn location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/instances/{id}")).expect("ids are ASCII")
}

/// Start an instance.
///
/// Starts an instance of the workflow's newest version, or of `version`,
/// with the JSON body as its input. An instance stays on the version it
/// started on.
#[utoipa::path(
    post,
    path = "/workflows/{name}/instances",
    tag = "instances",
    params(
        ("name" = String, Path, example = "expense-approval", description = "Workflow name."),
        SyncParams,
        VersionParams,
        IdempotencyParams,
    ),
    request_body(
        description = "The workflow input: any JSON value. The example is an input of the \
                       bundled `expense-approval` workflow.",
        content((Value = "application/json", example = json!({
            "employee": "erin", "manager": "bob", "deputy": "dana",
            "amount": 1250.0, "currency": "EUR", "description": "conference travel"
        }))),
    ),
    responses(
        (status = 200, description = "The `Idempotency-Key` was used before with the same \
                                      input; the instance that start created.",
            body = InstanceView,
            headers(
                ("Location" = String, description = "Path of the instance."),
                ("Idempotent-Replayed" = String, description = "Always `true`."),
            )),
        (status = 201, description = "A sync start saw the instance stop on its own.",
            body = InstanceView,
            headers(("Location" = String, description = "Path of the instance."))),
        (status = 202, description = "An async start, or a sync start whose timeout passed \
                                      first.",
            body = InstanceView,
            headers(("Location" = String, description = "Path of the instance."))),
        (status = 400, description = "`invalid_json`, `invalid_query`, \
                                      `invalid_idempotency_key`, or `invalid_request` for a \
                                      path that is not valid UTF-8 once percent-decoded.",
            body = ErrorBody),
        (status = 404, description = "`workflow_not_found` or `workflow_version_not_found`",
            body = ErrorBody),
        (status = 409, description = "`idempotency_key_reused`: the key started an instance \
                                      with another input.",
            body = ErrorBody),
        (status = 413, description = "`payload_too_large` for a body over the limit of JSON \
                                      request bodies, `input_too_large` for an input over \
                                      `layover serve --document-limit-kib` as compact JSON.",
            body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn start_instance(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let params = parse_query(query, START_QUERY)?;
    let sync = parse_sync(&params)?;
    let version = match params.get("version") {
        Some(value) => Some(value.parse::<u32>().map_err(|_| {
            Error::bad_request(
                "invalid_query",
                format!("version={value:?} is invalid; use a version number"),
            )
        })?),
        None => None,
    };
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|key| (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()));
            Some(
                key.ok_or_else(|| {
                    Error::bad_request(
                        "invalid_idempotency_key",
                        "the Idempotency-Key header must be 1 to 256 visible ASCII characters",
                    )
                })?
                .to_owned(),
            )
        }
        None => None,
    };
    let input: Value = parse_json(&body, "workflow input")?;
    let started = state
        .runtime
        .start(StartRequest {
            workflow: name,
            version,
            input,
            idempotency_key,
            sync,
        })
        .await?;
    let id = started.progress.instance.id.clone();
    let view = instance_view(&state, started.progress.instance).await?;
    let status = if !started.new {
        StatusCode::OK
    } else if started.progress.settled {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, location(&id));
    if !started.new {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Show an instance.
///
/// The instance with the wait it is parked on and, for a human task, the
/// task.
#[utoipa::path(
    get,
    path = "/instances/{id}",
    tag = "instances",
    params(("id" = String, Path, description = "Instance id.")),
    responses(
        (status = 200, description = "The instance.", body = InstanceView),
        (status = 400, description = BAD_PATH, body = ErrorBody),
        (status = 404, description = "`instance_not_found`", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn get_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>> {
    let record = load_instance(&state, &id).await?;
    Ok(Json(instance_view(&state, record).await?))
}

/// Show an instance's journal.
///
/// Every event of the instance, oldest first.
#[utoipa::path(
    get,
    path = "/instances/{id}/history",
    tag = "instances",
    params(("id" = String, Path, description = "Instance id.")),
    responses(
        (status = 200, description = "The journal.", body = HistoryView),
        (status = 400, description = BAD_PATH, body = ErrorBody),
        (status = 404, description = "`instance_not_found`", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn get_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<HistoryView>> {
    load_instance(&state, &id).await?;
    let store = state.runtime.store();
    let owned_id = id.clone();
    let journal: Vec<JournalEntry> = blocking(move || store.journal(&owned_id)).await?;
    let events = journal
        .into_iter()
        .map(|entry| EventView {
            seq: entry.seq,
            at: timestamp(entry.at),
            event: entry.event,
        })
        .collect();
    Ok(Json(HistoryView {
        instance_id: id,
        events,
    }))
}

/// Returns the status of a call that resumed an instance: `200` when a sync
/// call saw the next checkpoint, `202` otherwise.
pub(super) fn resumed_status(progress: &Progress) -> StatusCode {
    if progress.settled {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}

/// Send a message to an instance.
///
/// When the instance waits for a message of this name, the wait is resolved;
/// otherwise the message is kept in the instance's mailbox until the workflow
/// asks for it.
#[utoipa::path(
    post,
    path = "/instances/{id}/messages/{name}",
    tag = "instances",
    params(
        ("id" = String, Path, description = "Instance id."),
        ("name" = String, Path, min_length = 1, max_length = 128, example = "payment-received",
            description = "Message name: 1 to 128 bytes."),
        SyncParams,
    ),
    request_body(
        description = "The message payload: any JSON value.",
        content((Value = "application/json", example = json!({"paid": true}))),
    ),
    responses(
        (status = 200, description = "A sync call saw the instance stop again.",
            body = DeliveryView),
        (status = 202, description = "An async call, or a sync call whose timeout passed \
                                      first, or a message kept in the mailbox.",
            body = DeliveryView),
        (status = 400, description = "`invalid_json`, `invalid_query`, \
                                      `invalid_message_name`, or `invalid_request` for a path \
                                      that is not valid UTF-8 once percent-decoded.",
            body = ErrorBody),
        (status = 404, description = "`instance_not_found`", body = ErrorBody),
        (status = 409, description = "`instance_finished`: the instance has ended.",
            body = ErrorBody),
        (status = 413, description = "`payload_too_large` for a body over the limit of JSON \
                                      request bodies, `message_too_large` for a payload over \
                                      `layover serve --document-limit-kib` as compact JSON.",
            body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn send_message(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = parse_query(query, RESUME_QUERY)?;
    let sync = parse_sync(&params)?;
    let payload: Value = parse_json(&body, "message payload")?;
    let (to_wait, progress) = state
        .runtime
        .send_message(&id, &name, payload, sync)
        .await?;
    let status = resumed_status(&progress);
    let instance = instance_view(&state, progress.instance).await?;
    let delivered = if to_wait {
        DeliveredTo::Wait
    } else {
        DeliveredTo::Mailbox
    };
    let body = DeliveryView {
        delivered,
        instance,
    };
    Ok((status, Json(body)).into_response())
}

/// Cancel an instance.
///
/// Cancels an instance that has not ended, with its open task and timer. A
/// request body is ignored.
#[utoipa::path(
    post,
    path = "/instances/{id}/cancel",
    tag = "instances",
    params(("id" = String, Path, description = "Instance id.")),
    responses(
        (status = 200, description = "The cancelled instance.", body = InstanceView),
        (status = 400, description = BAD_PATH, body = ErrorBody),
        (status = 404, description = "`instance_not_found`", body = ErrorBody),
        (status = 409, description = "`instance_finished`: the instance has ended.",
            body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn cancel_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>> {
    let record = state.runtime.cancel(&id).await?;
    Ok(Json(instance_view(&state, record).await?))
}
