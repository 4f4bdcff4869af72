//! Fuzz target: arbitrary bytes as a host session (frames, pongs, timeouts with clock
//! jumps, closes, host-call completions, commands); engine invariants are checked after
//! every input. See `../harness/frames.rs` for the input format.
//!
//! Run (nightly + cargo-fuzz): `cd engine/fuzz && cargo fuzz run frames`

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/frames.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
