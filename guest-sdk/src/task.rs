use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;
use crate::bindings::layover::workflow::{types, waits};
use crate::duration;

/// A task for a person, built step by step and created with [`human_task`].
///
/// ```
/// use std::time::Duration;
/// use layover_sdk::Task;
///
/// # fn main() -> Result<(), layover_sdk::Error> {
/// let task = Task::new("Approve the travel budget")
///     .actions(["approve", "reject"])
///     .group("finance")
///     .form(&serde_json::json!({ "amount": 1250.0, "currency": "EUR" }))?
///     .timeout(Duration::from_secs(48 * 3600));
/// # let _ = task;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    title: String,
    actions: Vec<String>,
    assignee: Option<String>,
    group: Option<String>,
    /// The form data as JSON text. Serializing straight to text keeps the
    /// field order of a struct, which a `serde_json::Value` map would sort.
    form: String,
    timeout: Option<Duration>,
}

impl Task {
    /// The action list of a task until [`Task::actions`] replaces it.
    pub const DEFAULT_ACTIONS: &[&str] = &["done"];

    /// Starts a task with the given worklist title.
    ///
    /// The new task has the single action `"done"`, no assignee, no group, a
    /// `null` form and no timeout.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            actions: Self::DEFAULT_ACTIONS
                .iter()
                .map(|a| a.to_string())
                .collect(),
            assignee: None,
            group: None,
            form: String::from("null"),
            timeout: None,
        }
    }

    /// Sets the actions a person may complete the task with, such as
    /// `["approve", "reject"]`, replacing the current list.
    pub fn actions<I, S>(mut self, actions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.actions = actions.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the one person the task is for.
    pub fn assignee(mut self, assignee: impl Into<String>) -> Self {
        self.assignee = Some(assignee.into());
        self
    }

    /// Sets the group whose members may claim and complete the task.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets the data shown on the task's form.
    ///
    /// # Errors
    ///
    /// Fails when `form` cannot be serialized to JSON, for example a map
    /// with non-string keys.
    pub fn form<T: Serialize + ?Sized>(mut self, form: &T) -> Result<Self, Error> {
        self.form = serde_json::to_string(form)?;
        Ok(self)
    }

    /// Sets how long the task may stay unanswered before [`human_task`]
    /// returns [`TaskResult::TimedOut`].
    ///
    /// The host counts whole milliseconds: sub-millisecond parts are dropped
    /// and durations beyond `u64::MAX` milliseconds saturate.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn to_wit(&self) -> types::Task {
        types::Task {
            title: self.title.clone(),
            actions: self.actions.clone(),
            assignee: self.assignee.clone(),
            group: self.group.clone(),
            form: self.form.clone(),
            timeout_ms: self.timeout.map(duration::to_millis),
        }
    }
}

/// The result of a [`human_task`] call.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskResult {
    /// A person completed the task.
    Completed(TaskOutcome),
    /// The task's timeout passed before anyone completed it.
    TimedOut,
}

/// A completed task: the chosen action, the entered data and who completed it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    /// The action the person chose, one of the task's actions.
    pub action: String,
    /// The data the person entered on the form.
    pub data: Value,
    /// The person who completed the task.
    pub by: String,
}

impl TaskOutcome {
    /// Deserializes the entered data into `T`.
    ///
    /// # Errors
    ///
    /// Fails when the data does not have the shape of `T`.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.data).map_err(|error| {
            Error::new(format!(
                "invalid data from {} for action \"{}\": {error}",
                self.by, self.action
            ))
        })
    }

    fn from_wit(outcome: types::TaskOutcome) -> Self {
        let data = serde_json::from_str(&outcome.data).unwrap_or_else(|error| {
            panic!(
                "the host returned task data that is not JSON ({error}): {}",
                outcome.data
            )
        });
        Self {
            action: outcome.action,
            data,
            by: outcome.by,
        }
    }
}

