//! Channel stream benchmarks (criterion) and the memory cost of a history entry.
//!
//! * `streams/publish_{1k,10k}_history_{off,on}` — N connections subscribed to one
//!   channel; per iteration one `Command::Publish` of `{"headline":"hello, world"}`.
//!   `off`: channel `news` (no namespace); `on`: channel `chat:news`, whose namespace
//!   keeps history (size 100, TTL 5 min), so each publication is also serialized once
//!   into the stream and every `message` carries `offset` and `epoch`. Throughput:
//!   recipients.
//! * `streams/recover_1000` — a stream holding 1,000 publications; per iteration one
//!   connection subscribes with `since` = the offset before them (→ `subscribed` with
//!   `recovered: true` and all 1,000 publications, serialized into one frame), then
//!   unsubscribes. Time to the encoded `subscribed` frame.
//! * Before criterion runs, the binary prints the heap bytes per history entry: a
//!   counting allocator measures 100,000 publications into a stream (history size
//!   100,000) minus the same publications on a channel without history.
//!
//! Run: `cargo bench -p switchboard-engine --bench streams`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use engine::{Action, Command, Config, ConnId, Engine, InFrame, Input, Millis, UpgradeRequest};
use serde_json::json;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// Only counts and forwards to the system allocator (benchmark binary; the engine
// crate itself stays `forbid(unsafe_code)`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NOW: Millis = Millis(1_700_000_000_000);

fn config(size: usize) -> Config {
    Config::from_value(json!({
        "limits": {"maxConnections": 100000},
        "rateLimit": {"enabled": false},
        "channels": {"namespaces": [
            {"pattern": "chat:*", "history": {"size": size, "ttlMs": 300000}}
        ]}
    }))
    .expect("bench config is valid")
}

fn open(engine: &mut Engine, id: u64) {
    let request = UpgradeRequest {
        path: "/".into(),
        peer: "10.0.0.1".into(),
        client_id: format!("client-{id}"),
        ..Default::default()
    };
    engine
        .handle(
            NOW,
            Input::Open {
                conn: ConnId(id),
                request,
            },
        )
        .unwrap();
    engine.drain_actions().for_each(drop);
}

fn frame(engine: &mut Engine, conn: u64, text: &str) -> Vec<Action> {
    engine
        .handle(
            NOW,
            Input::Frame {
                conn: ConnId(conn),
                frame: InFrame::Text(text),
            },
        )
        .unwrap();
    engine.drain_actions().collect()
}

fn publish(channel: &str) -> Command {
    Command::Publish {
        channel: channel.into(),
        data: Some(json!({ "headline": "hello, world" })),
        tenant: None,
    }
}

fn run(engine: &mut Engine, command: Command) -> usize {
    engine
        .handle(NOW, Input::Command { tag: 1, command })
        .unwrap();
    let mut n = 0;
    for a in engine.drain_actions() {
        black_box(&a);
        n += 1;
    }
    n
}

fn subscribed_engine(n: u64, channel: &str) -> Engine {
    let mut engine = Engine::new(config(100)).unwrap();
    let sub = format!(r#"{{"type":"subscribe","channel":"{channel}"}}"#);
    for id in 1..=n {
        open(&mut engine, id);
        frame(&mut engine, id, &sub);
    }
    engine
}

/// Heap bytes per history entry (see the module docs).
fn memory_per_entry() {
    const N: u64 = 100_000;
    let measure = |channel: &str| {
        let mut engine = Engine::new(config(N as usize)).unwrap();
        open(&mut engine, 1);
        run(&mut engine, publish(channel));
        let before = LIVE.load(Ordering::Relaxed);
        for _ in 1..N {
            run(&mut engine, publish(channel));
        }
        let after = LIVE.load(Ordering::Relaxed);
        drop(engine);
        (after - before) as f64 / (N - 1) as f64
    };
    let off = measure("news");
    let on = measure("chat:news");
    println!(
        "memory per history entry: {:.1} bytes (publication `{{\"headline\":\"hello, world\"}}`; \
         history on {on:.1} B/publication, off {off:.1} B/publication, {N} publications)",
        on - off
    );
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("streams");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3));
    for n in [1_000u64, 10_000] {
        for (mode, channel) in [("off", "news"), ("on", "chat:news")] {
            let mut engine = subscribed_engine(n, channel);
            group.throughput(Throughput::Elements(n));
            group.bench_function(format!("publish_{}k_history_{mode}", n / 1000), |b| {
                b.iter_batched(
                    || publish(channel),
                    |command| run(&mut engine, command),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    {
        let mut engine = Engine::new(config(1000)).unwrap();
        open(&mut engine, 1);
        let first = frame(&mut engine, 1, r#"{"type":"subscribe","channel":"chat:r"}"#);
        let text = match &first[0] {
            Action::Send { frame, .. } => frame.as_text().unwrap().to_string(),
            other => panic!("{other:?}"),
        };
        let epoch = serde_json::from_str::<serde_json::Value>(&text).unwrap()["epoch"]
            .as_str()
            .unwrap()
            .to_string();
        frame(
            &mut engine,
            1,
            r#"{"type":"unsubscribe","channel":"chat:r"}"#,
        );
        for _ in 0..1000 {
            run(&mut engine, publish("chat:r"));
        }
        let since = format!(
            r#"{{"type":"subscribe","channel":"chat:r","since":{{"offset":0,"epoch":"{epoch}"}}}}"#
        );
        let check = frame(&mut engine, 1, &since);
        match &check[0] {
            Action::Send { frame, .. } => {
                let v: serde_json::Value = serde_json::from_str(frame.as_text().unwrap()).unwrap();
                assert_eq!(v["recovered"], true);
                assert_eq!(v["publications"].as_array().unwrap().len(), 1000);
            }
            other => panic!("{other:?}"),
        }
        frame(
            &mut engine,
            1,
            r#"{"type":"unsubscribe","channel":"chat:r"}"#,
        );
        group.throughput(Throughput::Elements(1000));
        group.bench_function("recover_1000", |b| {
            b.iter(|| {
                let a = frame(&mut engine, 1, &since);
                black_box(a);
                frame(
                    &mut engine,
                    1,
                    r#"{"type":"unsubscribe","channel":"chat:r"}"#,
                );
            })
        });
    }
    group.finish();
}

fn main() {
    memory_per_entry();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
