use std::time::Duration;

/// Converts a duration to whole milliseconds for the host.
///
/// Sub-millisecond parts are truncated, like [`Duration::as_millis`], and a
/// duration longer than `u64::MAX` milliseconds saturates to `u64::MAX`.
pub(crate) fn to_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_milliseconds() {
        assert_eq!(to_millis(Duration::ZERO), 0);
        assert_eq!(to_millis(Duration::from_millis(1)), 1);
        assert_eq!(to_millis(Duration::from_secs(172_800)), 172_800_000);
    }

    #[test]
    fn sub_millisecond_parts_truncate() {
        assert_eq!(to_millis(Duration::from_micros(999)), 0);
        assert_eq!(to_millis(Duration::from_micros(1_999)), 1);
    }

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(to_millis(Duration::MAX), u64::MAX);
        assert_eq!(to_millis(Duration::from_secs(u64::MAX)), u64::MAX);
        assert_eq!(
            to_millis(Duration::from_millis(u64::MAX)),
            u64::MAX,
            "exactly u64::MAX milliseconds fits"
        );
    }
}
