//! Wall-clock formatting for the timestamps that appear in frames.

use time::macros::format_description;
use time::OffsetDateTime;

use crate::types::Millis;

/// `Millis` (epoch ms) as an ISO-8601 UTC string with milliseconds, like JavaScript's
/// `Date.prototype.toISOString()`: `2024-01-15T10:30:00.000Z`.
pub fn iso8601(t: Millis) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let nanos = i128::from(t.0) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        // Beyond year 9999 `time` refuses; clamp to the last representable instant.
        .unwrap_or_else(|| "9999-12-31T23:59:59.999Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_javascript_to_iso_string() {
        assert_eq!(iso8601(Millis(0)), "1970-01-01T00:00:00.000Z");
        // new Date(1705314600000).toISOString()
        assert_eq!(
            iso8601(Millis(1_705_314_600_000)),
            "2024-01-15T10:30:00.000Z"
        );
        assert_eq!(
            iso8601(Millis(1_705_314_600_123)),
            "2024-01-15T10:30:00.123Z"
        );
        assert_eq!(iso8601(Millis(u64::MAX)), "9999-12-31T23:59:59.999Z");
    }
}
