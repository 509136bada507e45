//! The expense-approval example through all its branches.

use serde_json::{Value, json};

use crate::support::Server;

fn expense(amount: f64) -> Value {
    json!({
        "employee": "erin",
        "manager": "bob",
        "deputy": "dana",
        "amount": amount,
        "currency": "EUR",
        "description": "conference travel",
    })
}

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--examples"]);
    (dir, server)
}

#[test]
fn async_start_then_poll() {
    let (_dir, server) = server();
    let response = server.start_instance("expense-approval", "", &expense(120.0));
    assert_eq!(response.status, 202, "{}", response.body);
    let id = response.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        response.headers["location"].to_str().unwrap(),
        format!("/instances/{id}")
    );

    let task = server.wait_for_task(&id);
    assert_eq!(task["assignee"], "bob");
    assert_eq!(task["status"], "open");
    assert_eq!(task["actions"], json!(["approve", "reject", "ask-info"]));
    let instance = server.instance(&id);
    assert_eq!(instance["status"], "waiting");
    assert!(instance["wait"]["since"].is_string());
    assert_eq!(instance["workflow"], "expense-approval");
    assert_eq!(instance["version"], 1);
}

#[test]
fn sync_start_returns_first_task() {
    let (_dir, server) = server();
    let response = server.start_instance("expense-approval", "?sync=true", &expense(120.0));
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.body["status"], "waiting");
    let task = &response.body["wait"]["task"];
    assert_eq!(response.body["wait"]["kind"], "human-task");
    assert_eq!(task["assignee"], "bob");
    assert_eq!(task["form"]["amount"], 120.0);

    let worklist = server.get("/tasks?assignee=bob");
    assert_eq!(worklist.status, 200);
    let ids: Vec<&Value> = worklist.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| &task["id"])
        .collect();
    assert_eq!(ids, vec![&task["id"]]);
}

#[test]
fn manager_rejects() {
    let (_dir, server) = server();
    let started = server.start_instance("expense-approval", "?sync=true", &expense(80.0));
    let task_id = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = json!({"action": "reject", "by": "bob", "data": {"comment": "not in budget"}});
    let response = server.complete(&task_id, "?sync=true", &body);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["task"]["status"], "completed");
    let instance = &response.body["instance"];
    assert_eq!(instance["status"], "completed");
    assert_eq!(instance["output"]["status"], "rejected");
    assert_eq!(instance["output"]["decisions"][0]["by"], "bob");
    assert_eq!(instance["output"]["decisions"][0]["action"], "reject");

    let again = server.complete(&task_id, "", &body);
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "task_not_open");
}

