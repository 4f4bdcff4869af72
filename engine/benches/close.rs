//! Closing connections (criterion; issues 18 and 22).
//!
//! The load tests' shape: N connections, each subscribed to channel `bench` and to
//! resource `bench` (which takes publishes, `"publish": true`) with filter
//! `{"room":"a"}` — every subscription lands in the same channel and the same index
//! bucket. One measured iteration feeds `Closed` for all N connections (oldest first,
//! as a load tool's disconnects arrive) and drains every action; building the engine
//! is setup, never measured. Throughput is N, so criterion's time per element is the
//! time per close — it must not grow with N.
//!
//! * `close/100_subscribers`, `close/1k_subscribers`, `close/10k_subscribers`.
//!
//! Run: `cargo bench -p switchboard-engine --bench close`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{Action, Config, ConnId, Engine, InFrame, Input, Millis, UpgradeRequest};

const NOW: Millis = Millis(1_700_000_000_000);

fn config() -> Config {
    Config::from_json(
        r#"{
            "resources": { "bench": { "publish": true } },
            "limits": { "maxConnections": 100000, "maxConnectionsPerIp": 0 },
            "rateLimit": { "enabled": false }
        }"#,
    )
    .expect("bench config is valid")
}

fn feed(engine: &mut Engine, input: Input<'_>) {
    engine.handle(NOW, input).unwrap();
    for action in engine.drain_actions() {
        black_box(&action);
    }
}

/// An engine with `n` connections subscribed to channel `bench` and to resource
/// `bench` with filter `{"room":"a"}`.
fn subscribed_engine(n: u64) -> Engine {
    let mut engine = Engine::new(config()).unwrap();
    for id in 1..=n {
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
        let accepted = engine
            .drain_actions()
            .any(|a| matches!(a, Action::Accept { .. }));
        assert!(accepted, "connection {id} not accepted");
        for text in [
            r#"{"type":"subscribe","channel":"bench"}"#,
            r#"{"type":"subscribe","resource":"bench","filter":{"room":"a"}}"#,
        ] {
            feed(
                &mut engine,
                Input::Frame {
                    conn: ConnId(id),
                    frame: InFrame::Text(text),
                },
            );
        }
    }
    assert_eq!(engine.connection_count(), n as usize);
    let last = engine.snapshot(ConnId(n)).expect("open connection");
    assert_eq!(last.subscriptions.len(), 2, "both subscriptions held");
    engine.check_invariants().unwrap();
    engine
}

fn close(c: &mut Criterion) {
    let mut group = c.benchmark_group("close");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, n) in [
        ("100_subscribers", 100u64),
        ("1k_subscribers", 1_000),
        ("10k_subscribers", 10_000),
    ] {
        group.throughput(Throughput::Elements(n));
        group.bench_function(name, |b| {
            b.iter_batched(
                || subscribed_engine(n),
                |mut engine| {
                    for id in 1..=n {
                        feed(
                            &mut engine,
                            Input::Closed {
                                conn: ConnId(id),
                                code: Some(1000),
                            },
                        );
                    }
                    assert_eq!(engine.connection_count(), 0);
                    // Dropping the emptied engine is not measured.
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, close);
criterion_main!(benches);
