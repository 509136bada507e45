//! The OpenAPI 3.1 document of the HTTP API. The router collects each
//! route's entry from its handler's `#[utoipa::path]` attribute; this module
//! adds the document's title, tags and shared schemas, and serves it.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::openapi::link::LinkBuilder;

use super::ApiConfig;
use super::views::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Layover",
        description = "The HTTP API of Layover, a WebAssembly-sandboxed workflow host. Bodies \
                       are JSON in and out, except the component upload, and every error is \
                       `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}` with a status \
                       that matches the code. A method that a route does not take is `405` \
                       with the code `method_not_allowed` and an `Allow` header, and an \
                       unknown path is `404` with the code `route_not_found`."
    ),
    tags(
        (name = "workflows", description = "Workflow components and their versions."),
        (name = "instances", description = "Running workflows: start, inspect, message, cancel."),
        (name = "tasks", description = "The worklist of human tasks."),
        (name = "host", description = "The host itself."),
    ),
    components(schemas(ErrorBody)),
)]
struct ApiDoc;

/// Returns the document without paths, to which the router adds its routes.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Builds the OpenAPI document of the HTTP API from its routes.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = super::routes(&ApiConfig::default()).into_openapi();
    add_links(&mut document);
    document
}

/// The calls that take an instance id, and those that take a task id, as
/// their `id` path parameter.
const INSTANCE_CALLS: [&str; 4] = [
    "get_instance",
    "get_history",
    "send_message",
    "cancel_instance",
];
const TASK_CALLS: [&str; 4] = ["get_task", "claim_task", "release_task", "complete_task"];

/// Returns, for a response schema, the JSON pointers to the ids its body
/// carries, each with the path parameter they fill and the calls that take
/// it.
fn id_pointers(schema: &str) -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    match schema {
        "Instance" => vec![
            ("/id", "id", &INSTANCE_CALLS),
            ("/wait/task/id", "id", &TASK_CALLS),
        ],
        "Task" => vec![
            ("/id", "id", &TASK_CALLS),
            ("/instance_id", "id", &INSTANCE_CALLS),
        ],
        "Completion" => vec![
            ("/instance/id", "id", &INSTANCE_CALLS),
            ("/task/id", "id", &TASK_CALLS),
        ],
        "MessageDelivery" => vec![
            ("/instance/id", "id", &INSTANCE_CALLS),
            ("/instance/wait/task/id", "id", &TASK_CALLS),
        ],
        "UploadedVersion" | "Workflow" => vec![("/name", "name", &["start_instance"])],
        _ => Vec::new(),
    }
}

/// Adds OpenAPI links from every success response that carries an instance,
/// task or workflow to the calls that take its id or name, so that clients
/// and stateful test tools can follow them. A link whose pointer is absent
/// from a body, such as `/wait/task/id` of an instance that waits on no
/// task, does not apply to that body.
fn add_links(document: &mut utoipa::openapi::OpenApi) {
    const SCHEMA_PREFIX: &str = "#/components/schemas/";
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if !status.starts_with('2') {
                    continue;
                }
                let schema = response
                    .content
                    .get("application/json")
                    .and_then(|content| match content {
                        RefOr::T(content) => content.schema.as_ref(),
                        RefOr::Ref(_) => None,
                    });
                let Some(RefOr::Ref(reference)) = schema else {
                    continue;
                };
                let Some(name) = reference.ref_location.strip_prefix(SCHEMA_PREFIX) else {
                    continue;
                };
                for (pointer, parameter, targets) in id_pointers(name) {
                    for target in targets {
                        let link = LinkBuilder::new()
                            .operation_id(*target)
                            .parameter(parameter, format!("$response.body#{pointer}"))
                            .build();
                        response.links.insert((*target).to_owned(), RefOr::T(link));
                    }
                }
            }
        }
    }
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes to JSON");
    json.push('\n');
    json
});

