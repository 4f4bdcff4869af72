//! A scripted, deterministic tour of the Switchboard engine, run in-process.
//!
//! ```text
//! cargo run -p switchboard-engine --example demo
//! ```
//!
//! The example plays the host: it feeds [`Input`]s to one [`Engine`] and prints every
//! input (`>>`) and every resulting [`Action`] (`<<`), with frames shown as the JSON
//! text that would go on the wire. There is no socket, no clock and no randomness:
//! virtual time starts at `1700000000000` (printed as `t+<ms>`), and the run prints the
//! same transcript every time.
//!
//! The script: an upgrade accepted with an API key, the welcome frame, ping/pong, a
//! filtered resource subscription, a server-side `ResourceChanged` fanned out as an
//! event, a channel publish, a room message, a direct message, a rejected upgrade
//! (401), a storage host call (`insert` → `Action::Call` → `Input::Completed`), and a
//! heartbeat ping that goes unanswered until the engine closes with 4000.

use engine::{
    Action, ChangeKind, Command, Config, ConnId, Engine, HostRequest, HostResult, InFrame, Input,
    Millis, OpId, StoreOutcome, StoreRequest, UpgradeRequest,
};
use serde_json::{json, Value};

/// Virtual time zero (epoch milliseconds).
const START: u64 = 1_700_000_000_000;

const CONFIG: &str = r#"{
    "auth": {
        "apiKeys": {
            "key_admin": { "id": "admin1", "role": "admin" },
            "key_user": { "id": "u1", "role": "user" }
        }
    },
    "resources": {
        "messages": {},
        "users": { "protected": ["password"] }
    },
    "heartbeatInterval": 30000,
    "heartbeatTimeout": 10000,
    "rateLimit": { "enabled": true, "maxRequests": 100, "windowMs": 60000 }
}"#;

/// The host side of the demo: the engine, virtual time, and the transcript printer.
struct Host {
    engine: Engine,
    now: Millis,
}

impl Host {
    fn new() -> Self {
        let config = Config::from_json(CONFIG).expect("demo config is valid");
        Self {
            engine: Engine::new(config).expect("demo config is accepted"),
            now: Millis(START),
        }
    }

    fn section(&self, title: &str) {
        println!();
        println!("== {title}");
    }

    /// Feed one input, print it and every action it produced, and return the actions.
    fn feed(&mut self, shown: &str, input: Input<'_>) -> Vec<Action> {
        println!("[t+{}] >> {shown}", self.now.since(Millis(START)));
        self.engine
            .handle(self.now, input)
            .expect("the demo uses the host API correctly");
        let actions: Vec<Action> = self.engine.drain_actions().collect();
        if actions.is_empty() {
            println!("         (no actions)");
        }
        for action in &actions {
            println!("         << {}", describe(action));
        }
        actions
    }

    /// An upgrade request for `/` with the given query string.
    fn open(&mut self, conn: u64, client_id: &str, query: &str) -> Vec<Action> {
        let request = UpgradeRequest {
            path: "/".into(),
            query: query.into(),
            headers: vec![("Host".into(), "localhost:8080".into())],
            peer: "127.0.0.1".into(),
            client_id: client_id.into(),
        };
        let shown = format!("open conn={conn} GET /?{query} (clientId {client_id})");
        self.feed(
            &shown,
            Input::Open {
                conn: ConnId(conn),
                request,
            },
        )
    }

    /// A text frame from a client.
    fn text(&mut self, conn: u64, message: Value) -> Vec<Action> {
        let text = message.to_string();
        let shown = format!("frame conn={conn} {text}");
        self.feed(
            &shown,
            Input::Frame {
                conn: ConnId(conn),
                frame: InFrame::Text(&text),
            },
        )
    }

    /// A server-API command.
    fn command(&mut self, tag: u64, command: Command) -> Vec<Action> {
        let shown = format!("command tag={tag} {}", to_json(&command));
        self.feed(&shown, Input::Command { tag, command })
    }

    /// Advance virtual time to the engine's next deadline and feed `Timeout`.
    fn run_timers(&mut self) -> Vec<Action> {
        let due = self.engine.poll_timeout().expect("a deadline is pending");
        self.now = self.now.max(due);
        self.feed("timeout (poll_timeout() is due)", Input::Timeout)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("engine types serialize to JSON")
}

/// One line per action; frames are shown as their JSON text.
fn describe(action: &Action) -> String {
    let frame_text = |frame: &engine::Frame| {
        frame
            .as_text()
            .map_or_else(|| format!("<{} binary bytes>", frame.len()), str::to_string)
    };
    match action {
        Action::Accept { conn, protocol } => {
            format!("accept conn={} protocol={protocol:?}", conn.0)
        }
        Action::Reject { conn, status, body } => {
            format!("reject conn={} status={status} body={body}", conn.0)
        }
        Action::Send { conn, frame } => format!("send conn={} {}", conn.0, frame_text(frame)),
        Action::SendMany { conns, frame } => {
            let ids: Vec<u64> = conns.iter().map(|c| c.0).collect();
            format!("send conns={ids:?} {}", frame_text(frame))
        }
        Action::Ping { conn } => format!("ping conn={}", conn.0),
        Action::Close { conn, code, reason } => {
            format!("close conn={} code={code} reason={reason:?}", conn.0)
        }
        Action::Call {
            op,
            conn,
            deadline,
            request,
        } => format!(
            "call op={} conn={:?} deadline=t+{} {}",
            op.0,
            conn.map(|c| c.0),
            deadline.since(Millis(START)),
            to_json(request)
        ),
        Action::CommandResult { tag, result } => {
            format!("command result tag={tag} {}", to_json(result))
        }
        Action::Cluster { message } => format!("cluster {}", to_json(message)),
        Action::Respond {
            req, status, body, ..
        } => format!("respond req={req} status={status} {body}"),
    }
}

/// The first `Call` among `actions`: its op id and storage request.
fn find_call(actions: &[Action]) -> (OpId, StoreRequest) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Call {
                op,
                request: HostRequest::Store(req),
                ..
            } => Some((*op, req.clone())),
            _ => None,
        })
        .expect("the engine asked for a storage call")
}

