//! The `frames` fuzz harness: interprets arbitrary bytes as a host session and checks the
//! engine's invariants after every input.
//!
//! Shared by `fuzz_targets/frames.rs` (libFuzzer) and `engine/tests/proptest_engine.rs`
//! (which includes this file with `#[path]`, so the harness is compiled and exercised by
//! `cargo test` even where cargo-fuzz is not installed).
//!
//! Input format: a sequence of records `[op, dt_lo, dt_hi, len, bytes[len]]`; a truncated
//! tail is read with zeros / fewer bytes. `dt` is an `i16` in units of 16 ms (the clock
//! may jump backwards). The low nibble of `op` picks the input, bits 4–6 the connection
//! (0..8):
//!
//! | op & 15 | input |
//! |---|---|
//! | 0 | `Open` (route, token and client id chosen by the bytes) |
//! | 1, 2 | text frame: the bytes, lossily decoded as UTF-8 |
//! | 3 | binary frame: the bytes |
//! | 4, 5 | text frame: a protocol message built from a template and the bytes (every client message type, channel streams included) |
//! | 6 | `Pong` |
//! | 7 | `Timeout` (now) |
//! | 8 | `Timeout` at `poll_timeout()` (the clock jumps there) |
//! | 9 | `Closed` |
//! | 10 | `Backpressure` of `bytes.len() * 64` bytes |
//! | 11 | `Completed` for op `bytes[0]` with a result chosen by `bytes[1]` |
//! | 12 | `Command::ResourceChanged` / `Publish` / `Disconnect` / `Broadcast` |
//! | 13..15 | text frame: the bytes |
//!
//! At the end every connection still open is closed and the engine must be empty:
//! invariants hold, no connection, `connections == disconnections`.

#![allow(dead_code)]

use engine::hostcall::{HostResult, StoreError, StoreErrorKind, StoreOutcome};
use engine::{
    Action, ChangeKind, Command, Config, ConnId, Engine, InFrame, Input, Millis, OpId,
    UpgradeRequest,
};
use serde_json::{json, Value};

/// Start of the fuzzed clock (2023-11-14).
pub const T0: u64 = 1_700_000_000_000;

/// A config with small limits so every limit is reachable from short inputs.
pub fn config() -> Config {
    Config::from_value(json!({
        "routes": [
            {"path": "/"},
            {"path": "/secure", "authRequired": true},
            {"path": "/admin", "scopes": ["admin"]}
        ],
        "auth": {"apiKeys": {
            "key-alice": {"id": "alice", "role": "admin", "scopes": ["admin"]},
            "key-bob": {"id": "bob", "role": "user"}
        }},
        "heartbeatInterval": 1000,
        "heartbeatTimeout": 500,
        "maxPayloadSize": 200,
        "rateLimit": {"enabled": true, "windowMs": 1000, "maxRequests": 8, "closeAfter": 4},
        "limits": {
            "maxConnections": 6,
            "maxConnectionsPerIp": 5,
            "maxConnectionsPerUser": 2,
            "maxSubscriptionsPerConnection": 3,
            "maxRoomsPerConnection": 2,
            "maxPendingCallsPerConnection": 2,
            "maxPendingCalls": 4,
            "hostCallTimeoutMs": 700,
            "maxBufferedBytes": 4096,
            "maxNameLength": 16
        },
        "rooms": {"maxConnections": 3, "maxRooms": 2, "overrides": {"vip": {"maxConnections": 1}}},
        "resources": {
            "messages": {"protected": ["secret"]},
            "users": {"auth": ["admin"], "events": ["update", "delete"]},
            "news": {}
        }
    }))
    .expect("fuzz config is valid")
}

/// A short name from `b` (so names repeat and collide often).
fn name(b: &[u8], i: usize) -> &'static str {
    const NAMES: [&str; 8] = [
        "news",
        "chat",
        "lobby",
        "vip",
        "messages",
        "users",
        "",
        "a-very-long-name-indeed",
    ];
    NAMES[b.get(i).copied().unwrap_or(0) as usize % NAMES.len()]
}

