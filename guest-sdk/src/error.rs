use std::fmt;

/// An error from a workflow or from this crate, carrying only a message.
///
/// A workflow that returns it from its `run` function fails its instance with
/// the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// Creates an error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Returns the error message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::new(error.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message() {
        let error = Error::new("amount must be positive");
        assert_eq!(error.to_string(), "amount must be positive");
        assert_eq!(error.message(), "amount must be positive");
    }

    #[test]
    fn conversions_keep_the_message() {
        assert_eq!(Error::from("a").message(), "a");
        assert_eq!(Error::from(String::from("b")).message(), "b");

        let json_error = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        let expected = json_error.to_string();
        assert_eq!(Error::from(json_error).message(), expected);
    }
}
