//! Per-connection rate limiting: an integer token bucket.
//!
//! The bucket holds up to `maxRequests` tokens and refills at `maxRequests` per
//! `windowMs`, continuously. Amounts are kept in units of `1/windowMs` token so every
//! step is exact integer arithmetic: native and wasm builds agree bit for bit.

use serde::{Deserialize, Serialize};

use crate::config::RateLimitConfig;
use crate::types::Millis;

/// A token bucket. Starts full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    /// Current fill, in units of 1/windowMs token.
    units: u128,
    /// When the fill was last brought up to date.
    last: Millis,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(cfg: &RateLimitConfig, now: Millis) -> Self {
        Self {
            units: capacity(cfg),
            last: now,
        }
    }

    /// Take one token at `now`; `false` when the bucket is empty (the request is refused).
    pub fn try_take(&mut self, cfg: &RateLimitConfig, now: Millis) -> bool {
        let cap = capacity(cfg);
        let elapsed = now.since(self.last) as u128;
        if elapsed > 0 {
            self.units = cap.min(self.units + elapsed * cfg.max_requests as u128);
            self.last = now;
        }
        let cost = cfg.window_ms as u128;
        if self.units >= cost {
            self.units -= cost;
            debug_assert!(self.units <= cap);
            true
        } else {
            false
        }
    }

    /// Take `n` tokens at once (all or none); `false` when fewer are available.
    pub fn try_take_n(&mut self, cfg: &RateLimitConfig, now: Millis, n: u64) -> bool {
        let cap = capacity(cfg);
        let elapsed = now.since(self.last) as u128;
        if elapsed > 0 {
            self.units = cap.min(self.units + elapsed * cfg.max_requests as u128);
            self.last = now;
        }
        let cost = cfg.window_ms as u128 * n as u128;
        if self.units >= cost {
            self.units -= cost;
            true
        } else {
            false
        }
    }

    /// Whole tokens available (for info and tests).
    pub fn available(&self, cfg: &RateLimitConfig) -> u64 {
        (self.units / (cfg.window_ms.max(1) as u128)) as u64
    }
}

fn capacity(cfg: &RateLimitConfig) -> u128 {
    cfg.max_requests as u128 * cfg.window_ms as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max: u64, window: u64) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            window_ms: window,
            max_requests: max,
            close_after: 3,
        }
    }

    #[test]
    fn burst_then_refuse() {
        let c = cfg(3, 1000);
        let mut b = TokenBucket::new(&c, Millis(0));
        assert!(b.try_take(&c, Millis(0)));
        assert!(b.try_take(&c, Millis(0)));
        assert!(b.try_take(&c, Millis(0)));
        assert!(!b.try_take(&c, Millis(0)));
    }

    #[test]
    fn refills_continuously_and_exactly() {
        let c = cfg(3, 1000); // one token per 333.33 ms
        let mut b = TokenBucket::new(&c, Millis(0));
        for _ in 0..3 {
            assert!(b.try_take(&c, Millis(0)));
        }
        assert!(!b.try_take(&c, Millis(333)));
        assert!(b.try_take(&c, Millis(334)));
        assert!(!b.try_take(&c, Millis(334)));
        assert_eq!(b.available(&c), 0);
        // A long idle period refills only to capacity.
        assert!(b.try_take(&c, Millis(1_000_000)));
        assert_eq!(b.available(&c), 2);
    }

    #[test]
    fn clock_going_backwards_does_not_refill_or_panic() {
        let c = cfg(1, 1000);
        let mut b = TokenBucket::new(&c, Millis(5000));
        assert!(b.try_take(&c, Millis(5000)));
        assert!(!b.try_take(&c, Millis(10)));
        assert!(b.try_take(&c, Millis(6000)));
    }

    #[test]
    fn extreme_config_does_not_overflow() {
        let c = cfg(1_000_000_000, 31_622_400_000);
        let mut b = TokenBucket::new(&c, Millis(0));
        assert!(b.try_take(&c, Millis(u64::MAX)));
    }
}
