use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::Error;
use crate::bindings::layover::workflow::context;

/// Returns the id of the running instance.
pub fn instance_id() -> String {
    context::instance_id()
}

/// Returns the current time as recorded in the instance's journal.
///
/// Unlike [`SystemTime::now`], the value is the same when the host replays
/// the workflow, because it changes only when the instance resumes from a
/// wait. Decide on this time, never on the system clock.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(context::now_ms())
}

/// Sets a data field that the API shows with the instance, such as the
/// current stage.
///
/// # Errors
///
/// Fails when `value` cannot be serialized to JSON, or when the host rejects
/// the name or the value, for example because it is too large.
pub fn set_field<T: Serialize + ?Sized>(name: &str, value: &T) -> Result<(), Error> {
    let json = serde_json::to_string(value)?;
    context::set_field(name, &json)
        .map_err(|reason| Error::new(format!("failed to set field \"{name}\": {reason}")))
}
