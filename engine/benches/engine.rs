//! Engine throughput benchmarks (criterion).
//!
//! Every measured iteration feeds input(s) to the engine **and drains every action it
//! queued** (a real host must), dropping them instead of writing to sockets. Setup —
//! opening connections, subscribing, building owned inputs — is never measured.
//!
//! * `inbound/ping` — one open connection; per iteration one
//!   `{"type":"ping","requestId":1}` text frame → one `pong` Send. Throughput: frames.
//! * `inbound/subscribe_unsubscribe` — per iteration one `subscribe` to resource
//!   `messages` with filter `{"channel":"general"}` and one `unsubscribe` by the
//!   `subscriptionId` it returned. Throughput: pairs (2 frames each).
//! * `inbound/publish` — per iteration one `publish` to channel `chat` that one other
//!   connection subscribes to (→ a `message` to the subscriber and a `published` to the
//!   sender). Throughput: frames.
//! * `fanout/insert_{1k,10k}` — N connections subscribed to resource `messages`, the
//!   even ones with filter `{"channel":"general"}` (indexed bucket), the odd ones
//!   without a filter (unindexed); **every subscriber matches**. Per iteration one
//!   `Command::ResourceChanged` insert of `{"id","channel":"general","text"}`.
//!   Throughput: recipients (N), so criterion's elem/s is recipients/s.
//! * `fanout/publish_10k` — 10k connections subscribed to channel `news`; per iteration
//!   one `Command::Publish`. Throughput: recipients.
//! * `fanout_guarded/insert_10k_{forced,read,read_distinct_users}` — 10k authenticated
//!   connections; one insert every one of them may read. `forced`: a subscribe guard
//!   forced `{tenantId: user.tenantId}` on each subscription; `read`: a `read` guard
//!   (`user != null && record.tenantId == user.tenantId`) checked per recipient, all
//!   connections of one user; `read_distinct_users`: the same with 10k different users.
//!
//! Rate limiting is off and heartbeats use the default interval (30 s); `now` is fixed,
//! so no timer fires during a run.
//!
//! Run: `cargo bench -p switchboard-engine --bench engine` (about 30 s once compiled).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{
    Action, ChangeKind, Command, Config, ConnId, Engine, InFrame, Input, Millis, UpgradeRequest,
};
use serde_json::{json, Value};

const NOW: Millis = Millis(1_700_000_000_000);

fn config() -> Config {
    let cfg = Config::from_json(
        r#"{
            "resources": { "messages": {} },
            "limits": { "maxConnections": 100000, "maxConnectionsPerIp": 0, "maxSubscriptionsPerConnection": 100 },
            "rateLimit": { "enabled": false }
        }"#,
    )
    .expect("bench config is valid");
    assert_eq!(cfg.heartbeat_interval, 30_000, "default heartbeat interval");
    cfg
}

/// Drain and drop every queued action; returns how many there were.
#[inline]
fn drain(engine: &mut Engine) -> usize {
    let mut n = 0;
    for action in engine.drain_actions() {
        black_box(&action);
        n += 1;
    }
    n
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
        .expect("fresh connection id");
    let actions: Vec<Action> = engine.drain_actions().collect();
    assert!(
        matches!(actions.first(), Some(Action::Accept { .. })),
        "connection {id} not accepted: {actions:?}"
    );
}

/// Feed one text frame and return the actions (setup/sanity checks only).
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

fn sent_text(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { frame, .. } | Action::SendMany { frame, .. } => {
                frame.as_text().map(str::to_string)
            }
            _ => None,
        })
        .collect()
}

fn command_result(engine: &mut Engine, command: Command) -> Value {
    engine
        .handle(NOW, Input::Command { tag: 0, command })
        .unwrap();
    let actions: Vec<Action> = engine.drain_actions().collect();
    match actions.last() {
        Some(Action::CommandResult { result: Ok(v), .. }) => v.clone(),
        other => panic!("command failed: {other:?}"),
    }
}

