use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::layover::workflow::{types::MessageResult, waits};
use crate::duration;

/// Suspends the workflow for the given duration.
///
/// The host counts whole milliseconds: sub-millisecond parts are dropped and
/// durations beyond `u64::MAX` milliseconds saturate.
pub fn sleep(duration: Duration) {
    waits::sleep(duration::to_millis(duration));
}

/// Waits for the next message called `name` and deserializes its payload.
///
/// Returns `Ok(None)` when `timeout` passes first, and waits with no limit
/// when `timeout` is `None`. A message sent before this call is kept in the
/// instance's mailbox, so the call returns it at once.
///
/// # Errors
///
/// Fails when the payload does not deserialize into `T`. The message counts
/// as received all the same, so a later call waits for the next one.
pub fn await_message<T: DeserializeOwned>(
    name: &str,
    timeout: Option<Duration>,
) -> Result<Option<T>, Error> {
    match waits::await_message(name, timeout.map(duration::to_millis)) {
        MessageResult::Received(payload) => parse_payload(name, &payload).map(Some),
        MessageResult::TimedOut => Ok(None),
    }
}

fn parse_payload<T: DeserializeOwned>(name: &str, payload: &str) -> Result<T, Error> {
    serde_json::from_str(payload)
        .map_err(|error| Error::new(format!("invalid payload for message \"{name}\": {error}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Payment {
        amount: f64,
    }

    #[test]
    fn payload_deserializes() {
        let payment: Payment = parse_payload("payment-received", r#"{"amount":42.5}"#).unwrap();
        assert_eq!(payment, Payment { amount: 42.5 });
    }

    #[test]
    fn payload_error_names_the_message() {
        let error = parse_payload::<Payment>("payment-received", r#"{"amount":"lots"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid payload for message \"payment-received\": "),
            "{error}"
        );
    }
}
