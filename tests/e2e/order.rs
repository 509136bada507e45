//! The order-fulfilment example: messages before and after the wait, timers
//! and the payment timeout.

use serde_json::{Value, json};

use crate::support::Server;

fn order(payment_timeout_secs: u64) -> Value {
    json!({
        "order_id": "A-1001",
        "customer": "ines",
        "items": [{"sku": "kettle", "quantity": 1}],
        "total": 42.5,
        "payment_timeout_secs": payment_timeout_secs,
        "shipping_delay_secs": 1,
        "delivery_timeout_secs": 600,
    })
}

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--examples"]);
    (dir, server)
}

fn payment() -> Value {
    json!({"amount": 42.5, "reference": "PAY-77"})
}

#[test]
fn message_after_the_wait() {
    let (_dir, server) = server();
    let started = server.start_instance("order-fulfilment", "?sync=true", &order(600));
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_owned();
    assert_eq!(started.body["wait"]["kind"], "message");
    assert_eq!(started.body["wait"]["message"], "payment-received");

    let sent = server.post(
        &format!("/instances/{id}/messages/payment-received?sync=true"),
        &payment(),
    );
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["delivered"], "wait");
    assert_eq!(sent.body["instance"]["wait"]["kind"], "sleep");

    let task = server.wait_for_task(&id);
    assert_eq!(task["group"], "warehouse");
    let shipped = json!({"action": "shipped", "by": "wes", "data": {"tracking": "TRK-1"}});
    let response = server.complete(task["id"].as_str().unwrap(), "?sync=true", &shipped);
    assert_eq!(response.body["instance"]["wait"]["message"], "delivered");

    let delivered = server.post(
        &format!("/instances/{id}/messages/delivered?sync=true"),
        &json!({}),
    );
    assert_eq!(delivered.status, 200, "{}", delivered.body);
    let output = &delivered.body["instance"]["output"];
    assert_eq!(delivered.body["instance"]["status"], "completed");
    assert_eq!(output["status"], "delivered");
    assert_eq!(output["delivered"], true);
    assert_eq!(output["payment"]["reference"], "PAY-77");
    assert_eq!(output["tracking"], "TRK-1");
}

#[test]
fn message_before_the_wait() {
    let (_dir, server) = server();
    let started = server.start_instance("order-fulfilment", "?sync=true", &order(600));
    let id = started.body["id"].as_str().unwrap().to_owned();
    server.post(
        &format!("/instances/{id}/messages/payment-received"),
        &payment(),
    );
    let task = server.wait_for_task(&id);

    // The instance waits on the warehouse task, not on this message, so the
    // message goes to the mailbox until the workflow asks for it.
    let early = server.post(
        &format!("/instances/{id}/messages/delivered"),
        &json!({"signed": "ines"}),
    );
    assert_eq!(early.status, 202, "{}", early.body);
    assert_eq!(early.body["delivered"], "mailbox");

    let shipped = json!({"action": "shipped", "by": "wes", "data": {"tracking": "TRK-2"}});
    let response = server.complete(task["id"].as_str().unwrap(), "?sync=true", &shipped);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["instance"]["status"], "completed");
    assert_eq!(response.body["instance"]["output"]["delivered"], true);

    let history = server.get(&format!("/instances/{id}/history"));
    let kinds: Vec<&str> = history.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"message-queued"), "{kinds:?}");
}

#[test]
fn payment_timeout_cancels_the_order() {
    let (_dir, server) = server();
    let started = server.start_instance("order-fulfilment", "", &order(1));
    let id = started.body["id"].as_str().unwrap().to_owned();
    let instance = server.wait_for_end(&id);
    assert_eq!(instance["status"], "completed");
    assert_eq!(instance["output"]["status"], "cancelled");

    let late = server.post(
        &format!("/instances/{id}/messages/payment-received"),
        &payment(),
    );
    assert_eq!(late.status, 409);
    assert_eq!(late.code(), "instance_finished");
}
