//! `kill -9` of the server with instances in every state, then a restart on
//! the same database.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Server;

fn start(server: &Server, steps: Value) -> String {
    let response = server.start_instance("scripted", "", &json!({ "steps": steps }));
    assert_eq!(response.status, 202, "{}", response.body);
    response.body["id"].as_str().unwrap().to_owned()
}

fn task(assignee: &str) -> Value {
    json!({"task": {"title": "check", "actions": ["done"], "assignee": assignee}})
}

/// Returns every task of one assignee, in any state.
fn tasks_of(server: &Server, assignee: &str) -> Vec<Value> {
    let response = server.get(&format!("/tasks?assignee={assignee}&status=all"));
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["tasks"].as_array().unwrap().clone()
}

/// Checks that the journal records each step's wait once and resolves it at
/// most once.
fn assert_journal_consistent(server: &Server, id: &str) {
    let history = server.get(&format!("/instances/{id}/history"));
    let mut started = BTreeMap::new();
    let mut resolved = BTreeMap::new();
    for event in history.body["events"].as_array().unwrap() {
        let step = event["step"].as_u64().unwrap_or(u64::MAX);
        match event["type"].as_str().unwrap() {
            "wait-started" => *started.entry(step).or_insert(0) += 1,
            "wait-resolved" => *resolved.entry(step).or_insert(0) += 1,
            _ => {}
        }
    }
    assert!(
        started.values().all(|count| *count == 1),
        "{id}: {started:?}"
    );
    assert!(
        resolved.values().all(|count| *count == 1),
        "{id}: {resolved:?}"
    );
}

fn finish_task(server: &Server, assignee: &str) {
    let open = server.get(&format!("/tasks?assignee={assignee}"));
    let tasks = open.body["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{assignee}: {}", open.body);
    let id = tasks[0]["id"].as_str().unwrap();
    let response = server.complete(id, "", &json!({"action": "done", "by": assignee}));
    assert_eq!(response.status, 202, "{}", response.body);
}

#[test]
fn kill9_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(dir.path(), &["--cpu-limit", "120s"]);
    server.deploy("scripted", "scripted");

    let waiting_task = start(&server, json!([task("w-task")]));
    let sleeping = start(&server, json!([{"sleep_ms": 1500}, task("w-sleep")]));
    let waiting_message = start(&server, json!([{"message": {"name": "go"}}]));
    let completed = start(
        &server,
        json!([{"field": {"name": "color", "value": "blue"}}]),
    );
    let failed = start(&server, json!([{"fail": "broken on purpose"}]));
    let cancelled = start(&server, json!([task("w-cancel")]));
    let resumed = start(&server, json!([task("w-resumed"), task("w-resumed")]));
    let mailbox = start(
        &server,
        json!([task("w-mailbox"), {"message": {"name": "early"}}]),
    );

    for id in [
        &waiting_task,
        &sleeping,
        &waiting_message,
        &cancelled,
        &resumed,
        &mailbox,
    ] {
        server.wait_for(id, "waiting", |instance| instance["status"] == "waiting");
    }
    server.wait_for_end(&completed);
    server.wait_for_end(&failed);
    let response = server.post(&format!("/instances/{cancelled}/cancel"), &json!({}));
    assert_eq!(response.status, 200, "{}", response.body);
    finish_task(&server, "w-resumed");
    let early = server.post(
        &format!("/instances/{mailbox}/messages/early"),
        &json!({"n": 7}),
    );
    assert_eq!(early.body["delivered"], "mailbox");

    // Started last so that it is still running its busy loop at the kill.
    let running = start(
        &server,
        json!([{"spin": 500_000_000u64}, task("w-running")]),
    );
    server.wait_for(&running, "running", |instance| {
        instance["status"] == "running"
    });

    server.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    server.restart();

    // Ended instances are as they were.
    let instance = server.instance(&completed);
    assert_eq!(instance["status"], "completed");
    assert_eq!(instance["fields"]["color"], "blue");
    assert_eq!(server.instance(&failed)["error"], "broken on purpose");
    assert_eq!(server.instance(&cancelled)["status"], "cancelled");
    assert_eq!(tasks_of(&server, "w-cancel")[0]["status"], "cancelled");

    // The timer that fell due while the server was down fires.
    server.wait_for_task(&sleeping);
    finish_task(&server, "w-sleep");
    finish_task(&server, "w-task");
    let sent = server.post(
        &format!("/instances/{waiting_message}/messages/go"),
        &json!({"x": 1}),
    );
    assert_eq!(sent.body["delivered"], "wait", "{}", sent.body);
    server.wait_for_task(&resumed);
    finish_task(&server, "w-resumed");
    server.wait_for_task(&mailbox);
    finish_task(&server, "w-mailbox");
    server.wait_for_task(&running);
    finish_task(&server, "w-running");

    for id in [
        &waiting_task,
        &sleeping,
        &waiting_message,
        &resumed,
        &mailbox,
        &running,
    ] {
        let instance = server.wait_for_end(id);
        assert_eq!(instance["status"], "completed", "{instance:#}");
        assert_journal_consistent(&server, id);
    }
    assert_eq!(
        server.instance(&waiting_message)["output"]["results"][0],
        json!({"x": 1})
    );
    assert_eq!(
        server.instance(&mailbox)["output"]["results"][1],
        json!({"n": 7})
    );
    let resumed_output = &server.instance(&resumed)["output"]["results"];
    assert_eq!(resumed_output[0]["by"], "w-resumed");
    assert_eq!(resumed_output[1]["by"], "w-resumed");

    for (assignee, count) in [
        ("w-task", 1),
        ("w-sleep", 1),
        ("w-resumed", 2),
        ("w-mailbox", 1),
        ("w-running", 1),
    ] {
        let tasks = tasks_of(&server, assignee);
        assert_eq!(tasks.len(), count, "{assignee}: {tasks:#?}");
        assert!(
            tasks.iter().all(|task| task["status"] == "completed"),
            "{tasks:#?}"
        );
    }
}
