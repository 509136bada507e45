//! Property tests of the HTTP API against one live server: random and damaged
//! component uploads, and random JSON values and byte strings as the bodies
//! of the calls that take JSON. Whatever the request, the host must respond
//! below 500 with a JSON body, and every error must carry a code. Also the
//! direct cases of the body limits and of a method a route does not take.

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::{Server, guest};

/// Test cases per property. Each case is one or two HTTP calls to the
/// server, so this keeps the module to well under a minute.
const UPLOAD_CASES: u32 = 96;
const JSON_CASES: u32 = 256;

/// A response as read off the wire, without the support client's
/// assumption that the body is JSON.
struct RawResponse {
    status: u16,
    content_type: Option<String>,
    allow: Option<String>,
    body: Vec<u8>,
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()
        .expect("http client")
}

fn send(
    client: &Client,
    method: Method,
    url: reqwest::Url,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> RawResponse {
    let mut request = client.request(method, url).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().expect("request to layover");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let status = response.status().as_u16();
    let content_type = header("content-type");
    let allow = header("allow");
    let body = response.bytes().expect("response body").to_vec();
    RawResponse {
        status,
        content_type,
        allow,
        body,
    }
}

/// Builds a URL from the server's base and path segments, percent-encoding
/// each segment.
fn url(server: &Server, segments: &[&str]) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&server.base).expect("server base URL");
    url.path_segments_mut()
        .expect("base URL has a path")
        .pop_if_empty()
        .extend(segments);
    url
}

/// Checks the contract every response keeps: no 5xx, a JSON body, and for
/// an error, the shape `{"error": {"code", "message"}}`. Returns the body.
fn check_response(what: &str, response: &RawResponse) -> Result<Value, TestCaseError> {
    let text = String::from_utf8_lossy(&response.body);
    prop_assert!(
        response.status < 500,
        "{what}: status {} with body {text}",
        response.status
    );
    let content_type = response.content_type.as_deref().unwrap_or("");
    prop_assert!(
        content_type.starts_with("application/json"),
        "{what}: content type {content_type:?} with status {}",
        response.status
    );
    let body: Value = serde_json::from_slice(&response.body).map_err(|error| {
        TestCaseError::fail(format!("{what}: body is not JSON ({error}): {text}"))
    })?;
    if !(200..300).contains(&response.status) {
        let code = body["error"]["code"].as_str().unwrap_or("");
        prop_assert!(!code.is_empty(), "{what}: error without a code: {body}");
        prop_assert!(
            body["error"]["message"].is_string(),
            "{what}: error without a message: {body}"
        );
    }
    Ok(body)
}

/// Runs one property with a bounded number of cases and panics with the
/// smallest failing input that proptest found.
fn check_property<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(error) = runner.run(&strategy, test) {
        panic!("property {name:?} failed: {error}");
    }
}

/// Generates component bodies: random bytes, or a real component that is
/// truncated, has bytes flipped, or keeps only its header.
fn component_body() -> impl Strategy<Value = Vec<u8>> {
    let component = guest("scripted");
    let length = component.len();
    let truncated = {
        let component = component.clone();
        (0..length).prop_map(move |end| component[..end].to_vec())
    };
    let flipped = {
        let component = component.clone();
        vec((0..length, 1..=255u8), 1..8).prop_map(move |flips| {
            let mut bytes = component.clone();
            for (index, mask) in flips {
                bytes[index] ^= mask;
            }
            bytes
        })
    };
    let header_and_noise = vec(any::<u8>(), 0..512).prop_map(|noise| {
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        bytes.extend(noise);
        bytes
    });
    prop_oneof![
        vec(any::<u8>(), 0..2048),
        truncated,
        flipped,
        header_and_noise,
    ]
}

/// Generates the `Content-Type` of an upload: none, the accepted ones,
/// common wrong ones, or a random `type/subtype`.
fn upload_content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/wasm".to_owned())),
        Just(Some("application/octet-stream".to_owned())),
        Just(Some("application/wasm; charset=binary".to_owned())),
        Just(Some("application/json".to_owned())),
        Just(Some("text/plain".to_owned())),
        "[a-z]{1,12}/[a-z0-9.+-]{1,20}".prop_map(Some),
    ]
}

/// Generates workflow names: mostly valid, sometimes invalid.
fn workflow_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "fuzz-[a-z0-9]{1,4}",
        1 => "[A-Za-z0-9_-]{1,70}",
    ]
}

/// Generates any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |number| number.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Generates objects with the field names the task calls read, holding any
/// values, and sometimes an unknown field.
fn near_miss_body() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
    )
        .prop_map(|(by, action, data, extra)| {
            let mut object = serde_json::Map::new();
            for (name, value) in [("by", by), ("action", action), ("data", data), ("x", extra)] {
                if let Some(value) = value {
                    object.insert(name.to_owned(), value);
                }
            }
            Value::Object(object)
        })
}

