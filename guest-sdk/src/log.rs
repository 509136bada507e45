//! Lines in the instance log, which the host keeps with the instance.

use crate::bindings::layover::workflow::{context, types::LogLevel};

/// The severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

/// Appends a line with the given severity to the instance log.
pub fn log(level: Level, message: impl AsRef<str>) {
    context::log(level.into(), message.as_ref());
}

/// Appends a debug line to the instance log.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Appends an info line to the instance log.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Appends a warning to the instance log.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Appends an error line to the instance log.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_wit() {
        assert!(matches!(LogLevel::from(Level::Debug), LogLevel::Debug));
        assert!(matches!(LogLevel::from(Level::Info), LogLevel::Info));
        assert!(matches!(LogLevel::from(Level::Warn), LogLevel::Warn));
        assert!(matches!(LogLevel::from(Level::Error), LogLevel::Error));
    }
}