#[test]
fn finance_approves_large_amounts() {
    let (_dir, server) = server();
    let started = server.start_instance("expense-approval", "?sync=true", &expense(5000.0));
    let manager_task = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let approve = json!({"action": "approve", "by": "bob"});
    let response = server.complete(&manager_task, "?sync=true", &approve);
    assert_eq!(response.status, 200, "{}", response.body);
    let finance_task = &response.body["instance"]["wait"]["task"];
    assert_eq!(finance_task["group"], "finance");
    assert!(finance_task["assignee"].is_null());
    let finance_id = finance_task["id"].as_str().unwrap().to_owned();

    let listed = server.get("/tasks?group=finance");
    assert_eq!(listed.body["tasks"][0]["id"], finance_id.as_str());

    let claim = server.post(
        &format!("/tasks/{finance_id}/claim"),
        &json!({"by": "carol"}),
    );
    assert_eq!(claim.status, 200, "{}", claim.body);
    assert_eq!(claim.body["claimed_by"], "carol");
    let second = server.post(
        &format!("/tasks/{finance_id}/claim"),
        &json!({"by": "dave"}),
    );
    assert_eq!(second.status, 409);
    assert_eq!(second.code(), "task_claimed");
    let by_other = server.complete(&finance_id, "", &json!({"action": "approve", "by": "dave"}));
    assert_eq!(by_other.status, 409);

    let release = server.post(
        &format!("/tasks/{finance_id}/release"),
        &json!({"by": "carol"}),
    );
    assert_eq!(release.status, 200, "{}", release.body);
    assert!(release.body["claimed_by"].is_null());
    let claim = server.post(
        &format!("/tasks/{finance_id}/claim"),
        &json!({"by": "dave"}),
    );
    assert_eq!(claim.status, 200);

    let not_allowed = server.complete(
        &finance_id,
        "",
        &json!({"action": "ask-info", "by": "dave"}),
    );
    assert_eq!(not_allowed.status, 422);
    assert_eq!(not_allowed.code(), "action_not_allowed");

    let response = server.complete(
        &finance_id,
        "?sync=true",
        &json!({"action": "approve", "by": "dave"}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let output = &response.body["instance"]["output"];
    assert_eq!(output["status"], "approved");
    let decisions = output["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["by"], "bob");
    assert_eq!(decisions[1]["stage"], "finance");
    assert_eq!(decisions[1]["by"], "dave");
}

#[test]
fn small_amounts_skip_finance() {
    let (_dir, server) = server();
    let started = server.start_instance("expense-approval", "?sync=true", &expense(40.0));
    let task_id = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = server.complete(
        &task_id,
        "?sync=true",
        &json!({"action": "approve", "by": "bob"}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["instance"]["status"], "completed");
    assert_eq!(response.body["instance"]["output"]["status"], "approved");
    assert_eq!(response.body["instance"]["output"]["escalated"], false);
}

#[test]
fn ask_info_goes_to_employee() {
    let (_dir, server) = server();
    let started = server.start_instance("expense-approval", "?sync=true", &expense(40.0));
    let task_id = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = json!({"action": "ask-info", "by": "bob", "data": {"question": "which conference?"}});
    let response = server.complete(&task_id, "?sync=true", &ask);
    assert_eq!(response.status, 200, "{}", response.body);
    let employee_task = &response.body["instance"]["wait"]["task"];
    assert_eq!(employee_task["assignee"], "erin");

    let answer = json!({"action": "answer", "by": "erin", "data": {"answer": "RustConf"}});
    let response = server.complete(employee_task["id"].as_str().unwrap(), "?sync=true", &answer);
    assert_eq!(response.status, 200, "{}", response.body);
    let manager_again = &response.body["instance"]["wait"]["task"];
    assert_eq!(manager_again["assignee"], "bob");

    let approve = json!({"action": "approve", "by": "bob"});
    let response = server.complete(
        manager_again["id"].as_str().unwrap(),
        "?sync=true",
        &approve,
    );
    assert_eq!(response.body["instance"]["output"]["status"], "approved");
}

#[test]
fn escalates_to_deputy_on_timeout() {
    let (_dir, server) = server();
    let mut input = expense(90.0);
    input["escalate_after_secs"] = json!(1);
    let started = server.start_instance("expense-approval", "?sync=true", &input);
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let manager_task = started.body["wait"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(started.body["wait"]["until"].is_string());

    let instance = server.wait_for(&id, "the deputy's task", |instance| {
        instance["wait"]["task"]["assignee"] == "dana"
    });
    let deputy_task = instance["wait"]["task"]["id"].as_str().unwrap().to_owned();

    let expired = server.get(&format!("/tasks/{manager_task}"));
    assert_eq!(expired.body["status"], "expired");
    let late = server.complete(
        &manager_task,
        "",
        &json!({"action": "approve", "by": "bob"}),
    );
    assert_eq!(late.status, 409);

    let response = server.complete(
        &deputy_task,
        "?sync=true",
        &json!({"action": "approve", "by": "dana"}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let output = &response.body["instance"]["output"];
    assert_eq!(output["status"], "approved");
    assert_eq!(output["escalated"], true);
    assert_eq!(output["decisions"][0]["by"], "dana");
}
