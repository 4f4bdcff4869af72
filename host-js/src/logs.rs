//! The engine's log lines (the `log` facade: key-source fetches, ...), collected while
//! an input is handled and handed to JavaScript in the batch (`"logs"`), where the
//! host prints them with its `log` callback. wasm runs one thread: one buffer.

use std::cell::RefCell;

/// Most lines kept per batch (the rest are counted in one summary line).
const MAX_LINES: usize = 64;

thread_local! {
    static LINES: RefCell<(Vec<String>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

struct Collector;

impl log::Log for Collector {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        LINES.with(|l| {
            let (lines, dropped) = &mut *l.borrow_mut();
            if lines.len() < MAX_LINES {
                lines.push(format!("{} {}", record.level(), record.args()));
            } else {
                *dropped += 1;
            }
        });
    }

    fn flush(&self) {}
}

static COLLECTOR: Collector = Collector;

/// Install the collector (once; later calls, or another logger already set, are fine).
pub fn init() {
    if log::set_logger(&COLLECTOR).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Take the lines logged since the last call.
pub fn take() -> Vec<String> {
    LINES.with(|l| {
        let (lines, dropped) = &mut *l.borrow_mut();
        let mut out = std::mem::take(lines);
        if *dropped > 0 {
            out.push(format!("WARN {dropped} more engine log lines were dropped"));
            *dropped = 0;
        }
        out
    })
}