/// Generates request bodies: serialized JSON, or bytes that may not be JSON
/// at all.
fn json_call_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|value| value.to_string().into_bytes()),
        2 => near_miss_body().prop_map(|value| value.to_string().into_bytes()),
        1 => ".{0,64}".prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..256),
    ]
}

fn workflow_list(server: &Server) -> Value {
    let response = server.get("/workflows");
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

#[test]
fn random_requests_never_fail_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--examples"]);
    let client = client();

    // Uploads: no 5xx, a JSON error with a code unless stored, and the
    // workflow list changes only when a version was stored.
    let expected = std::cell::RefCell::new(workflow_list(&server));
    let upload = (workflow_name(), upload_content_type(), component_body());
    check_property(
        "uploads",
        UPLOAD_CASES,
        upload,
        |(name, content_type, body)| {
            let target = url(&server, &["workflows", &name]);
            let response = send(&client, Method::PUT, target, content_type.as_deref(), body);
            let body = check_response(&format!("PUT /workflows/{name}"), &response)?;
            let listed = workflow_list(&server);
            if response.status == 201 {
                prop_assert_eq!(&body["name"], &json!(name));
                *expected.borrow_mut() = listed;
            } else {
                prop_assert_eq!(
                    &listed,
                    &*expected.borrow(),
                    "PUT /workflows/{} answered {} but changed the workflow list",
                    name,
                    response.status
                );
            }
            Ok(())
        },
    );

    // A waiting instance and its open task, as targets for the JSON calls.
    let input = json!({
        "employee": "erin", "manager": "bob", "deputy": "dana",
        "amount": 1250.0, "currency": "EUR", "description": "conference travel"
    });
    let started = server.start_instance("expense-approval", "?sync=true", &input);
    assert_eq!(started.status, 201, "{}", started.body);
    let instance_id = started.body["id"].as_str().unwrap().to_owned();
    let task_id = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let targets: Vec<Vec<String>> = [
        vec!["workflows", "expense-approval", "instances"],
        vec!["tasks", &task_id, "complete"],
        vec!["tasks", &task_id, "claim"],
        vec!["tasks", &task_id, "release"],
        vec!["instances", &instance_id, "messages", "payment-received"],
        vec!["instances", "no-such-instance", "messages", "m"],
    ]
    .into_iter()
    .map(|segments| segments.into_iter().map(str::to_owned).collect())
    .collect();

    // JSON calls: no 5xx and a JSON body, whatever the body and its type.
    let content_type = prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => "[a-z]{1,12}/[a-z0-9.+-]{1,20}".prop_map(Some),
    ];
    let call = (0..targets.len(), content_type, json_call_body());
    check_property(
        "JSON bodies",
        JSON_CASES,
        call,
        |(target, content_type, body)| {
            let segments: Vec<&str> = targets[target].iter().map(String::as_str).collect();
            let what = format!("POST /{}", segments.join("/"));
            let target = url(&server, &segments);
            let response = send(&client, Method::POST, target, content_type.as_deref(), body);
            check_response(&what, &response)?;
            Ok(())
        },
    );

    let health = server.get("/health");
    assert_eq!(health.status, 200, "{}", health.body);
}

#[test]
fn oversized_upload_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--upload-limit-mib", "1"]);
    let body = vec![0u8; (1 << 20) + 1];
    let target = url(&server, &["workflows", "too-big"]);
    let response = send(
        &client(),
        Method::PUT,
        target,
        Some("application/wasm"),
        body,
    );
    assert_eq!(response.status, 413);
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let listed = server.get("/workflows");
    assert_eq!(listed.body["workflows"], json!([]));
}

#[test]
fn upload_at_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--upload-limit-mib", "1"]);
    let body = vec![0u8; 1 << 20];
    let target = url(&server, &["workflows", "at-limit"]);
    let response = send(
        &client(),
        Method::PUT,
        target,
        Some("application/wasm"),
        body,
    );
    assert_eq!(response.status, 422);
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"]["code"], "not_a_component", "{body}");
}

#[test]
fn oversized_json_body_is_413() {
    // With a 64 KiB document limit, JSON bodies keep their own limit of
    // 2 MiB, and an input between the two is over the document limit only.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--examples", "--document-limit-kib", "64"]);
    let cases = [
        ((2 << 20) + 1, "payload_too_large"),
        (100 << 10, "input_too_large"),
    ];
    for (size, code) in cases {
        let body = format!("\"{}\"", "a".repeat(size)).into_bytes();
        let target = url(&server, &["workflows", "expense-approval", "instances"]);
        let response = send(
            &client(),
            Method::POST,
            target,
            Some("application/json"),
            body,
        );
        assert_eq!(response.status, 413, "input of {size} bytes");
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
}

#[test]
fn delete_workflows_is_405() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[]);
    let target = url(&server, &["workflows"]);
    let response = send(&client(), Method::DELETE, target, None, Vec::new());
    assert_eq!(response.status, 405);
    let allow = response.allow.unwrap_or_default();
    assert!(allow.contains("GET"), "Allow: {allow:?}");
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
}
