//! Write Layover workflows as plain Rust functions.
//!
//! A workflow is a function from a typed input to a typed output. It waits
//! for people with [`human_task`], for time with [`sleep`] and for outside
//! events with [`await_message`]. The [`workflow!`] macro exports it as the
//! `run` function of the `layover:workflow/workflow` component world, so a
//! workflow never deals with the component bindings.
//!
//! Layover records the result of every wait in the instance's journal. After
//! an eviction or a restart it runs the function again from the start, and
//! each wait that the journal records returns its recorded result at once. A workflow must therefore make its
//! decisions only from its input, the results of its waits and the context
//! functions of this crate, such as [`now`] in place of
//! [`SystemTime::now`](std::time::SystemTime::now).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use layover_sdk::{Error, Task, TaskResult, human_task, log, set_field};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input {
//!     author: String,
//!     reviewer: String,
//!     title: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     published: bool,
//!     reviewed_by: Option<String>,
//! }
//!
//! fn run(input: Input) -> Result<Output, Error> {
//!     set_field("stage", "review")?;
//!     let task = Task::new(format!("Review \"{}\"", input.title))
//!         .actions(["publish", "reject"])
//!         .assignee(&input.reviewer)
//!         .form(&serde_json::json!({ "author": input.author, "title": input.title }))?
//!         .timeout(Duration::from_secs(3 * 24 * 3600));
//!
//!     match human_task(&task) {
//!         TaskResult::Completed(outcome) => {
//!             log::info(format!("{} chose {}", outcome.by, outcome.action));
//!             Ok(Output {
//!                 published: outcome.action == "publish",
//!                 reviewed_by: Some(outcome.by),
//!             })
//!         }
//!         TaskResult::TimedOut => {
//!             log::warn("the review timed out");
//!             Ok(Output {
//!                 published: false,
//!                 reviewed_by: None,
//!             })
//!         }
//!     }
//! }
//!
//! layover_sdk::workflow!(run);
//! # fn main() {}
//! ```
//!
//! # Building
//!
//! A workflow is a `cdylib` crate built for `wasm32-wasip2`, for which rustc
//! links a component:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! layover-sdk = { path = "../guest-sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `cargo build --release --target wasm32-wasip2` then writes
//! `target/wasm32-wasip2/release/<crate_name>.wasm`.
//!
//! The crate also compiles for other targets so that its pure parts can be
//! unit-tested there, but calling a host function outside a component panics.

mod context;
mod duration;
mod error;
pub mod log;
mod task;
mod wait;

pub use context::{instance_id, now, set_field};
pub use error::Error;
pub use task::{Task, TaskOutcome, TaskResult, human_task};
pub use wait::{await_message, sleep};

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "layover:workflow/workflow",
        // The `workflow!` macro of a workflow crate expands the export macro,
        // so it must be reachable from other crates.
        pub_export_macro: true,
        export_macro_name: "export",
    });
}

/// Exports a function as the workflow's `run` entry point.
///
/// The function has the signature `fn(I) -> Result<O, E>`, where `I`
/// implements [`serde::de::DeserializeOwned`], `O` implements
/// [`serde::Serialize`] and `E` implements [`std::fmt::Display`]. The
/// generated export parses the input JSON into `I` and serializes the `Ok`
/// value as the output JSON. An `Err` fails the instance with its `Display`
/// text, and input that does not parse fails it with a message that starts
/// with `invalid input: `.
///
/// Use the macro once per crate, at module level.
#[macro_export]
macro_rules! workflow {
    ($run:expr $(,)?) => {
        const _: () = {
            struct LayoverWorkflow;

            impl $crate::__private::Guest for LayoverWorkflow {
                fn run(
                    input: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                    $crate::__private::run_json(&input, $run)
                }
            }

            $crate::__private::export! {
                LayoverWorkflow with_types_in $crate::__private
            }
        };
    };
}

/// Items that the `workflow!` macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    // The export macros refer to the generated items by paths relative to
    // the module named after `with_types_in`, so all of them are re-exported.
    pub use crate::bindings::*;

    /// Parses `input`, calls `run` and serializes its output, turning every
    /// failure into the error message of the WIT `run` export.
    pub fn run_json<I, O, E, F>(input: &str, run: F) -> Result<String, String>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Display,
        F: FnOnce(I) -> Result<O, E>,
    {
        let input =
            serde_json::from_str(input).map_err(|error| format!("invalid input: {error}"))?;
        let output = run(input).map_err(|error| error.to_string())?;
        serde_json::to_string(&output).map_err(|error| format!("invalid output: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::__private::run_json;
    use super::Error;

    #[derive(Deserialize)]
    struct Input {
        amount: f64,
    }

    #[derive(Serialize)]
    struct Output {
        doubled: f64,
    }

    fn double(input: Input) -> Result<Output, Error> {
        if input.amount < 0.0 {
            return Err(Error::new("amount must not be negative"));
        }
        Ok(Output {
            doubled: input.amount * 2.0,
        })
    }

    #[test]
    fn run_json_round_trip() {
        assert_eq!(
            run_json(r#"{"amount":1.5}"#, double).unwrap(),
            r#"{"doubled":3.0}"#
        );
    }

    #[test]
    fn run_json_invalid_input() {
        let error = run_json(r#"{"amount":"many"}"#, double).unwrap_err();
        assert!(error.starts_with("invalid input: "), "{error}");

        let error = run_json("not json", double).unwrap_err();
        assert!(error.starts_with("invalid input: "), "{error}");
    }

    #[test]
    fn run_json_workflow_error() {
        let error = run_json(r#"{"amount":-1}"#, double).unwrap_err();
        assert_eq!(error, "amount must not be negative");
    }

    #[test]
    fn run_json_accepts_closures_and_string_errors() {
        let output = run_json("[1,2,3]", |numbers: Vec<u32>| {
            Ok::<_, String>(numbers.iter().sum::<u32>())
        });
        assert_eq!(output.unwrap(), "6");
    }

    #[test]
    fn run_json_invalid_output() {
        let output = run_json("null", |()| {
            let mut map = BTreeMap::new();
            map.insert((1, 2), 3);
            Ok::<_, Error>(map)
        });
        let error = output.unwrap_err();
        assert!(error.starts_with("invalid output: "), "{error}");
    }
}
