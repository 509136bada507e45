//! Errors and edge cases of the API, each with its status and code.

use serde_json::json;

use crate::support::{Server, guest};

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--examples"]);
    (dir, server)
}

#[test]
fn unknown_ids_are_404() {
    let (_dir, server) = server();
    let cases = [
        ("/instances/nope", "instance_not_found"),
        ("/instances/nope/history", "instance_not_found"),
        ("/tasks/nope", "task_not_found"),
        ("/workflows/nope", "workflow_not_found"),
        ("/no/such/route", "route_not_found"),
    ];
    for (path, code) in cases {
        let response = server.get(path);
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.code(), code, "{path}");
    }
    let start = server.start_instance("nope", "", &json!({}));
    assert_eq!(start.status, 404);
    assert_eq!(start.code(), "workflow_not_found");
    let complete = server.complete("nope", "", &json!({"action": "a", "by": "b"}));
    assert_eq!(complete.status, 404);
    let message = server.post("/instances/nope/messages/m", &json!({}));
    assert_eq!(message.status, 404);
}

#[test]
fn malformed_bodies_are_400() {
    let (_dir, server) = server();
    let response = server.post_raw(
        "/workflows/expense-approval/instances",
        "application/json",
        b"{not json".to_vec(),
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.code(), "invalid_json");
    let response = server.post_raw(
        "/workflows/expense-approval/instances",
        "application/json",
        Vec::new(),
    );
    assert_eq!(response.status, 400);
    let response = server.start_instance("expense-approval", "?sync=maybe", &json!({}));
    assert_eq!(response.status, 400);
    assert_eq!(response.code(), "invalid_query");
    let response = server.start_instance("expense-approval", "?version=9", &json!({}));
    assert_eq!(response.status, 404);
    assert_eq!(response.code(), "workflow_version_not_found");
}

#[test]
fn bad_input_fails_the_instance_alone() {
    let (_dir, server) = server();
    let response =
        server.start_instance("expense-approval", "?sync=true", &json!({"amount": "lots"}));
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.body["status"], "failed");
    assert!(
        response.body["error"].as_str().unwrap().contains("input"),
        "{}",
        response.body
    );
}

#[test]
fn uploads_are_validated() {
    let (_dir, server) = server();
    let response = server.put_component("junk", b"hello".to_vec());
    assert_eq!(response.status, 422);
    assert_eq!(response.code(), "not_a_component");
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let response = server.put_component("core", core_module);
    assert_eq!(response.status, 422);
    assert!(
        response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("core")
    );
    let response = server.put_component("Bad_Name", guest("scripted"));
    assert_eq!(response.status, 400);
    assert_eq!(response.code(), "invalid_workflow_name");
    let listed = server.get("/workflows");
    let names: Vec<&str> = listed.body["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|workflow| workflow["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["expense-approval", "order-fulfilment"]);
}

#[test]
fn reupload_keeps_the_version() {
    let (_dir, server) = server();
    let first = server.put_component("scripted", guest("scripted"));
    assert_eq!(first.status, 201);
    assert_eq!(first.body["version"], 1);
    let again = server.put_component("scripted", guest("scripted"));
    assert_eq!(again.status, 200);
    assert_eq!(again.body["version"], 1);
    let other = server.put_component("scripted", guest("clock_random"));
    assert_eq!(other.status, 201);
    assert_eq!(other.body["version"], 2);
    let workflow = server.get("/workflows/scripted");
    assert_eq!(workflow.body["latest_version"], 2);
}

#[test]
fn idempotency_key_repeats_the_start() {
    let (_dir, server) = server();
    let path = "/workflows/scripted/instances";
    server.deploy("scripted", "scripted");
    let input = json!({"steps": []});
    let first = server.post_with_key(path, "order-17", &input);
    assert_eq!(first.status, 202);
    let again = server.post_with_key(path, "order-17", &input);
    assert_eq!(again.status, 200);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body["id"], first.body["id"]);
    let other = server.post_with_key(path, "order-17", &json!({"steps": [{"log": "x"}]}));
    assert_eq!(other.status, 409);
    assert_eq!(other.code(), "idempotency_key_reused");
}

#[test]
fn cancel_closes_the_task() {
    let (_dir, server) = server();
    let input = json!({"employee": "erin", "manager": "bob", "deputy": "dana", "amount": 10.0, "currency": "EUR", "description": "pens"});
    let started = server.start_instance("expense-approval", "?sync=true", &input);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let task_id = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = server.post(&format!("/instances/{id}/cancel"), &json!({}));
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.body["status"], "cancelled");
    let task = server.get(&format!("/tasks/{task_id}"));
    assert_eq!(task.body["status"], "cancelled");
    let complete = server.complete(&task_id, "", &json!({"action": "approve", "by": "bob"}));
    assert_eq!(complete.status, 409);
    let again = server.post(&format!("/instances/{id}/cancel"), &json!({}));
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "instance_finished");
}

#[test]
fn sync_timeout_answers_like_async() {
    let (_dir, server) = server();
    server.deploy("scripted", "scripted");
    let input = json!({"steps": [{"spin": 300_000_000u64}, {"log": "done"}]});
    let response = server.start_instance("scripted", "?sync=true&timeout=1ms", &input);
    assert_eq!(response.status, 202, "{}", response.body);
    assert!(response.headers.contains_key("location"));
    let id = response.body["id"].as_str().unwrap();
    let instance = server.wait_for_end(id);
    assert_eq!(instance["status"], "completed");
}