fn template(b: &[u8]) -> String {
    let n1 = name(b, 1);
    let n2 = name(b, 2);
    let k = b.get(3).copied().unwrap_or(0);
    let rid = b.get(4).copied().unwrap_or(0) % 3;
    let rid = match rid {
        0 => String::new(),
        1 => format!(r#","requestId":{k}"#),
        _ => r#","requestId":"r""#.to_string(),
    };
    match b.first().copied().unwrap_or(0) % 20 {
        0 => format!(r#"{{"type":"ping"{rid}}}"#),
        16 => format!(
            r#"{{"type":"subscribe","channel":"{n1}","since":{{"offset":{},"epoch":"{n2}"}}{rid}}}"#,
            k % 4
        ),
        17 => format!(
            r#"{{"type":"history","channel":"{n1}","limit":{},"reverse":{}{rid}}}"#,
            k % 5,
            k.is_multiple_of(2)
        ),
        18 => format!(r#"{{"type":"presence","channel":"{n1}"{rid}}}"#),
        19 => format!(r#"{{"type":"presence:stats","channel":"{n1}"{rid}}}"#),
        1 => format!(
            r#"{{"type":"subscribe","resource":"{n1}","filter":{{"channel":"{n2}"}}{rid}}}"#
        ),
        2 => format!(r#"{{"type":"subscribe","resource":"{n1}"{rid}}}"#),
        3 => format!(r#"{{"type":"subscribe","channel":"{n1}"{rid}}}"#),
        4 => format!(
            r#"{{"type":"unsubscribe","subscriptionId":"sub-{}"{rid}}}"#,
            k % 6
        ),
        5 => format!(r#"{{"type":"unsubscribe","channel":"{n1}"{rid}}}"#),
        6 => format!(r#"{{"type":"publish","channel":"{n1}","message":{k}{rid}}}"#),
        7 => format!(r#"{{"type":"join","room":"{n1}"{rid}}}"#),
        8 => format!(r#"{{"type":"leave","room":"{n1}"{rid}}}"#),
        9 => format!(
            r#"{{"type":"room:message","room":"{n1}","data":{k},"ack":{}{rid}}}"#,
            k.is_multiple_of(2)
        ),
        10 => format!(r#"{{"type":"room:members","room":"{n1}"{rid}}}"#),
        11 => format!(
            r#"{{"type":"direct","to":"c{}","data":1,"ack":true{rid}}}"#,
            k % 8
        ),
        12 => format!(
            r#"{{"type":"get","resource":"{n1}","id":"r{}"{rid}}}"#,
            k % 4
        ),
        13 => format!(
            r#"{{"type":"insert","resource":"{n1}","data":{{"channel":"{n2}","secret":1}}{rid}}}"#
        ),
        14 => format!(
            r#"{{"type":"update","resource":"{n1}","id":"r{}","data":{{"n":{k}}}{rid}}}"#,
            k % 4
        ),
        _ => format!(
            r#"{{"type":"delete","resource":"{n1}","id":"r{}"{rid}}}"#,
            k % 4
        ),
    }
}

fn record(b: &[u8]) -> Value {
    json!({"id": format!("r{}", b.get(2).copied().unwrap_or(0) % 4), "channel": name(b, 3), "secret": 1})
}

fn host_result(b: &[u8]) -> HostResult {
    let outcome = match b.get(1).copied().unwrap_or(0) % 7 {
        0 => StoreOutcome::Record(Some(record(b))),
        1 => StoreOutcome::Record(None),
        2 => StoreOutcome::Page {
            items: vec![record(b)],
            cursor: Some("next".into()),
        },
        3 => StoreOutcome::Inserted(record(b)),
        4 => StoreOutcome::Updated {
            record: record(b),
            previous: record(&b[b.len().min(1)..]),
        },
        5 => StoreOutcome::Deleted {
            previous: record(b),
        },
        _ => StoreOutcome::Failed(StoreError {
            kind: match b.get(2).copied().unwrap_or(0) % 4 {
                0 => StoreErrorKind::NotFound,
                1 => StoreErrorKind::Conflict,
                2 => StoreErrorKind::Unavailable,
                _ => StoreErrorKind::Internal,
            },
            message: "fuzz".into(),
        }),
    };
    HostResult::Store(outcome)
}

fn command(b: &[u8]) -> Command {
    match b.first().copied().unwrap_or(0) % 5 {
        0 => Command::ResourceChanged {
            resource: name(b, 1).into(),
            event: [ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete]
                [b.get(2).copied().unwrap_or(0) as usize % 3],
            record: record(b),
            previous: b
                .len()
                .is_multiple_of(2)
                .then(|| record(&b[b.len().min(1)..])),
        },
        1 => Command::Publish {
            channel: name(b, 1).into(),
            data: Some(json!(b.len())),
            tenant: None,
        },
        2 => Command::Disconnect {
            client_id: format!("c{}", b.get(1).copied().unwrap_or(0) % 8),
            reason: None,
        },
        3 => Command::Broadcast {
            message: json!({"b": b.len()}),
            filter: None,
            tenant: None,
        },
        _ => Command::Clients,
    }
}

fn open_request(conn: u64, b: &[u8]) -> UpgradeRequest {
    let sel = b.first().copied().unwrap_or(0);
    let path = ["/", "/secure", "/admin", "/nope"][sel as usize % 4];
    let query = ["", "token=key-alice", "token=key-bob", "token=bad"][(sel as usize / 4) % 4];
    UpgradeRequest {
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        peer: ["10.0.0.1", "10.0.0.2"][(sel as usize / 16) % 2].into(),
        // Client ids follow connection ids, or are left to the engine.
        client_id: if sel >= 128 {
            String::new()
        } else {
            format!("c{conn}")
        },
    }
}

/// Run one fuzz input. Panics on any engine misbehaviour.
pub fn run(data: &[u8]) {
    let mut engine = Engine::with_seed(config(), 1).expect("valid config");
    let mut now = T0;
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let dt = i16::from_le_bytes([
            tail.first().copied().unwrap_or(0),
            tail.get(1).copied().unwrap_or(0),
        ]);
        let tail = tail.get(2..).unwrap_or(&[]);
        let len = tail.first().copied().unwrap_or(0) as usize;
        let tail = tail.get(1..).unwrap_or(&[]);
        let (bytes, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        now = now.saturating_add_signed(i64::from(dt) * 16);
        let conn = ConnId(u64::from((op >> 4) & 7));
        let text;
        let was_known = engine.snapshot(conn).is_some();
        let input = match op & 15 {
            0 => Input::Open {
                conn,
                request: open_request(conn.0, bytes),
            },
            1 | 2 | 13..=15 => {
                text = String::from_utf8_lossy(bytes).into_owned();
                Input::Frame {
                    conn,
                    frame: InFrame::Text(&text),
                }
            }
            3 => Input::Frame {
                conn,
                frame: InFrame::Binary(bytes),
            },
            4 | 5 => {
                text = template(bytes);
                Input::Frame {
                    conn,
                    frame: InFrame::Text(&text),
                }
            }
            6 => Input::Pong { conn },
            7 => Input::Timeout,
            8 => {
                if let Some(t) = engine.poll_timeout() {
                    now = t.0;
                }
                Input::Timeout
            }
            9 => Input::Closed {
                conn,
                code: Some(1000),
            },
            10 => Input::Backpressure {
                conn,
                buffered: bytes.len() as u64 * 64,
            },
            11 => Input::Completed {
                op: OpId(u64::from(bytes.first().copied().unwrap_or(1) % 16)),
                result: host_result(bytes),
            },
            _ => Input::Command {
                tag: u64::from(op),
                command: command(bytes),
            },
        };
        let is_open = matches!(input, Input::Open { .. });
        let result = engine.handle(Millis(now), input);
        // The only host misuse the harness can commit: opening an id that is open.
        assert_eq!(result.is_err(), is_open && was_known, "handle: {result:?}");
        for action in engine.drain_actions() {
            if let Action::Send { frame, .. } | Action::SendMany { frame, .. } = &action {
                let text = frame.as_text().expect("the JSON codec sends text frames");
                serde_json::from_str::<Value>(text).expect("every frame sent is JSON");
            }
        }
        if let Err(e) = engine.check_invariants() {
            panic!("invariant broken after op {op:#04x}: {e}");
        }
    }
    for c in 0..8 {
        if engine.snapshot(ConnId(c)).is_some() {
            engine
                .handle(
                    Millis(now),
                    Input::Closed {
                        conn: ConnId(c),
                        code: None,
                    },
                )
                .expect("closing a known connection");
        }
    }
    engine.drain_actions().for_each(drop);
    if let Err(e) = engine.check_invariants() {
        panic!("invariant broken after closing everything: {e}");
    }
    assert_eq!(engine.connection_count(), 0);
    let m = engine.metrics();
    assert_eq!(
        m.connections, m.disconnections,
        "every accepted connection ended once"
    );
    assert_eq!(m.current_connections, 0);
}
