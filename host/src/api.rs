//! The HTTP API: axum routes, request parsing and the mapping of errors to
//! statuses. Bodies are JSON in and out, and every error is
//! `{"error": {"code": "...", "message": "..."}}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::blocking;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Event, InstanceRecord, JournalEntry, Millis, OpenWait, Status, TaskRecord, TaskStatus,
    WaitRequest, WorkflowVersion,
};
use crate::runtime::{Progress, Runtime, StartRequest};
use crate::store::TaskFilter;

/// Default and longest wait of a sync call.
const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_SYNC_TIMEOUT: Duration = Duration::from_secs(300);

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

pub fn router(runtime: Arc<Runtime>, config: &ApiConfig) -> Router {
    let uploads = Router::new()
        .route("/workflows/{name}", put(upload_workflow).get(get_workflow))
        .layer(DefaultBodyLimit::max(config.upload_bytes));
    Router::new()
        .route("/health", get(health))
        .route("/workflows", get(list_workflows))
        .route("/workflows/{name}/instances", post(start_instance))
        .route("/instances/{id}", get(get_instance))
        .route("/instances/{id}/history", get(get_history))
        .route("/instances/{id}/messages/{name}", post(send_message))
        .route("/instances/{id}/cancel", post(cancel_instance))
        .route("/tasks", get(list_tasks))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/claim", post(claim_task))
        .route("/tasks/{id}/release", post(release_task))
        .route("/tasks/{id}/complete", post(complete_task))
        .layer(DefaultBodyLimit::max(config.json_bytes))
        .merge(uploads)
        .fallback(route_not_found)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(AppState { runtime })
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
            "this route does not take that method; docs/api.md lists the routes".to_owned(),
        ),
        StatusCode::NOT_FOUND => ("route_not_found", "no such route".to_owned()),
        _ if status.is_server_error() => {
            tracing::error!(%status, body = %text, "request failed");
            ("internal", "internal error; the host log has the details".to_owned())
        }
        _ => ("invalid_request", format!("the request is invalid: {text}")),
    };
    let body = json!({ "error": { "code": code, "message": message } });
    let mut rewritten = (status, Json(body)).into_response();
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
        let body = json!({ "error": { "code": self.code, "message": message } });
        (status, Json(body)).into_response()
    }
}

async fn route_not_found() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "route_not_found",
        "no such route; the API is described in docs/api.md",
    )
}

/// Returns `ok` with the number of instances in memory: `runners` have a
/// task in the host, `parked` of those wait at a wait state.
async fn health(State(state): State<AppState>) -> Json<Value> {
    let (runners, parked) = state.runtime.resident();
    Json(json!({ "status": "ok", "runners": runners, "parked": parked }))
}

// ---- request parsing ----

/// Parses a query string into its parameters, rejecting unknown ones.
fn parse_query(raw: Option<String>, known: &[&str]) -> Result<HashMap<String, String>> {
    let mut params = HashMap::new();
    for pair in raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        if !known.contains(&key.as_str()) {
            return Err(Error::bad_request(
                "invalid_query",
                format!(
                    "unknown query parameter {key:?}; this call takes: {}",
                    known.join(", ")
                ),
            ));
        }
        params.insert(key, percent_decode(value)?);
    }
    Ok(params)
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| {
                        Error::bad_request("invalid_query", "the query has a bad percent escape")
                    })?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Error::bad_request("invalid_query", "the query is not valid UTF-8"))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::bad_request(
            "invalid_query",
            format!("{name}={value:?} is invalid; use true or false"),
        )),
    }
}

/// Parses a duration such as `500ms`, `5s` or `2m`; a bare number is in
/// milliseconds.
fn parse_duration(name: &str, value: &str) -> Result<Duration> {
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(value).map_err(|_| {
        Error::bad_request(
            "invalid_query",
            format!("{name}={value:?} is invalid; use a duration such as 500ms, 5s or 2m"),
        )
    })
}

/// Reads the `sync` and `timeout` parameters: `None` for an async call, the
/// timeout for a sync one.
fn parse_sync(params: &HashMap<String, String>) -> Result<Option<Duration>> {
    let sync = match params.get("sync") {
        Some(value) => parse_bool("sync", value)?,
        None => false,
    };
    let timeout = match params.get("timeout") {
        Some(value) => parse_duration("timeout", value)?,
        None => DEFAULT_SYNC_TIMEOUT,
    };
    if timeout > MAX_SYNC_TIMEOUT {
        return Err(Error::bad_request(
            "invalid_query",
            format!("timeout is over the maximum of {MAX_SYNC_TIMEOUT:?}"),
        ));
    }
    Ok(sync.then_some(timeout))
}

fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    if body.is_empty() {
        return Err(Error::bad_request(
            "invalid_json",
            format!("the body is empty; send {what} as JSON"),
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        let code = if error.is_data() {
            "invalid_body"
        } else {
            "invalid_json"
        };
        Error::bad_request(code, format!("the body is not valid {what}: {error}"))
    })
}

