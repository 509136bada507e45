//! Request parsing: query strings, sync parameters and JSON bodies, with the
//! OpenAPI descriptions of the parameters and bodies.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, Result};

/// Default and longest wait of a sync call.
pub(super) const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const MAX_SYNC_TIMEOUT: Duration = Duration::from_secs(300);

/// Query parameters of the calls that resume an instance.
pub(super) const RESUME_QUERY: &[&str] = &["sync", "timeout"];
/// Query parameters of `POST /workflows/{name}/instances`.
pub(super) const START_QUERY: &[&str] = &["sync", "timeout", "version"];
/// Query parameters of `GET /tasks`.
pub(super) const TASKS_QUERY: &[&str] = &["assignee", "group", "status", "limit"];

/// `sync` and `timeout`, as the OpenAPI document describes them. The handlers
/// read the raw query with [`parse_query`], which also rejects unknown
/// parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query for the OpenAPI document only"
)]
pub(super) struct SyncParams {
    /// `true` returns when the instance next stops on its own (parks at a
    /// wait state, completes, fails or is cancelled), or when `timeout`
    /// passes. `false` or absent returns once the change is stored. `1` and
    /// `0` are taken too, and so is an empty value, as `true`.
    sync: Option<bool>,
    /// Maximum wait of a sync call: a number of milliseconds or a duration
    /// such as `500ms`, `5s` or `2m`. Default 30s, at most 5m. The host also
    /// takes the other forms of the `humantime` crate, such as `1m 30s`.
    // The pattern takes the timeouts up to 5 minutes in milliseconds (with or
    // without `ms`), seconds and minutes; a unit test checks it against
    // `parse_sync`.
    #[param(
        pattern = r"^0*([0-9]{1,5}|[12][0-9]{5}|300000)(ms)?$|^0*([0-9]{1,2}|[12][0-9]{2}|300)s$|^0*[0-5]m$",
        example = "5s"
    )]
    timeout: Option<String>,
}

/// `version` of `POST /workflows/{name}/instances`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query for the OpenAPI document only"
)]
pub(super) struct VersionParams {
    /// Version to start; the newest when absent.
    #[param(minimum = 1)]
    version: Option<u32>,
}

/// The `Idempotency-Key` header of `POST /workflows/{name}/instances`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(
    dead_code,
    reason = "describes the header for the OpenAPI document only"
)]
pub(super) struct IdempotencyParams {
    /// 1 to 256 visible ASCII characters. A start with a key that was used
    /// before for this workflow returns the instance that start created
    /// instead of starting another.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 256,
        example = "order-17"
    )]
    idempotency_key: String,
}

/// The bytes of a workflow component, as an upload sends them.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(
    dead_code,
    reason = "describes the upload body for the OpenAPI document only"
)]
pub(super) struct ComponentBytes(Vec<u8>);

/// The filters of `GET /tasks`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes the query for the OpenAPI document only"
)]
pub(super) struct TaskQueryParams {
    /// Only tasks assigned to this person.
    assignee: Option<String>,
    /// Only tasks offered to this group.
    group: Option<String>,
    /// Task state to list; default `open`.
    #[param(inline)]
    status: Option<TaskStatusFilter>,
    /// Maximum number of tasks to return, from 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The `status` values of `GET /tasks`.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[expect(
    dead_code,
    reason = "describes the query for the OpenAPI document only"
)]
pub(super) enum TaskStatusFilter {
    Open,
    Completed,
    Expired,
    Cancelled,
    All,
}

/// The claim or release of a task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ClaimRequest)]
pub(super) struct ClaimBody {
    /// Person who claims or releases the task: 1 to 256 bytes, not only
    /// whitespace.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S", example = "carol")]
    pub by: String,
}

/// The completion of a task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CompleteRequest)]
pub(super) struct CompleteBody {
    /// One of the task's actions.
    #[schema(example = "approve")]
    pub action: String,
    /// Data for the workflow, such as the filled-in form; `{}` when absent
    /// or `null`.
    #[serde(default)]
    pub data: Value,
    /// Person who completes the task: 1 to 256 bytes, not only whitespace.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S", example = "bob")]
    pub by: String,
}

/// Checks the `by` field of a claim, release or completion.
pub(super) fn check_person(by: &str) -> Result<()> {
    if by.trim().is_empty() || by.len() > 256 {
        return Err(Error::bad_request(
            "invalid_body",
            "\"by\" must name the person, in 1 to 256 bytes",
        ));
    }
    Ok(())
}

/// Parses a query string into its parameters, rejecting unknown ones.
pub(super) fn parse_query(raw: Option<String>, known: &[&str]) -> Result<HashMap<String, String>> {
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
pub(super) fn parse_sync(params: &HashMap<String, String>) -> Result<Option<Duration>> {
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

pub(super) fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
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

    /// Checks that the documented pattern matches exactly the timeouts that
    /// `parse_sync` takes, for every whole number of milliseconds, seconds
    /// and minutes up to a little over the maximum.
    /// Returns the `pattern` of the documented `timeout` parameter.
    fn timeout_pattern() -> String {
        let parameters = SyncParams::into_params(|| None);
        let timeout = parameters
            .iter()
            .find(|parameter| parameter.name == "timeout")
            .expect("SyncParams documents timeout");
        let schema = serde_json::to_value(&timeout.schema).unwrap();
        schema["pattern"].as_str().unwrap().to_owned()
    }

    #[test]
    fn timeout_pattern_matches_the_parser() {
        let pattern = regex::Regex::new(&timeout_pattern()).unwrap();
        let mut values = Vec::new();
        for ms in 0..=310_000 {
            values.push(ms.to_string());
            values.push(format!("{ms}ms"));
        }
        for seconds in 0..=310 {
            values.push(format!("{seconds}s"));
        }
        for minutes in 0..=6 {
            values.push(format!("{minutes}m"));
        }
        values.extend(["007s", "0300000", "00300001", "", "1h", "-1"].map(String::from));
        for value in values {
            let params = HashMap::from([("timeout".to_owned(), value.clone())]);
            let accepted = parse_sync(&params).is_ok();
            assert_eq!(pattern.is_match(&value), accepted, "timeout={value:?}");
        }
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