/// Creates a task for a person and waits until it is completed or times out.
///
/// The instance may be suspended and evicted while it waits. When it is
/// resumed, the host replays the workflow and this call returns the recorded
/// result.
///
/// # Panics
///
/// Panics, which traps the instance, when the host returns task data that is
/// not a JSON document, because that breaks the host's side of the contract.
pub fn human_task(task: &Task) -> TaskResult {
    match waits::human_task(&task.to_wit()) {
        types::TaskResult::Completed(outcome) => {
            TaskResult::Completed(TaskOutcome::from_wit(outcome))
        }
        types::TaskResult::TimedOut => TaskResult::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn new_task_defaults() {
        let task = Task::new("Check the invoice").to_wit();
        assert_eq!(task.title, "Check the invoice");
        assert_eq!(task.actions, ["done"]);
        assert_eq!(task.assignee, None);
        assert_eq!(task.group, None);
        assert_eq!(task.form, "null");
        assert_eq!(task.timeout_ms, None);
    }

    #[test]
    fn builder_sets_every_field() {
        let task = Task::new("Approve expense")
            .actions(["approve", "reject"])
            .assignee("bob")
            .group("finance")
            .form(&json!({ "amount": 1250.0 }))
            .unwrap()
            .timeout(Duration::from_secs(2))
            .to_wit();
        assert_eq!(task.title, "Approve expense");
        assert_eq!(task.actions, ["approve", "reject"]);
        assert_eq!(task.assignee.as_deref(), Some("bob"));
        assert_eq!(task.group.as_deref(), Some("finance"));
        assert_eq!(task.form, r#"{"amount":1250.0}"#);
        assert_eq!(task.timeout_ms, Some(2_000));
    }

    #[test]
    fn actions_replace_the_defaults() {
        let owned = vec![String::from("answer")];
        let task = Task::new("Answer").actions(owned).to_wit();
        assert_eq!(task.actions, ["answer"]);
    }

    #[test]
    fn form_accepts_typed_values() {
        #[derive(Serialize)]
        struct Expense<'a> {
            employee: &'a str,
            amount: f64,
        }

        let expense = Expense {
            employee: "erin",
            amount: 12.5,
        };
        let task = Task::new("Approve").form(&expense).unwrap().to_wit();
        assert_eq!(task.form, r#"{"employee":"erin","amount":12.5}"#);
    }

    #[test]
    fn form_rejects_non_string_keys() {
        let mut map = BTreeMap::new();
        map.insert((1, 2), "pair key");
        assert!(Task::new("Approve").form(&map).is_err());
    }

    #[test]
    fn timeout_saturates() {
        let task = Task::new("Forever").timeout(Duration::MAX).to_wit();
        assert_eq!(task.timeout_ms, Some(u64::MAX));
    }

    #[test]
    fn outcome_parses_data() {
        let outcome = TaskOutcome::from_wit(types::TaskOutcome {
            action: String::from("approve"),
            data: String::from(r#"{"comment":"fine"}"#),
            by: String::from("bob"),
        });
        assert_eq!(outcome.action, "approve");
        assert_eq!(outcome.by, "bob");
        assert_eq!(outcome.data, json!({ "comment": "fine" }));
    }

    #[test]
    #[should_panic(expected = "not JSON")]
    fn outcome_with_invalid_json_panics() {
        TaskOutcome::from_wit(types::TaskOutcome {
            action: String::from("approve"),
            data: String::from("{not json"),
            by: String::from("bob"),
        });
    }

    #[test]
    fn data_as_deserializes() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Decision {
            comment: Option<String>,
        }

        let outcome = TaskOutcome {
            action: String::from("reject"),
            data: json!({ "comment": "too expensive" }),
            by: String::from("bob"),
        };
        let decision: Decision = outcome.data_as().unwrap();
        assert_eq!(decision.comment.as_deref(), Some("too expensive"));
    }

    #[test]
    fn data_as_names_the_action_on_error() {
        let outcome = TaskOutcome {
            action: String::from("approve"),
            data: json!("not a number"),
            by: String::from("bob"),
        };
        let error = outcome.data_as::<u32>().unwrap_err();
        assert!(error.message().contains("bob"), "{error}");
        assert!(error.message().contains("\"approve\""), "{error}");
    }
}