// ---- views ----

fn timestamp(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[derive(Serialize)]
struct VersionView {
    version: u32,
    hash: String,
    size: u64,
    world: String,
    created_at: String,
}

#[derive(Serialize)]
struct WorkflowView {
    name: String,
    latest_version: u32,
    versions: Vec<VersionView>,
}

fn version_view(version: &WorkflowVersion) -> VersionView {
    VersionView {
        version: version.version,
        hash: version.hash.clone(),
        size: version.size,
        world: version.world.clone(),
        created_at: timestamp(version.created_at),
    }
}

fn workflow_view(versions: &[WorkflowVersion]) -> Option<WorkflowView> {
    let latest = versions.last()?;
    Some(WorkflowView {
        name: latest.name.clone(),
        latest_version: latest.version,
        versions: versions.iter().map(version_view).collect(),
    })
}

#[derive(Serialize)]
struct TaskView {
    id: String,
    instance_id: String,
    workflow: String,
    step: u32,
    title: String,
    actions: Vec<String>,
    assignee: Option<String>,
    group: Option<String>,
    form: Value,
    status: TaskStatus,
    claimed_by: Option<String>,
    created_at: String,
    due_at: Option<String>,
    completed_at: Option<String>,
    outcome: Option<crate::model::TaskOutcome>,
}

fn task_view(task: TaskRecord) -> TaskView {
    TaskView {
        id: task.id,
        instance_id: task.instance_id,
        workflow: task.workflow,
        step: task.step,
        title: task.spec.title,
        actions: task.spec.actions,
        assignee: task.spec.assignee,
        group: task.spec.group,
        form: task.spec.form,
        status: task.status,
        claimed_by: task.claimed_by,
        created_at: timestamp(task.created_at),
        due_at: task.due_at.map(timestamp),
        completed_at: task.completed_at.map(timestamp),
        outcome: task.outcome,
    }
}

#[derive(Serialize)]
struct WaitView {
    kind: &'static str,
    step: u32,
    since: String,
    /// When the wait times out or, for a sleep, ends.
    until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskView>,
}

#[derive(Serialize)]
struct InstanceView {
    id: String,
    workflow: String,
    version: u32,
    status: Status,
    input: Value,
    created_at: String,
    updated_at: String,
    wait: Option<WaitView>,
    fields: BTreeMap<String, Value>,
    output: Option<Value>,
    error: Option<String>,
}

/// Builds the view of an instance, with the task it waits on.
async fn instance_view(state: &AppState, record: InstanceRecord) -> Result<InstanceView> {
    let wait = match record.wait.clone() {
        Some(wait) => Some(wait_view(state, wait).await?),
        None => None,
    };
    Ok(InstanceView {
        id: record.id,
        workflow: record.workflow,
        version: record.version,
        status: record.status,
        input: record.input,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
        wait,
        fields: record.fields,
        output: record.output,
        error: record.error,
    })
}

async fn wait_view(state: &AppState, wait: OpenWait) -> Result<WaitView> {
    let task = match wait.task_id.clone() {
        Some(task_id) => {
            let store = state.runtime.store();
            blocking(move || store.task(&task_id)).await?.map(task_view)
        }
        None => None,
    };
    let message = match &wait.request {
        WaitRequest::Message { name, .. } => Some(name.clone()),
        _ => None,
    };
    Ok(WaitView {
        kind: wait.request.kind(),
        step: wait.step,
        since: timestamp(wait.since),
        until: wait.due.map(timestamp),
        message,
        task,
    })
}

async fn load_instance(state: &AppState, id: &str) -> Result<InstanceRecord> {
    let store = state.runtime.store();
    let owned_id = id.to_owned();
    blocking(move || store.instance(&owned_id))
        .await?
        .ok_or_else(|| Error::instance_not_found(id))
}

fn location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/instances/{id}")).expect("ids are ASCII")
}

// ---- workflows ----

async fn upload_workflow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !matches!(essence, "application/wasm" | "application/octet-stream") {
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
    let body = json!({
        "name": version.name,
        "version": version.version,
        "hash": version.hash,
        "size": version.size,
        "world": version.world,
        "created_at": timestamp(version.created_at),
    });
    Ok((status, Json(body)).into_response())
}

async fn list_workflows(State(state): State<AppState>) -> Result<Json<Value>> {
    let store = state.runtime.store();
    let versions = blocking(move || store.all_versions()).await?;
    let mut by_name: BTreeMap<String, Vec<WorkflowVersion>> = BTreeMap::new();
    for version in versions {
        by_name
            .entry(version.name.clone())
            .or_default()
            .push(version);
    }
    let workflows: Vec<WorkflowView> = by_name
        .values()
        .filter_map(|versions| workflow_view(versions))
        .collect();
    Ok(Json(json!({ "workflows": workflows })))
}

