//! The engine's heap bytes per idle connection (issues 18 and 22), counted by a global
//! allocator that only tallies and forwards to the system allocator (this example
//! binary only; the engine library stays `forbid(unsafe_code)`).
//!
//! The load tests' deployment (resource `bench` with `"publish": true`, heartbeats on,
//! rate limiting off) with N connections (default 10 000), measured in three steps:
//!
//! * (a) connected (welcome sent, actions drained);
//! * (b) + one resource subscription `{"resource":"bench","filter":{"room":"a"}}`;
//! * (c) + one channel subscription `{"channel":"bench"}`.
//!
//! For each step it prints the live bytes and live allocations the engine holds per
//! connection (the engine's collections included: slab, maps, indexes; what the system
//! allocator adds per allocation, ~8–16 bytes, is not counted).
//!
//! Run: `cargo run --release -p switchboard-engine --example conn_memory [N]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use engine::{Config, ConnId, Engine, InFrame, Input, Millis, UpgradeRequest};

struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

// Only counts and forwards to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NOW: Millis = Millis(1_700_000_000_000);

fn live() -> (isize, isize) {
    (
        BYTES.load(Ordering::Relaxed),
        ALLOCS.load(Ordering::Relaxed),
    )
}

fn feed(engine: &mut Engine, input: Input<'_>) {
    engine.handle(NOW, input).expect("valid input");
    engine.drain_actions().for_each(drop);
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N is a number"))
        .unwrap_or(10_000);
    let config = Config::from_json(
        r#"{
            "heartbeatInterval": 30000,
            "heartbeatTimeout": 10000,
            "limits": { "maxConnections": 200000, "maxConnectionsPerIp": 0 },
            "rateLimit": { "enabled": false },
            "routes": [{ "path": "/" }],
            "auth": { "required": false },
            "resources": { "bench": { "publish": true } }
        }"#,
    )
    .expect("config is valid");
    let mut engine = Engine::new(config).expect("engine");
    let steps: [(&str, Option<&str>); 3] = [
        ("(a) connected", None),
        (
            "(b) + resource subscription",
            Some(
                r#"{"type":"subscribe","requestId":"s1","resource":"bench","filter":{"room":"a"}}"#,
            ),
        ),
        (
            "(c) + channel subscription",
            Some(r#"{"type":"subscribe","requestId":"s2","channel":"bench"}"#),
        ),
    ];
    let start = live();
    let mut before = start;
    println!("{n} connections; live heap bytes (allocations) per connection:");
    for (name, frame) in steps {
        for id in 1..=n {
            match frame {
                None => {
                    // A host's client id: 16 random URL-safe characters.
                    let request = UpgradeRequest {
                        path: "/".into(),
                        peer: "127.0.0.1".into(),
                        client_id: format!("{id:0>16}"),
                        ..Default::default()
                    };
                    let conn = ConnId(id);
                    feed(&mut engine, Input::Open { conn, request });
                }
                Some(text) => feed(
                    &mut engine,
                    Input::Frame {
                        conn: ConnId(id),
                        frame: InFrame::Text(text),
                    },
                ),
            }
        }
        let now = live();
        let per = |v: isize, b: isize| (v - b) as f64 / n as f64;
        println!(
            "{name:<30} {:>7.0} B ({:>4.1} allocs)   step {:>+7.0} B ({:>+4.1} allocs)",
            per(now.0, start.0),
            per(now.1, start.1),
            per(now.0, before.0),
            per(now.1, before.1),
        );
        before = now;
    }
    engine.check_invariants().expect("invariants");
    assert_eq!(engine.connection_count(), n as usize);
}
