//! Test-only counts of the expensive compilations (CEL programs, record schemas,
//! authenticators), per thread, so a test can show that a deployment compiles each
//! guard, schema and key set once.

use std::cell::Cell;

/// What was compiled on this thread since the last [`take`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// CEL programs (resource, application and channel guards).
    pub cel: usize,
    /// JSON Schemas (resource records, application payloads).
    pub schemas: usize,
    /// Authenticators (API keys, JWT keys, key sources).
    pub auth: usize,
}

thread_local! {
    static COUNTS: Cell<Counts> = const { Cell::new(Counts { cel: 0, schemas: 0, auth: 0 }) };
}

fn bump(f: impl FnOnce(&mut Counts)) {
    COUNTS.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

/// One CEL program compiled.
pub(crate) fn cel() {
    bump(|c| c.cel += 1);
}

/// One JSON Schema compiled.
#[cfg_attr(not(feature = "json-schema"), allow(dead_code))]
pub(crate) fn schema() {
    bump(|c| c.schemas += 1);
}

/// One authenticator built.
pub(crate) fn auth() {
    bump(|c| c.auth += 1);
}

/// The counts so far on this thread; resets them.
pub(crate) fn take() -> Counts {
    COUNTS.with(|c| c.replace(Counts::default()))
}
