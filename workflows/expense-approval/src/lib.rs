//! Expense approval: a manager decides, a deputy steps in when the manager
//! does not answer in time, the employee answers questions, and finance
//! approves large amounts.
//!
//! It shows human tasks with a timeout, escalation, a loop of questions and
//! answers, and data fields and log lines that report progress.
//!
//! # Flow
//!
//! 1. The manager gets an approval task with the actions `approve`, `reject`
//!    and `ask-info`. When it stays unanswered for `escalate_after_secs`,
//!    the same task goes to the deputy, without a timeout.
//! 2. `ask-info` sends the employee a task with the single action `answer`.
//!    Its form carries the question from the approver's data (`question`,
//!    or else `comment`). The approver then gets the approval task again,
//!    with all answers so far on the form.
//! 3. After an approval, an expense above `finance_limit` needs a second
//!    approval by any member of the group `finance`.
//!
//! # Input
//!
//! ```json
//! {
//!   "employee": "erin", "manager": "bob", "deputy": "dana",
//!   "amount": 1250.0, "currency": "EUR", "description": "Conference trip",
//!   "finance_limit": 1000.0,
//!   "escalate_after_secs": 172800
//! }
//! ```
//!
//! `finance_limit` defaults to 1000 and `escalate_after_secs` to 48 hours.
//!
//! # Output
//!
//! ```json
//! {
//!   "status": "approved",
//!   "decisions": [
//!     { "stage": "manager", "action": "approve", "by": "bob", "comment": "ok" },
//!     { "stage": "finance", "action": "approve", "by": "fiona" }
//!   ],
//!   "escalated": false
//! }
//! ```
//!
//! `status` is `approved` or `rejected`. Each decision has the stage
//! (`manager`, `deputy`, `employee` or `finance`) and the `comment` from the
//! person's data, if any. For the employee's answers, `comment` carries the
//! `answer` field.
//!
//! # Running it
//!
//! `cargo build --release` in `workflows/` writes
//! `target/guests/wasm32-wasip2/release/expense_approval.wasm`. The Layover
//! host embeds that file and starts it with the input above.

use std::time::Duration;

use layover_sdk::{Error, Task, TaskOutcome, TaskResult, human_task, log, set_field};
use serde::{Deserialize, Serialize};

const DEFAULT_FINANCE_LIMIT: f64 = 1000.0;
const DEFAULT_ESCALATE_AFTER_SECS: u64 = 48 * 60 * 60;

#[derive(Debug, Deserialize)]
struct Input {
    employee: String,
    manager: String,
    deputy: String,
    amount: f64,
    currency: String,
    description: String,
    #[serde(default = "default_finance_limit")]
    finance_limit: f64,
    #[serde(default = "default_escalate_after_secs")]
    escalate_after_secs: u64,
}

fn default_finance_limit() -> f64 {
    DEFAULT_FINANCE_LIMIT
}

fn default_escalate_after_secs() -> u64 {
    DEFAULT_ESCALATE_AFTER_SECS
}

#[derive(Debug, Serialize)]
struct Output {
    status: Status,
    decisions: Vec<Decision>,
    escalated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Stage {
    Manager,
    Deputy,
    Employee,
    Finance,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Manager => "manager",
            Stage::Deputy => "deputy",
            Stage::Employee => "employee",
            Stage::Finance => "finance",
        }
    }
}

#[derive(Debug, Serialize)]
struct Decision {
    stage: Stage,
    action: String,
    by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// The fields a person may fill in on any of this workflow's forms.
#[derive(Debug, Default, Deserialize)]
struct EnteredData {
    comment: Option<String>,
    question: Option<String>,
    answer: Option<String>,
}

/// A question from an approver and the employee's answer.
#[derive(Debug, Clone, Serialize)]
struct Clarification {
    asked_by: String,
    question: String,
    answer: Option<String>,
}

#[derive(Serialize)]
struct ApprovalForm<'a> {
    employee: &'a str,
    amount: f64,
    currency: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalated_from: Option<&'a str>,
    clarifications: &'a [Clarification],
}