async fn get_workflow(
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

// ---- instances ----

async fn start_instance(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let params = parse_query(query, &["sync", "timeout", "version"])?;
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
                .filter(|key| (1..=256).contains(&key.len()));
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

async fn get_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>> {
    let record = load_instance(&state, &id).await?;
    Ok(Json(instance_view(&state, record).await?))
}

#[derive(Serialize)]
struct EventView {
    seq: u32,
    at: String,
    #[serde(flatten)]
    event: Event,
}

async fn get_history(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>> {
    load_instance(&state, &id).await?;
    let store = state.runtime.store();
    let owned_id = id.clone();
    let journal: Vec<JournalEntry> = blocking(move || store.journal(&owned_id)).await?;
    let events: Vec<EventView> = journal
        .into_iter()
        .map(|entry| EventView {
            seq: entry.seq,
            at: timestamp(entry.at),
            event: entry.event,
        })
        .collect();
    Ok(Json(json!({ "instance_id": id, "events": events })))
}

/// Answers a call that resumed an instance: `200` when a sync call saw the
/// next checkpoint, `202` otherwise.
fn resumed_status(progress: &Progress) -> StatusCode {
    if progress.settled {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}

async fn send_message(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = parse_query(query, &["sync", "timeout"])?;
    let sync = parse_sync(&params)?;
    let payload: Value = parse_json(&body, "message payload")?;
    let (to_wait, progress) = state
        .runtime
        .send_message(&id, &name, payload, sync)
        .await?;
    let status = resumed_status(&progress);
    let instance = instance_view(&state, progress.instance).await?;
    let delivered = if to_wait { "wait" } else { "mailbox" };
    let body = json!({ "delivered": delivered, "instance": instance });
    Ok((status, Json(body)).into_response())
}

async fn cancel_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceView>> {
    let record = state.runtime.cancel(&id).await?;
    Ok(Json(instance_view(&state, record).await?))
}

// ---- tasks ----

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

async fn list_tasks(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>> {
    let params = parse_query(query, &["assignee", "group", "status", "limit"])?;
    let status = match params.get("status") {
        Some(value) => parse_status(value)?,
        None => Some(TaskStatus::Open),
    };
    let limit = match params.get("limit") {
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=1000).contains(limit))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!("limit={value:?} is invalid; use a number from 1 to 1000"),
                )
            })?,
        None => 100,
    };
    let filter = TaskFilter {
        assignee: params.get("assignee").cloned(),
        group: params.get("group").cloned(),
        status,
        limit,
    };
    let store = state.runtime.store();
    let tasks = blocking(move || store.tasks(&filter)).await?;
    let tasks: Vec<TaskView> = tasks.into_iter().map(task_view).collect();
    Ok(Json(json!({ "tasks": tasks })))
}

async fn get_task(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TaskView>> {
    let store = state.runtime.store();
    let owned_id = id.clone();
    let task = blocking(move || store.task(&owned_id))
        .await?
        .ok_or_else(|| Error::task_not_found(&id))?;
    Ok(Json(task_view(task)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    by: String,
}

fn check_person(by: &str) -> Result<()> {
    if by.trim().is_empty() || by.len() > 256 {
        return Err(Error::bad_request(
            "invalid_body",
            "\"by\" must name the person, in 1 to 256 bytes",
        ));
    }
    Ok(())
}

async fn claim_task(
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

async fn release_task(
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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    action: String,
    #[serde(default)]
    data: Value,
    by: String,
}

async fn complete_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = parse_query(query, &["sync", "timeout"])?;
    let sync = parse_sync(&params)?;
    let CompleteBody { action, data, by } = parse_json(
        &body,
        r#"completion ({"action": "...", "data": {...}, "by": "..."})"#,
    )?;
    check_person(&by)?;
    let data = if data.is_null() { json!({}) } else { data };
    let outcome = crate::model::TaskOutcome { action, data, by };
    let (task, progress) = state.runtime.complete_task(&id, outcome, sync).await?;
    let status = resumed_status(&progress);
    let instance = instance_view(&state, progress.instance).await?;
    let body = json!({ "task": task_view(task), "instance": instance });
    Ok((status, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_rejects_unknown_parameters() {
        let error = parse_query(Some("sink=1".into()), &["sync"]).unwrap_err();
        assert_eq!(error.code, "invalid_query");
    }

    #[test]
    fn query_decodes_escapes() {
        let params = parse_query(
            Some("assignee=ana%20b&group=a+b".into()),
            &["assignee", "group"],
        )
        .unwrap();
        assert_eq!(params["assignee"], "ana b");
        assert_eq!(params["group"], "a b");
    }

    #[test]
    fn sync_defaults_to_async() {
        assert_eq!(parse_sync(&HashMap::new()).unwrap(), None);
        let params = HashMap::from([("sync".to_owned(), "true".to_owned())]);
        assert_eq!(parse_sync(&params).unwrap(), Some(DEFAULT_SYNC_TIMEOUT));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("t", "250").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("t", "5s").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("t", "soon").is_err());
    }
}
