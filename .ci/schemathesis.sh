#!/usr/bin/env bash
# Runs schemathesis against a live `layover serve --examples` with the OpenAPI
# document the host serves at /openapi.json, and fails on any 5xx response or
# any response that the document does not describe.
#
# Before the run it starts a few instances of the bundled workflows. It binds
# their instance and task ids, people and action names to the matching
# parameters, so that generated calls also reach real instances and tasks,
# not only unknown ids.
#
# Needs the virtualenv that .ci/setup installs (target/venv). Extra arguments
# go to `schemathesis run`, such as `--seed 42` to replay a run.
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis=$PWD/target/venv/bin/schemathesis
python=$PWD/target/venv/bin/python
if [[ ! -x $schemathesis ]]; then
    echo "$schemathesis is missing; run bash .ci/setup first" >&2
    exit 1
fi

# Test cases per operation and phase. 40 keeps the run near one minute on
# two cores (an estimate from local runs, not a limit the script enforces).
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-40}

# The same command as the test run builds the binary with the same features,
# so after `cargo test --workspace` this compiles nothing. A plain `cargo
# build -p layover` resolves features without the dev-dependencies and would
# compile wasmtime a second time.
cargo test --quiet --workspace --no-run
binary=${CARGO_TARGET_DIR:-target}/debug/layover

# The database, the config and the server log stay in $work after the run,
# for a look at a failure.
work=$PWD/target/schemathesis
rm -rf "$work"
mkdir -p "$work"
server_pid=""
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap stop_server EXIT

"$binary" serve --examples --listen 127.0.0.1:0 --db "$work/layover.redb" \
    >"$work/stdout" 2>"$work/server.log" &
server_pid=$!

# The server prints `layover listening on http://ADDR` as its first line once
# it accepts connections.
base=""
for _ in $(seq 1 600); do
    line=$(head -n 1 "$work/stdout" 2>/dev/null || true)
    if [[ $line == "layover listening on "* ]]; then
        base=${line#layover listening on }
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "layover serve exited before listening; its log:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $base ]]; then
    echo "layover serve did not listen within 60 s; its log:" >&2
    tail -n 40 "$work/server.log" >&2
    exit 1
fi
echo "layover listening on $base"

"$python" - "$base" "$work/schemathesis.toml" <<'PY'
"""Starts instances of the example workflows and writes a schemathesis
config that binds their ids to the id parameters."""
import json
import sys
import time
import urllib.request

base, config_path = sys.argv[1], sys.argv[2]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


instances, tasks = [], []
for amount in (40.0, 60.0, 1250.0, 1500.0, 3000.0):
    expense = {
        "employee": "erin", "manager": "bob", "deputy": "dana",
        "amount": amount, "currency": "EUR", "description": "conference travel",
    }
    instance = call("POST", "/workflows/expense-approval/instances?sync=true", expense)
    instances.append(instance["id"])
    tasks.append(instance["wait"]["task"]["id"])
# An approval above the finance limit gives the group `finance` a task.
finance = call("POST", f"/tasks/{tasks[-1]}/complete?sync=true", {"action": "approve", "by": "bob"})
tasks.append(finance["instance"]["wait"]["task"]["id"])

order = {"order_id": "A-1001", "customer": "carol", "items": [{"sku": "MUG-01"}],
         "total": 42.5, "shipping_delay_secs": 0}
for _ in range(3):
    instance = call("POST", "/workflows/order-fulfilment/instances?sync=true", order)
    instances.append(instance["id"])
# A paid order gives the group `warehouse` a task after its sleep of 0 s,
# which the host's timer ends shortly after the payment.
for order_id in instances[-2:]:
    call("POST", f"/instances/{order_id}/messages/payment-received?sync=true",
         {"amount": 42.5, "reference": "PAY-778"})
    for _ in range(100):
        wait = call("GET", f"/instances/{order_id}")["wait"]
        if wait and wait.get("task"):
            tasks.append(wait["task"]["id"])
            break
        time.sleep(0.1)
    else:
        sys.exit(f"order instance {order_id} did not reach its warehouse task within 10 s")


def toml_list(values):
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def binding(dictionary):
    return f'{{ dictionary = "{dictionary}", probability = 0.8 }}'


def operation(operation_id, **parameters):
    pairs = ", ".join(f'"{name}" = {binding(dictionary)}' for name, dictionary in parameters.items())
    return f"""
[[operations]]
include-operation-id = "{operation_id}"
parameters = {{ {pairs} }}
"""


# `cancel_instance` is left to random ids and to the links of the stateful
# phase, so that the seeded instances stay open for most of the run.
config = f"""
[dictionaries.instance-ids]
values = {toml_list(instances)}

[dictionaries.task-ids]
values = {toml_list(tasks)}

[dictionaries.people]
values = ["bob", "fiona", "carol", "dana"]

[dictionaries.actions]
values = ["approve", "reject", "ask-info", "answer", "shipped", "out-of-stock"]

[dictionaries.message-names]
values = ["payment-received", "delivered"]

[dictionaries.workflow-names]
values = ["expense-approval", "order-fulfilment"]
"""
config += operation("get_instance", **{"path.id": "instance-ids"})
config += operation("get_history", **{"path.id": "instance-ids"})
config += operation("send_message", **{"path.id": "instance-ids", "path.name": "message-names"})
config += operation("get_task", **{"path.id": "task-ids"})
config += operation("claim_task", **{"path.id": "task-ids", "body.by": "people"})
config += operation("release_task", **{"path.id": "task-ids", "body.by": "people"})
config += operation(
    "complete_task", **{"path.id": "task-ids", "body.by": "people", "body.action": "actions"}
)
config += operation("start_instance", **{"path.name": "workflow-names"})
config += operation("get_workflow", **{"path.name": "workflow-names"})
with open(config_path, "w") as file:
    file.write(config)
print(f"started {len(instances)} instances with {len(tasks)} open tasks")
PY

# Every check except positive_data_acceptance, which expects a 2xx for every
# request that matches the document: a component upload matches it with any
# bytes, but only a real component is accepted.
status=0
(cd "$work" && "$schemathesis" --config-file "$work/schemathesis.toml" run \
    "$base/openapi.json" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "$max_examples" \
    --request-timeout 60 \
    --generation-database none \
    --no-color \
    "$@") || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "layover serve exited during the run; its log:" >&2
    tail -n 40 "$work/server.log" >&2
    exit 1
fi
# How far the generated calls got into real instances and tasks.
for event in "instance started" "message delivered to its wait" "instance cancelled" \
    "task claimed" "task released" "task completed"; do
    echo "server log: $(grep -c "$event" "$work/server.log" || true) x $event"
done
if grep -q "panicked" "$work/server.log"; then
    echo "layover serve panicked during the run:" >&2
    grep -A 5 "panicked" "$work/server.log" >&2
    status=1
fi
exit "$status"