fn inbound(c: &mut Criterion) {
    let mut group = c.benchmark_group("inbound");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3));

    // --- ping ------------------------------------------------------------------------
    {
        let mut engine = Engine::new(config()).unwrap();
        open(&mut engine, 1);
        const PING: &str = r#"{"type":"ping","requestId":1}"#;
        let answer = sent_text(&frame(&mut engine, 1, PING));
        assert_eq!(answer.len(), 1);
        assert!(answer[0].starts_with(r#"{"type":"pong""#), "{answer:?}");
        group.throughput(Throughput::Elements(1));
        group.bench_function("ping", |b| {
            b.iter(|| {
                engine
                    .handle(
                        NOW,
                        Input::Frame {
                            conn: ConnId(1),
                            frame: InFrame::Text(black_box(PING)),
                        },
                    )
                    .unwrap();
                drain(&mut engine)
            })
        });
        engine.check_invariants().unwrap();
    }

    // --- subscribe + unsubscribe -------------------------------------------------------
    {
        let mut engine = Engine::new(config()).unwrap();
        open(&mut engine, 1);
        const SUB: &str = r#"{"type":"subscribe","resource":"messages","filter":{"channel":"general"},"requestId":1}"#;
        let unsub = |n: u64| {
            format!(r#"{{"type":"unsubscribe","subscriptionId":"sub-{n}","requestId":2}}"#)
        };
        // Sanity: subscription ids are `sub-<n>` per connection, counting from 1.
        let a = sent_text(&frame(&mut engine, 1, SUB));
        assert!(a[0].contains(r#""subscriptionId":"sub-1""#), "{a:?}");
        let a = sent_text(&frame(&mut engine, 1, &unsub(1)));
        assert!(a[0].starts_with(r#"{"type":"unsubscribed""#), "{a:?}");
        let mut next_id = 1u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function("subscribe_unsubscribe", |b| {
            b.iter_batched(
                // The unsubscribe frame (with the id the subscribe will get) is built
                // outside the measurement.
                || {
                    next_id += 1;
                    unsub(next_id)
                },
                |unsub_frame| {
                    engine
                        .handle(
                            NOW,
                            Input::Frame {
                                conn: ConnId(1),
                                frame: InFrame::Text(SUB),
                            },
                        )
                        .unwrap();
                    drain(&mut engine);
                    engine
                        .handle(
                            NOW,
                            Input::Frame {
                                conn: ConnId(1),
                                frame: InFrame::Text(&unsub_frame),
                            },
                        )
                        .unwrap();
                    drain(&mut engine)
                },
                BatchSize::SmallInput,
            )
        });
        // Every unsubscribe must have matched: no subscription is left behind.
        engine.check_invariants().unwrap();
        let clients = command_result(&mut engine, Command::Clients);
        assert_eq!(
            clients[0]["subscriptions"],
            json!([]),
            "unsubscribes missed"
        );
    }

    // --- publish to a channel with one other subscriber --------------------------------
    {
        let mut engine = Engine::new(config()).unwrap();
        open(&mut engine, 1);
        open(&mut engine, 2);
        for conn in [1, 2] {
            frame(
                &mut engine,
                conn,
                r#"{"type":"subscribe","channel":"chat"}"#,
            );
        }
        const PUBLISH: &str =
            r#"{"type":"publish","channel":"chat","message":{"text":"hello"},"requestId":1}"#;
        let a = sent_text(&frame(&mut engine, 1, PUBLISH));
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(a[1].contains(r#""delivered":1"#), "{a:?}");
        group.throughput(Throughput::Elements(1));
        group.bench_function("publish", |b| {
            b.iter(|| {
                engine
                    .handle(
                        NOW,
                        Input::Frame {
                            conn: ConnId(1),
                            frame: InFrame::Text(black_box(PUBLISH)),
                        },
                    )
                    .unwrap();
                drain(&mut engine)
            })
        });
    }
    group.finish();
}

/// An engine with `n` connections subscribed to resource `messages` (even connections
/// with filter `{"channel":"general"}`, odd ones without) and to channel `news`.
fn fanout_engine(n: u64) -> Engine {
    let mut engine = Engine::new(config()).unwrap();
    for id in 1..=n {
        open(&mut engine, id);
        let sub = if id % 2 == 0 {
            r#"{"type":"subscribe","resource":"messages","filter":{"channel":"general"}}"#
        } else {
            r#"{"type":"subscribe","resource":"messages"}"#
        };
        let a = sent_text(&frame(&mut engine, id, sub));
        assert!(a[0].starts_with(r#"{"type":"subscribed""#), "{a:?}");
        frame(&mut engine, id, r#"{"type":"subscribe","channel":"news"}"#);
    }
    engine.check_invariants().unwrap();
    engine
}

fn insert_command() -> Command {
    Command::ResourceChanged {
        resource: "messages".into(),
        event: ChangeKind::Insert,
        record: json!({
            "id": "m-1",
            "channel": "general",
            "text": "hello, world",
            "createdAt": "2023-11-14T22:13:20.000Z",
        }),
        previous: None,
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3));

    for (name, n) in [("insert_1k", 1_000u64), ("insert_10k", 10_000)] {
        let mut engine = fanout_engine(n);
        let delivered = command_result(&mut engine, insert_command());
        assert_eq!(
            delivered["delivered"],
            json!(n),
            "every subscriber must match"
        );
        group.throughput(Throughput::Elements(n));
        group.bench_function(name, |b| {
            b.iter_batched(
                insert_command,
                |command| {
                    engine
                        .handle(NOW, Input::Command { tag: 1, command })
                        .unwrap();
                    drain(&mut engine)
                },
                BatchSize::SmallInput,
            )
        });
    }

    {
        let n = 10_000u64;
        let mut engine = fanout_engine(n);
        let publish = || Command::Publish {
            channel: "news".into(),
            data: Some(json!({ "headline": "hello, world" })),
            tenant: None,
        };
        let delivered = command_result(&mut engine, publish());
        assert_eq!(delivered["delivered"], json!(n));
        group.throughput(Throughput::Elements(n));
        group.bench_function("publish_10k", |b| {
            b.iter_batched(
                publish,
                |command| {
                    engine
                        .handle(NOW, Input::Command { tag: 1, command })
                        .unwrap();
                    drain(&mut engine)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// An engine with `n` authenticated connections (tenant t1) subscribed to `resource` of
/// a config with guards: `forced` has a subscribe guard forcing `{tenantId: user.tenantId}`
/// (narrowed once, at subscribe time), `read` has a per-record read guard checked for
/// every recipient of every change. With `distinct_users` every connection is a
/// different user (API key `k<i>`, user `u<i>`), else all are the same user `u1`.
fn guarded_engine(n: u64, resource: &str, distinct_users: bool) -> Engine {
    let key = |id: u64| {
        if distinct_users {
            format!("k{id}")
        } else {
            "k".into()
        }
    };
    let mut keys = serde_json::Map::new();
    for id in 1..=if distinct_users { n } else { 1 } {
        let user = if distinct_users {
            format!("u{id}")
        } else {
            "u1".into()
        };
        keys.insert(
            key(id),
            json!({"id": user, "role": "user", "tenantId": "t1"}),
        );
    }
    let cfg = Config::from_value(json!({
        "heartbeatInterval": 0,
        "auth": {"apiKeys": keys},
        "resources": {
            "forced": {"guards": {"subscribe": "{'tenantId': user.tenantId}"}},
            "read": {"guards": {"read": "user != null && record.tenantId == user.tenantId"}}
        },
        "limits": {"maxConnections": 100000, "maxConnectionsPerIp": 0}
    }))
    .expect("guarded bench config is valid");
    let mut engine = Engine::new(cfg).unwrap();
    for id in 1..=n {
        let request = UpgradeRequest {
            path: "/".into(),
            query: format!("token={}", key(id)),
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
        drain(&mut engine);
        let sub = format!(r#"{{"type":"subscribe","resource":"{resource}"}}"#);
        let a = sent_text(&frame(&mut engine, id, &sub));
        assert!(a[0].starts_with(r#"{"type":"subscribed""#), "{a:?}");
    }
    engine
}

fn guarded_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_guarded");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let n = 10_000u64;
    for (name, resource, distinct_users) in [
        ("forced", "forced", false),
        ("read", "read", false),
        ("read_distinct_users", "read", true),
    ] {
        let mut engine = guarded_engine(n, resource, distinct_users);
        let command = || Command::ResourceChanged {
            resource: resource.into(),
            event: ChangeKind::Insert,
            record: json!({"id": "d1", "tenantId": "t1", "title": "hello"}),
            previous: None,
        };
        let delivered = command_result(&mut engine, command());
        assert_eq!(
            delivered["delivered"],
            json!(n),
            "every subscriber may read it"
        );
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("insert_10k_{name}"), |b| {
            b.iter_batched(
                command,
                |command| {
                    engine
                        .handle(NOW, Input::Command { tag: 1, command })
                        .unwrap();
                    drain(&mut engine)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, inbound, fanout, guarded_fanout);
criterion_main!(benches);
