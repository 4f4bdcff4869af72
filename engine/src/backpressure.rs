//! When a host reports a connection's queued bytes to the engine (`Input::Backpressure`).
//!
//! The engine's slow-consumer decisions (`limits.slowConsumer`: drop frames or close
//! 1013) change only when a connection's queue crosses `limits.maxBufferedBytes`, so a
//! host reports exactly those crossings, with a hysteresis so that a queue hovering at the
//! limit is not reported on every frame: once when the queue grows past
//! [`Thresholds::over`], once when it drains back to [`Thresholds::under`] or less.
//! Every host applies the same thresholds (PROTOCOL.md §15).
//!
//! ```
//! use engine::backpressure::Thresholds;
//! let t = Thresholds::for_limit(1000);
//! assert_eq!(t.crossing(false, 1000), None); // at the limit: not over
//! assert_eq!(t.crossing(false, 1001), Some(true)); // report: over
//! assert_eq!(t.crossing(true, 600), None); // still above `under`
//! assert_eq!(t.crossing(true, 500), Some(false)); // report: drained
//! ```

/// The two queue sizes at which a host reports (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Report when the queue holds more than this many bytes (`limits.maxBufferedBytes`).
    pub over: u64,
    /// After reporting `over`, report again when the queue holds this many bytes or fewer
    /// (half the limit).
    pub under: u64,
}

impl Thresholds {
    /// The thresholds for `limits.maxBufferedBytes`.
    pub fn for_limit(max_buffered_bytes: u64) -> Self {
        Thresholds {
            over: max_buffered_bytes,
            under: max_buffered_bytes / 2,
        }
    }

    /// Whether a queue of `queued` bytes must be reported, given whether the last report
    /// said "over": `Some(over)` is the state to report now, `None` means no report.
    pub fn crossing(&self, reported_over: bool, queued: u64) -> Option<bool> {
        if !reported_over && queued > self.over {
            Some(true)
        } else if reported_over && queued <= self.under {
            Some(false)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_that_is_not_a_power_of_two_is_reported_at_the_limit() {
        let t = Thresholds::for_limit(100_000);
        assert_eq!(t.crossing(false, 100_000), None);
        assert_eq!(t.crossing(false, 100_001), Some(true));
        assert_eq!(t.crossing(true, 131_072), None);
        assert_eq!(t.crossing(true, 50_001), None);
        assert_eq!(t.crossing(true, 50_000), Some(false));
        assert_eq!(t.crossing(false, 0), None);
    }
}