/// Returns the OpenAPI document as pretty-printed JSON with a final newline,
/// as `layover openapi` prints it and docs/openapi.json stores it.
pub fn document_json() -> &'static str {
    &DOCUMENT_JSON
}

/// Get the OpenAPI document.
///
/// This document: every route with its parameters, bodies and statuses.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "host",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json",
            body = Object),
    ),
)]
pub(super) async fn serve_document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::path::{Operation, ParameterIn};

    use super::super::request::{RESUME_QUERY, START_QUERY, TASKS_QUERY};
    use super::*;

    fn operation<'a>(
        document: &'a utoipa::openapi::OpenApi,
        path: &str,
        method: &str,
    ) -> &'a Operation {
        let item = document
            .paths
            .paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"));
        let operation = match method {
            "get" => &item.get,
            "post" => &item.post,
            "put" => &item.put,
            _ => panic!("no such method {method}"),
        };
        operation
            .as_ref()
            .unwrap_or_else(|| panic!("{method} {path} is not in the document"))
    }

    fn query_names(operation: &Operation) -> Vec<String> {
        let mut names: Vec<String> = operation
            .parameters
            .iter()
            .flatten()
            .filter_map(|parameter| match parameter {
                RefOr::T(parameter) => Some(parameter),
                RefOr::Ref(_) => None,
            })
            .filter(|parameter| parameter.parameter_in == ParameterIn::Query)
            .map(|parameter| parameter.name.clone())
            .collect();
        names.sort();
        names
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn query_parameters_match_the_parsers() {
        let document = document();
        let cases = [
            ("/workflows/{name}/instances", "post", START_QUERY),
            ("/instances/{id}/messages/{name}", "post", RESUME_QUERY),
            ("/tasks/{id}/complete", "post", RESUME_QUERY),
            ("/tasks", "get", TASKS_QUERY),
        ];
        for (path, method, known) in cases {
            let operation = operation(&document, path, method);
            assert_eq!(query_names(operation), sorted(known), "{method} {path}");
        }
    }

    #[test]
    fn every_operation_documents_its_errors() {
        let document = document();
        for (path, item) in &document.paths.paths {
            for (method, operation) in
                [("get", &item.get), ("post", &item.post), ("put", &item.put)]
            {
                let Some(operation) = operation else { continue };
                let statuses: Vec<&String> = operation.responses.responses.keys().collect();
                let has_success = statuses.iter().any(|status| status.starts_with('2'));
                assert!(has_success, "{method} {path} has no 2xx response");
                let reads_state = path != "/health" && path != "/openapi.json";
                if reads_state {
                    assert!(
                        operation.responses.responses.contains_key("500"),
                        "{method} {path} does not document 500"
                    );
                }
                if operation.request_body.is_some() {
                    assert!(
                        operation.responses.responses.contains_key("413"),
                        "{method} {path} reads a body but does not document 413"
                    );
                }
                let has_path_parameter = path.contains('{');
                if has_path_parameter {
                    assert!(
                        operation.responses.responses.contains_key("400"),
                        "{method} {path} does not document 400 for a bad path"
                    );
                }
            }
        }
    }

    #[test]
    fn links_name_existing_operations() {
        let document = document();
        let mut operation_ids = Vec::new();
        let mut link_targets = Vec::new();
        for item in document.paths.paths.values() {
            for operation in [&item.get, &item.post, &item.put].into_iter().flatten() {
                operation_ids.extend(operation.operation_id.clone());
                for response in operation.responses.responses.values() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    for link in response.links.values() {
                        let RefOr::T(link) = link else { continue };
                        link_targets.push(link.operation_id.clone());
                    }
                }
            }
        }
        assert!(!link_targets.is_empty());
        for target in link_targets {
            assert!(operation_ids.contains(&target), "link to unknown {target}");
        }
    }

    #[test]
    fn document_json_parses() {
        let value: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert!(value["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(value["paths"]["/openapi.json"]["get"].is_object());
        assert!(value["components"]["schemas"]["Error"].is_object());
    }
}
