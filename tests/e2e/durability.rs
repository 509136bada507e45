//! Eviction and replay, determinism, versioning, idempotent starts and
//! exactly-once completion.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};
use serde_json::{Value, json};

use crate::support::{PATIENCE, Server, guest};

fn task(assignee: &str) -> Value {
    json!({"task": {"title": "check", "actions": ["done"], "assignee": assignee}})
}

fn only_open_task(server: &Server, assignee: &str) -> String {
    let open = server.get(&format!("/tasks?assignee={assignee}"));
    let tasks = open.body["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{assignee}: {}", open.body);
    tasks[0]["id"].as_str().unwrap().to_owned()
}

/// Waits until no instance is in memory. With `--evict-after 0s` a runner
/// drops its instance as soon as it parks.
fn wait_for_eviction(server: &Server) {
    let deadline = Instant::now() + PATIENCE;
    while server.get("/health").body["runners"] != 0 {
        assert!(Instant::now() < deadline, "instances were never evicted");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn evicted_instance_resumes_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--evict-after", "0s"]);
    server.deploy("scripted", "scripted");
    let steps = json!([
        {"field": {"name": "stage", "value": "first"}},
        task("eve"),
        {"log": "between"},
        {"field": {"name": "stage", "value": "second"}},
        task("eve"),
    ]);
    let started = server.start_instance("scripted", "?sync=true", &json!({"steps": steps}));
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_owned();

    wait_for_eviction(&server);

    let first = only_open_task(&server, "eve");
    let response = server.complete(
        &first,
        "?sync=true",
        &json!({"action": "done", "by": "eve"}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["instance"]["fields"]["stage"], "second");
    let second = only_open_task(&server, "eve");
    let response = server.complete(
        &second,
        "?sync=true",
        &json!({"action": "done", "by": "eve"}),
    );
    assert_eq!(response.body["instance"]["status"], "completed");

    let history = server.get(&format!("/instances/{id}/history"));
    let events = history.body["events"].as_array().unwrap();
    let count = |kind: &str| events.iter().filter(|event| event["type"] == kind).count();
    assert_eq!(count("wait-started"), 2);
    assert_eq!(count("field-set"), 2, "replays must not set fields again");
    assert_eq!(count("log"), 1, "replays must not log again");
}

#[test]
fn replay_reads_same_time_and_randomness() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--evict-after", "0s"]);
    server.deploy("clock-random", "clock_random");

    let mut befores = Vec::new();
    for assignee in ["rita", "ravi"] {
        let input = json!({"assignee": assignee});
        let started = server.start_instance("clock-random", "?sync=true", &input);
        assert_eq!(started.status, 201, "{}", started.body);
        let id = started.body["id"].as_str().unwrap().to_owned();
        let recorded = started.body["fields"]["before"].clone();
        assert!(recorded["getrandom"].is_u64(), "{recorded}");

        wait_for_eviction(&server);
        let task = only_open_task(&server, assignee);
        let done = json!({"action": "continue", "by": assignee});
        let response = server.complete(&task, "?sync=true", &done);
        let instance = &response.body["instance"];
        assert_eq!(instance["status"], "completed", "{instance:#}");

        // The replay ran the code before the task again and read the same
        // clock and random values as the first run did.
        let output = &instance["output"];
        assert_eq!(output["before"], recorded, "instance {id}");
        assert_eq!(
            output["before"]["system_time_ms"], output["before"]["journal_time_ms"],
            "the WASI clock is the journaled clock"
        );
        let before = output["before"]["journal_time_ms"].as_u64().unwrap();
        let after = output["after"]["journal_time_ms"].as_u64().unwrap();
        assert!(after >= before);
        assert_ne!(output["before"]["getrandom"], output["after"]["getrandom"]);
        befores.push(recorded);
    }
    assert_ne!(
        befores[0]["getrandom"], befores[1]["getrandom"],
        "each instance has its own random seed"
    );
}

const VERSIONS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("versions");
const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");

/// Points a stored workflow version at other component bytes, as if the
/// workflow's code had changed under its running instances.
fn replace_component(db_path: &std::path::Path, name: &str, version: u32, bytes: &[u8]) {
    let db = Database::create(db_path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut versions = txn.open_table(VERSIONS).unwrap();
        let stored = versions
            .get((name, version))
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let mut record: layover::model::WorkflowVersion = serde_json::from_slice(&stored).unwrap();
        record.hash = layover::engine::content_hash(bytes);
        let encoded = serde_json::to_vec(&record).unwrap();
        versions
            .insert((name, version), encoded.as_slice())
            .unwrap();
        let mut components = txn.open_table(COMPONENTS).unwrap();
        components.insert(record.hash.as_str(), bytes).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn changed_code_fails_with_nondeterminism() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    server.deploy("steps", "order_a");
    let started = server.start_instance("steps", "?sync=true", &json!({"assignee": "nora"}));
    assert_eq!(started.status, 201, "{}", started.body);
    let bystander = server.start_instance("steps", "?sync=true", &json!({"assignee": "nick"}));
    let bystander_id = bystander.body["id"].as_str().unwrap().to_owned();

    server.kill9();
    replace_component(
        &dir.path().join("layover.redb"),
        "steps",
        1,
        &guest("order_b"),
    );
    server.restart();

    let task = only_open_task(&server, "nora");
    let response = server.complete(
        &task,
        "?sync=true",
        &json!({"action": "done", "by": "nora"}),
    );
    let instance = &response.body["instance"];
    assert_eq!(instance["status"], "failed", "{instance:#}");
    let error = instance["error"].as_str().unwrap();
    assert!(error.contains("non-determinism at step 0"), "{error}");
    assert!(error.contains("human-task"), "{error}");
    assert!(error.contains("sleep"), "{error}");

    // The other instance is untouched: still waiting on its own task.
    let other = server.instance(&bystander_id);
    assert_eq!(other["status"], "waiting");
    assert_eq!(other["wait"]["task"]["assignee"], "nick");
}

#[test]
fn new_version_leaves_running_instances() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.deploy("flow", "order_a");
    let old = server.start_instance("flow", "?sync=true", &json!({"assignee": "olga"}));
    let old_id = old.body["id"].as_str().unwrap().to_owned();
    assert_eq!(old.body["version"], 1);

    let upload = server.put_component("flow", guest("order_b"));
    assert_eq!(upload.status, 201);
    assert_eq!(upload.body["version"], 2);

    let new = server.start_instance("flow", "", &json!({"assignee": "nina"}));
    assert_eq!(new.body["version"], 2);
    let pinned =
        server.start_instance("flow", "?version=1&sync=true", &json!({"assignee": "pete"}));
    assert_eq!(pinned.body["version"], 1);
    assert_eq!(pinned.body["wait"]["kind"], "human-task");

    for (id, assignee) in [
        (&old_id, "olga"),
        (&pinned.body["id"].as_str().unwrap().to_owned(), "pete"),
    ] {
        let task = only_open_task(&server, assignee);
        server.complete(&task, "", &json!({"action": "done", "by": assignee}));
        let instance = server.wait_for_end(id);
        assert_eq!(instance["status"], "completed", "{instance:#}");
        assert_eq!(instance["output"]["version"], "a");
    }
    let new_id = new.body["id"].as_str().unwrap().to_owned();
    server.wait_for_task(&new_id);
    let task = only_open_task(&server, "nina");
    server.complete(&task, "", &json!({"action": "done", "by": "nina"}));
    assert_eq!(server.wait_for_end(&new_id)["output"]["version"], "b");
}

#[test]
fn idempotency_holds_across_races_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    server.deploy("scripted", "scripted");
    let path = "/workflows/scripted/instances";
    let input = json!({"steps": [task("ida")]});

    let barrier = Barrier::new(8);
    let responses: Vec<(u16, Value)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let response = server.post_with_key(path, "race-1", &input);
                    (response.status, response.body["id"].clone())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let created = responses
        .iter()
        .filter(|(status, _)| *status == 202)
        .count();
    let repeated = responses
        .iter()
        .filter(|(status, _)| *status == 200)
        .count();
    assert_eq!(created, 1, "{responses:?}");
    assert_eq!(repeated, 7, "{responses:?}");
    let id = responses[0].1.clone();
    assert!(
        responses.iter().all(|(_, other)| *other == id),
        "{responses:?}"
    );

    server.restart();
    let again = server.post_with_key(path, "race-1", &input);
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], id);
    let conflict = server.post_with_key(path, "race-1", &json!({"steps": []}));
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.code(), "idempotency_key_reused");
    let tasks = server.get("/tasks?assignee=ida&status=all");
    assert_eq!(tasks.body["tasks"].as_array().unwrap().len(), 1);
}

