//! The host clock: the wall clock as the engine wants it ([`wall_now`]) and the
//! settable clock of the test control channel ([`TestClock`], set by a [`ClockSet`]).
//!
//! A leaf module: the actor, the test control channel and [`crate::ids`] read it.

use std::time::{SystemTime, UNIX_EPOCH};

use engine::Millis;
use serde::Deserialize;

/// The wall clock as the engine wants it: Unix epoch milliseconds.
pub fn wall_now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// `clock` body of the test control channel.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClockSet {
    /// The time the clock reads now (epoch ms).
    pub at: u64,
    /// Stay at `at` until set again.
    #[serde(default)]
    pub frozen: bool,
}

/// The host clock under test control: `at` at `wall`, moving with the wall clock
/// unless frozen.
#[derive(Debug, Clone, Copy)]
pub struct TestClock {
    at: Millis,
    wall: Millis,
    frozen: bool,
}

impl TestClock {
    /// The wall clock.
    pub fn wall() -> Self {
        let now = wall_now();
        TestClock {
            at: now,
            wall: now,
            frozen: false,
        }
    }

    /// Read `set.at` from now on.
    pub fn set(set: ClockSet) -> Self {
        TestClock {
            at: Millis(set.at),
            wall: wall_now(),
            frozen: set.frozen,
        }
    }

    /// The current reading.
    pub fn now(&self) -> Millis {
        if self.frozen {
            self.at
        } else {
            Millis(
                self.at
                    .0
                    .saturating_add(wall_now().0.saturating_sub(self.wall.0)),
            )
        }
    }
}