#[derive(Serialize)]
struct QuestionForm<'a> {
    amount: f64,
    currency: &'a str,
    description: &'a str,
    asked_by: &'a str,
    question: &'a str,
}

#[derive(Serialize)]
struct FinanceForm<'a> {
    employee: &'a str,
    amount: f64,
    currency: &'a str,
    description: &'a str,
    finance_limit: f64,
    decisions: &'a [Decision],
}

/// The progress of one expense through the approval stages.
struct Approval {
    input: Input,
    decisions: Vec<Decision>,
    clarifications: Vec<Clarification>,
    escalated: bool,
}

fn run(input: Input) -> Result<Output, Error> {
    validate(&input)?;
    log::info(format!(
        "expense of {:.2} {} from {} submitted for approval",
        input.amount, input.currency, input.employee
    ));

    let mut approval = Approval {
        input,
        decisions: Vec::new(),
        clarifications: Vec::new(),
        escalated: false,
    };
    let mut status = approval.line_approval()?;
    if status == Status::Approved && approval.input.amount > approval.input.finance_limit {
        status = approval.finance_approval()?;
    }

    set_field("stage", "done")?;
    set_field("status", &status)?;
    log::info(format!("expense {}", status_name(status)));
    Ok(Output {
        status,
        decisions: approval.decisions,
        escalated: approval.escalated,
    })
}

layover_sdk::workflow!(run);

fn validate(input: &Input) -> Result<(), Error> {
    let required = [
        ("employee", &input.employee),
        ("manager", &input.manager),
        ("deputy", &input.deputy),
        ("currency", &input.currency),
    ];
    for (field, value) in required {
        if value.trim().is_empty() {
            return Err(Error::new(format!(
                "invalid input: {field} must not be empty"
            )));
        }
    }
    if !input.amount.is_finite() || input.amount <= 0.0 {
        return Err(Error::new(format!(
            "invalid input: amount must be a positive number, got {}",
            input.amount
        )));
    }
    if !input.finance_limit.is_finite() || input.finance_limit < 0.0 {
        return Err(Error::new(format!(
            "invalid input: finance_limit must be a non-negative number, got {}",
            input.finance_limit
        )));
    }
    Ok(())
}

impl Approval {
    /// Runs the manager's (or, after escalation, the deputy's) approval,
    /// including any rounds of questions to the employee.
    fn line_approval(&mut self) -> Result<Status, Error> {
        let mut stage = Stage::Manager;
        loop {
            set_field("stage", stage.name())?;
            let task = self.approval_task(stage)?;
            let outcome = match human_task(&task) {
                TaskResult::Completed(outcome) => outcome,
                TaskResult::TimedOut => {
                    // Only the manager's task has a timeout.
                    self.escalate()?;
                    stage = Stage::Deputy;
                    continue;
                }
            };

            let entered = self.record(stage, &outcome)?;
            match outcome.action.as_str() {
                "approve" => return Ok(Status::Approved),
                "reject" => return Ok(Status::Rejected),
                "ask-info" => {
                    let question = entered
                        .question
                        .or(entered.comment)
                        .unwrap_or_else(|| String::from("Please add more details."));
                    self.ask_employee(&outcome.by, question)?;
                }
                other => return Err(unexpected_action(stage, other)),
            }
        }
    }

    fn approval_task(&self, stage: Stage) -> Result<Task, Error> {
        let input = &self.input;
        let mut title = format!(
            "Approve {}'s expense of {:.2} {}: {}",
            input.employee, input.amount, input.currency, input.description
        );
        let escalated_from = (stage == Stage::Deputy).then_some(input.manager.as_str());
        if let Some(manager) = escalated_from {
            title.push_str(&format!(" (escalated from {manager})"));
        }

        let form = ApprovalForm {
            employee: &input.employee,
            amount: input.amount,
            currency: &input.currency,
            description: &input.description,
            escalated_from,
            clarifications: &self.clarifications,
        };
        let task = Task::new(title)
            .actions(["approve", "reject", "ask-info"])
            .form(&form)?;
        Ok(match stage {
            Stage::Deputy => task.assignee(&input.deputy),
            _ => task
                .assignee(&input.manager)
                .timeout(Duration::from_secs(input.escalate_after_secs)),
        })
    }

