//! Native baseline for the wasm throughput figures: the same workloads as
//! `host-js/bench/engine-bench.mjs`, on the same frames, in the same process shape.
//!
//! * `ping`: one open connection; per op one `{"type":"ping","requestId":1}` text frame.
//! * `fanout1k`: 1,000 connections subscribed to `messages`; per op one
//!   `{"command":"resourceChanged",...}` insert (JSON-parsed each time, as the wasm
//!   `command()` export does) → one `sendMany` to 1,000 recipients.
//!
//! Each workload runs two ways: `engine` = `Engine::handle` + drain (what the criterion
//! bench measures) and `batch` = the exact code path of the wasm export
//! (`Core::handle` → one batch string), so the wasm/native ratio isolates wasm + the
//! JS crossing. Prints one JSON line per measurement.
//!
//! Run: `cargo run --release -p switchboard-host-js --example native_bench`

use std::hint::black_box;
use std::time::Instant;

use engine::{Command, Config, ConnId, Engine, InFrame, Input, Millis, UpgradeRequest};
use switchboard_wasm::core::Core;

const NOW: Millis = Millis(1_700_000_000_000);
pub const CONFIG: &str = r#"{"resources":{"messages":{}},"rateLimit":{"enabled":false},"limits":{"maxConnections":100000,"maxConnectionsPerIp":0}}"#;
const PING: &str = r#"{"type":"ping","requestId":1}"#;
const SUB: &str = r#"{"type":"subscribe","resource":"messages"}"#;
const CHANGE: &str = r#"{"command":"resourceChanged","resource":"messages","event":"insert","record":{"id":"m1","channel":"general","text":"hello","createdAt":"2024-01-15T10:31:00.000Z","updatedAt":"2024-01-15T10:31:00.000Z"}}"#;

fn open(conn: u64) -> Input<'static> {
    Input::Open {
        conn: ConnId(conn),
        request: UpgradeRequest {
            path: "/".into(),
            peer: "127.0.0.1".into(),
            client_id: format!("c{conn}"),
            ..Default::default()
        },
    }
}

fn engine_with(n: u64) -> Engine {
    let mut e = Engine::with_seed(Config::from_json(CONFIG).unwrap(), 1).unwrap();
    for c in 1..=n {
        e.handle(NOW, open(c)).unwrap();
        e.handle(
            NOW,
            Input::Frame {
                conn: ConnId(c),
                frame: InFrame::Text(SUB),
            },
        )
        .unwrap();
    }
    e.drain_actions().for_each(drop);
    e
}

fn core_with(n: u64) -> Core {
    let mut c = Core::new(CONFIG, 1, true).unwrap();
    for id in 1..=n {
        c.handle(NOW, open(id));
        c.handle(
            NOW,
            Input::Frame {
                conn: ConnId(id),
                frame: InFrame::Text(SUB),
            },
        );
    }
    c
}

fn report(workload: &str, path: &str, ops: u64, secs: f64, recipients: u64) {
    println!(
        "{{\"runtime\":\"native\",\"workload\":\"{workload}\",\"path\":\"{path}\",\"ops\":{ops},\"seconds\":{secs:.4},\"opsPerSec\":{:.0},\"deliveriesPerSec\":{:.0}}}",
        ops as f64 / secs,
        (ops * recipients) as f64 / secs
    );
}

fn time(budget: f64, mut f: impl FnMut()) -> (u64, f64) {
    // Warm up, then run batches until the time budget is spent.
    for _ in 0..1000 {
        f();
    }
    let start = Instant::now();
    let mut ops = 0u64;
    loop {
        for _ in 0..1000 {
            f();
        }
        ops += 1000;
        let t = start.elapsed().as_secs_f64();
        if t >= budget {
            return (ops, t);
        }
    }
}

fn main() {
    let budget: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);

    let mut e = engine_with(1);
    let (ops, t) = time(budget, || {
        e.handle(
            NOW,
            Input::Frame {
                conn: ConnId(1),
                frame: InFrame::Text(black_box(PING)),
            },
        )
        .unwrap();
        e.drain_actions().for_each(|a| drop(black_box(a)));
    });
    report("ping", "engine", ops, t, 1);

    let mut c = core_with(1);
    let (ops, t) = time(budget, || {
        black_box(c.handle(
            NOW,
            Input::Frame {
                conn: ConnId(1),
                frame: InFrame::Text(black_box(PING)),
            },
        ));
    });
    report("ping", "batch", ops, t, 1);

    let mut e = engine_with(1000);
    let (ops, t) = time(budget, || {
        let command: Command = serde_json::from_str(black_box(CHANGE)).unwrap();
        e.handle(NOW, Input::Command { tag: 1, command }).unwrap();
        e.drain_actions().for_each(|a| drop(black_box(a)));
    });
    report("fanout1k", "engine", ops, t, 1000);

    let mut c = core_with(1000);
    let (ops, t) = time(budget, || {
        let command: Command = serde_json::from_str(black_box(CHANGE)).unwrap();
        black_box(c.handle(NOW, Input::Command { tag: 1, command }));
    });
    report("fanout1k", "batch", ops, t, 1000);
}