fn main() {
    let mut host = Host::new();
    println!(
        "Switchboard engine demo (virtual time starts at {START} ms; conn 1 = alice, conn 2 = bob)"
    );

    host.section("1. Upgrade with an API key (?token=key_user): accept + welcome frame");
    let actions = host.open(1, "alice", "token=key_user");
    assert!(matches!(actions.first(), Some(Action::Accept { .. })));

    host.section("2. Application ping / pong");
    host.text(1, json!({"type": "ping", "requestId": 1}));

    host.section("3. Subscribe to `messages` with a filter");
    host.text(
        1,
        json!({"type": "subscribe", "resource": "messages", "filter": {"room": "general"}, "requestId": 2}),
    );

    host.section("4. Server-side change (Command::ResourceChanged): fans out as an event");
    host.command(
        1,
        Command::ResourceChanged {
            resource: "messages".into(),
            event: ChangeKind::Insert,
            record: json!({"id": "m1", "room": "general", "text": "hello from the admin API"}),
            previous: None,
        },
    );
    println!("   (a change that does not match alice's filter reaches nobody)");
    host.command(
        2,
        Command::ResourceChanged {
            resource: "messages".into(),
            event: ChangeKind::Insert,
            record: json!({"id": "m2", "room": "random", "text": "elsewhere"}),
            previous: None,
        },
    );

    host.section("5. Channel publish: bob (admin key) subscribes to `news`, alice publishes");
    host.open(2, "bob", "token=key_admin");
    host.text(
        2,
        json!({"type": "subscribe", "channel": "news", "requestId": 1}),
    );
    host.text(
        1,
        json!({"type": "publish", "channel": "news", "message": {"headline": "engine demo"}, "requestId": 3}),
    );

    host.section("6. Rooms: both join `lobby`, alice sends a room:message");
    host.text(1, json!({"type": "join", "room": "lobby", "requestId": 4}));
    host.text(2, json!({"type": "join", "room": "lobby", "requestId": 2}));
    host.text(
        1,
        json!({"type": "room:message", "room": "lobby", "event": "chat", "data": {"text": "hi bob"}, "requestId": 5}),
    );

    host.section("7. Direct message: bob -> alice");
    host.text(
        2,
        json!({"type": "direct", "to": "alice", "data": {"text": "hi alice"}, "ack": true, "requestId": 3}),
    );

    host.section("8. Rejected upgrade: a bad token is answered with HTTP 401 and a JSON body");
    let actions = host.open(3, "mallory", "token=not_a_key");
    assert!(matches!(
        actions.first(),
        Some(Action::Reject { status: 401, .. })
    ));

    host.section(
        "9. Storage host call: insert -> Action::Call -> Input::Completed -> inserted + event",
    );
    let actions = host.text(
        1,
        json!({"type": "insert", "resource": "messages", "data": {"room": "general", "text": "stored by the host"}, "requestId": 6}),
    );
    let (op, request) = find_call(&actions);
    let StoreRequest::Insert { record, .. } = request else {
        panic!("expected an insert call, got {request:?}");
    };
    // A real host writes `record` to its store here; the demo stores it as is.
    let result = HostResult::Store(StoreOutcome::Inserted(record));
    let shown = format!("completed op={} {}", op.0, to_json(&result));
    host.feed(&shown, Input::Completed { op, result });

    host.section(
        "10. Heartbeat: ping at heartbeatInterval, bob answers, alice does not -> close 4000",
    );
    host.run_timers();
    host.feed("pong conn=2", Input::Pong { conn: ConnId(2) });
    let actions = host.run_timers();
    let closed_alice = actions.iter().any(|a| {
        matches!(
            a,
            Action::Close {
                conn: ConnId(1),
                code: 4000,
                ..
            }
        )
    });
    assert!(
        closed_alice,
        "alice is closed with 4000 after the heartbeat timeout"
    );
    host.feed(
        "closed conn=1 (the host executed the close)",
        Input::Closed {
            conn: ConnId(1),
            code: Some(4000),
        },
    );

    println!();
    println!(
        "done: {} connection(s) open, next deadline at t+{}",
        host.engine.connection_count(),
        host.engine.poll_timeout().map_or_else(
            || "none".to_string(),
            |t| t.since(Millis(START)).to_string()
        )
    );
}
