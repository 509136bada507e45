//! The worklist: listing, claiming, releasing and completing human tasks.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::instances::resumed_status;
use super::request::{
    ClaimBody, CompleteBody, RESUME_QUERY, SyncParams, TASKS_QUERY, TaskQueryParams, check_person,
    parse_json, parse_query, parse_sync,
};
use super::views::{CompletionView, ErrorBody, TaskListView, TaskView, instance_view, task_view};
use super::{AppState, BAD_PATH, INTERNAL, JSON_TOO_LARGE};
use crate::blocking;
use crate::error::{Error, Result};
use crate::model::{TaskOutcome, TaskStatus};
use crate::store::TaskFilter;

/// Default and largest `limit` of `GET /tasks`.
const DEFAULT_TASK_LIMIT: usize = 100;
const MAX_TASK_LIMIT: usize = 1000;

fn parse_status(value: &str) -> Result<Option<TaskStatus>> {
    match value {
        "open" => Ok(Some(TaskStatus::Open)),
        "completed" => Ok(Some(TaskStatus::Completed)),
        "expired" => Ok(Some(TaskStatus::Expired)),
        "cancelled" => Ok(Some(TaskStatus::Cancelled)),
        "all" => Ok(None),
        _ => Err(Error::bad_request(
            "invalid_query",
            format!("status={value:?} is invalid; use open, completed, expired, cancelled or all"),
        )),
    }
}

/// List tasks.
///
/// The worklist, oldest task first, filtered by assignee, group and state.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    params(TaskQueryParams),
    responses(
        (status = 200, description = "The tasks.", body = TaskListView),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn list_tasks(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<TaskListView>> {
    let params = parse_query(query, TASKS_QUERY)?;
    let status = match params.get("status") {
        Some(value) => parse_status(value)?,
        None => Some(TaskStatus::Open),
    };
    let limit = match params.get("limit") {
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_TASK_LIMIT).contains(limit))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!("limit={value:?} is invalid; use a number from 1 to 1000"),
                )
            })?,
        None => DEFAULT_TASK_LIMIT,
    };
    let filter = TaskFilter {
        assignee: params.get("assignee").cloned(),
        group: params.get("group").cloned(),
        status,
        limit,
    };
    let store = state.runtime.store();
    let tasks = blocking(move || store.tasks(&filter)).await?;
    let tasks = tasks.into_iter().map(task_view).collect();
    Ok(Json(TaskListView { tasks }))
}

/// Show a task.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id.")),
    responses(
        (status = 200, description = "The task.", body = TaskView),
        (status = 400, description = BAD_PATH, body = ErrorBody),
        (status = 404, description = "`task_not_found`", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>> {
    let store = state.runtime.store();
    let owned_id = id.clone();
    let task = blocking(move || store.task(&owned_id))
        .await?
        .ok_or_else(|| Error::task_not_found(&id))?;
    Ok(Json(task_view(task)))
}

/// Claim a task.
///
/// Gives an open task to one person. A task with an assignee is held by that
/// assignee from the start; a repeated claim by the holder returns the task.
#[utoipa::path(
    post,
    path = "/tasks/{id}/claim",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id.")),
    request_body = ClaimBody,
    responses(
        (status = 200, description = "The task, held by the claimant.", body = TaskView),
        (status = 400, description = "`invalid_json` or `invalid_body`, or `invalid_request` \
                                      for a path that is not valid UTF-8 once percent-decoded.",
            body = ErrorBody),
        (status = 404, description = "`task_not_found`", body = ErrorBody),
        (status = 409, description = "`task_not_open`, or `task_claimed`: someone else holds \
                                      the task.",
            body = ErrorBody),
        (status = 413, description = JSON_TOO_LARGE, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn claim_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TaskView>> {
    let ClaimBody { by } = parse_json(&body, r#"claim ({"by": "..."})"#)?;
    check_person(&by)?;
    let store = state.runtime.store();
    let task = blocking(move || store.claim_task(&id, &by)).await?;
    tracing::info!(task = %task.id, by = task.claimed_by.as_deref().unwrap_or(""), "task claimed");
    Ok(Json(task_view(task)))
}

/// Release a task.
///
/// Returns a claimed group task to its group. Releasing an unclaimed task
/// returns it unchanged.
#[utoipa::path(
    post,
    path = "/tasks/{id}/release",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id.")),
    request_body = ClaimBody,
    responses(
        (status = 200, description = "The task, held by no one.", body = TaskView),
        (status = 400, description = "`invalid_json` or `invalid_body`, or `invalid_request` \
                                      for a path that is not valid UTF-8 once percent-decoded.",
            body = ErrorBody),
        (status = 404, description = "`task_not_found`", body = ErrorBody),
        (status = 409, description = "`task_not_open`, `task_assigned` (a task with an \
                                      assignee cannot be released), or `task_claimed` \
                                      (someone else holds the task).",
            body = ErrorBody),
        (status = 413, description = JSON_TOO_LARGE, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn release_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TaskView>> {
    let ClaimBody { by } = parse_json(&body, r#"release ({"by": "..."})"#)?;
    check_person(&by)?;
    let store = state.runtime.store();
    let task = blocking(move || store.release_task(&id, &by)).await?;
    tracing::info!(task = %task.id, "task released");
    Ok(Json(task_view(task)))
}

/// Complete a task.
///
/// Completes an open task with one of its actions and resumes its instance.
/// A task held by someone else cannot be completed by another person; an
/// unclaimed group task can be completed by any member.
#[utoipa::path(
    post,
    path = "/tasks/{id}/complete",
    tag = "tasks",
    params(("id" = String, Path, description = "Task id."), SyncParams),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "A sync call saw the instance stop again.",
            body = CompletionView),
        (status = 202, description = "An async call, or a sync call whose timeout passed \
                                      first.",
            body = CompletionView),
        (status = 400, description = "`invalid_json`, `invalid_body` or `invalid_query`, or \
                                      `invalid_request` for a path that is not valid UTF-8 \
                                      once percent-decoded.",
            body = ErrorBody),
        (status = 404, description = "`task_not_found`", body = ErrorBody),
        (status = 409, description = "`task_not_open`, or `task_claimed`: someone else holds \
                                      the task.",
            body = ErrorBody),
        (status = 413, description = JSON_TOO_LARGE, body = ErrorBody),
        (status = 422, description = "`action_not_allowed`: the action is not one of the \
                                      task's actions.",
            body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    ),
)]
pub(super) async fn complete_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = parse_query(query, RESUME_QUERY)?;
    let sync = parse_sync(&params)?;
    let CompleteBody { action, data, by } = parse_json(
        &body,
        r#"completion ({"action": "...", "data": {...}, "by": "..."})"#,
    )?;
    check_person(&by)?;
    let data = if data.is_null() { json!({}) } else { data };
    let outcome = TaskOutcome { action, data, by };
    let (task, progress) = state.runtime.complete_task(&id, outcome, sync).await?;
    let status = resumed_status(&progress);
    let instance = instance_view(&state, progress.instance).await?;
    let body = CompletionView {
        task: task_view(task),
        instance,
    };
    Ok((status, Json(body)).into_response())
}