    fn escalate(&mut self) -> Result<(), Error> {
        self.escalated = true;
        set_field("escalated", &true)?;
        log::warn(format!(
            "{} did not decide within {} s, escalating to {}",
            self.input.manager, self.input.escalate_after_secs, self.input.deputy
        ));
        Ok(())
    }

    fn ask_employee(&mut self, asked_by: &str, question: String) -> Result<(), Error> {
        set_field("stage", Stage::Employee.name())?;
        let input = &self.input;
        let form = QuestionForm {
            amount: input.amount,
            currency: &input.currency,
            description: &input.description,
            asked_by,
            question: &question,
        };
        let task = Task::new(format!(
            "Answer {asked_by}'s question about your expense of {:.2} {}",
            input.amount, input.currency
        ))
        .actions(["answer"])
        .assignee(&input.employee)
        .form(&form)?;

        let outcome = match human_task(&task) {
            TaskResult::Completed(outcome) => outcome,
            TaskResult::TimedOut => {
                return Err(Error::new(
                    "the host reported a timeout for the employee's task, which has none",
                ));
            }
        };
        let entered = self.record(Stage::Employee, &outcome)?;
        self.clarifications.push(Clarification {
            asked_by: asked_by.to_string(),
            question,
            answer: entered.answer.or(entered.comment),
        });
        Ok(())
    }

    fn finance_approval(&mut self) -> Result<Status, Error> {
        set_field("stage", Stage::Finance.name())?;
        let input = &self.input;
        log::info(format!(
            "{:.2} {} is above the finance limit of {:.2}, asking finance",
            input.amount, input.currency, input.finance_limit
        ));
        let form = FinanceForm {
            employee: &input.employee,
            amount: input.amount,
            currency: &input.currency,
            description: &input.description,
            finance_limit: input.finance_limit,
            decisions: &self.decisions,
        };
        let task = Task::new(format!(
            "Finance approval for {}'s expense of {:.2} {}: {}",
            input.employee, input.amount, input.currency, input.description
        ))
        .actions(["approve", "reject"])
        .group("finance")
        .form(&form)?;

        let outcome = match human_task(&task) {
            TaskResult::Completed(outcome) => outcome,
            TaskResult::TimedOut => {
                return Err(Error::new(
                    "the host reported a timeout for the finance task, which has none",
                ));
            }
        };
        self.record(Stage::Finance, &outcome)?;
        match outcome.action.as_str() {
            "approve" => Ok(Status::Approved),
            "reject" => Ok(Status::Rejected),
            other => Err(unexpected_action(Stage::Finance, other)),
        }
    }

    /// Appends the decision to the output and the log, and returns the data
    /// the person entered.
    fn record(&mut self, stage: Stage, outcome: &TaskOutcome) -> Result<EnteredData, Error> {
        // A form submitted without any input may arrive as `null`.
        let entered = outcome
            .data_as::<Option<EnteredData>>()?
            .unwrap_or_default();
        let comment = match stage {
            Stage::Employee => entered.answer.clone().or_else(|| entered.comment.clone()),
            _ => entered.comment.clone(),
        };
        log::info(format!(
            "{} chose {} at the {} stage",
            outcome.by,
            outcome.action,
            stage.name()
        ));
        self.decisions.push(Decision {
            stage,
            action: outcome.action.clone(),
            by: outcome.by.clone(),
            comment,
        });
        Ok(entered)
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Approved => "approved",
        Status::Rejected => "rejected",
    }
}

fn unexpected_action(stage: Stage, action: &str) -> Error {
    Error::new(format!(
        "unexpected action \"{action}\" at the {} stage",
        stage.name()
    ))
}