#[test]
fn concurrent_completions_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.deploy("scripted", "scripted");
    let input = json!({"steps": [task("cora"), task("cora")]});
    let started = server.start_instance("scripted", "?sync=true", &input);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let task_id = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let barrier = Barrier::new(6);
    let statuses: Vec<(u16, String)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|n| {
                let (barrier, server, task_id) = (&barrier, &server, &task_id);
                scope.spawn(move || {
                    barrier.wait();
                    let body = json!({"action": "done", "by": "cora", "data": {"n": n}});
                    let response = server.complete(task_id, "", &body);
                    (response.status, response.code().to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let succeeded = statuses.iter().filter(|(status, _)| *status == 202).count();
    let conflicts = statuses
        .iter()
        .filter(|(status, code)| *status == 409 && code == "task_not_open")
        .count();
    assert_eq!(succeeded, 1, "{statuses:?}");
    assert_eq!(conflicts, 5, "{statuses:?}");

    let second = server.wait_for_task(&id);
    assert_eq!(second["step"], 1);
    server.complete(
        second["id"].as_str().unwrap(),
        "",
        &json!({"action": "done", "by": "cora"}),
    );
    let instance = server.wait_for_end(&id);
    let history = server.get(&format!("/instances/{id}/history"));
    let resolved = history.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "wait-resolved")
        .count();
    assert_eq!(resolved, 2);
    assert_eq!(instance["status"], "completed");
}

#[test]
fn standard_error_goes_to_the_instance_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.deploy("trap", "trap");
    let started = server.start_instance("trap", "?sync=true", &json!({"mode": "panic"}));
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.body["status"], "failed");
    let id = started.body["id"].as_str().unwrap();
    let history = server.get(&format!("/instances/{id}/history"));
    let stderr: Vec<&str> = history.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "log" && event["level"] == "stderr")
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    assert!(
        stderr.iter().any(|line| line.contains("fixture panic")),
        "{stderr:?}"
    );
}
