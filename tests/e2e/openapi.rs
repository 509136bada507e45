//! The OpenAPI document: the copy in docs/openapi.json is the one the code
//! generates, the server and the CLI return it, and every route it lists
//! exists.

use std::process::Command;

use serde_json::Value;

use crate::support::Server;

const REGENERATE: &str = "docs/openapi.json is out of date; regenerate it with \
                          `cargo run -- openapi > docs/openapi.json`";

fn committed_document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[]);
    (dir, server)
}

#[test]
fn cli_prints_the_committed_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_layover"))
        .arg("openapi")
        .output()
        .expect("run layover openapi");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("the document is UTF-8");
    assert!(printed == committed_document(), "{REGENERATE}");
}

#[test]
fn server_serves_the_committed_document() {
    let (_dir, server) = server();
    let response = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/openapi.json", server.base))
        .send()
        .expect("GET /openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "application/json");
    let served = response.text().unwrap();
    assert!(served == committed_document(), "{REGENERATE}");
}

/// Fills the path parameters of a documented path with placeholder values.
fn placeholder_path(path: &str) -> String {
    path.replace("{name}", "expense-approval")
        .replace("{id}", "no-such-id")
}

#[test]
fn documented_routes_exist() {
    let (_dir, server) = server();
    let document: Value = serde_json::from_str(&committed_document()).unwrap();
    let paths = document["paths"].as_object().expect("paths");
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = format!("{}{}", server.base, placeholder_path(path));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = client
                .request(method.clone(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .expect("request to layover");
            let status = response.status().as_u16();
            let body: Value = response.json().expect("JSON body");
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert_ne!(
                body["error"]["code"], "route_not_found",
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations in the document");
}
