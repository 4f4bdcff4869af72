//! The target-independent core behind the wasm-bindgen `Engine` class.
//!
//! One [`Core::handle`] call = one input = one batch string back (see [`crate::batch`]).
//! With the memory store on, storage calls never leave wasm: they are applied to the
//! engine's reference [`MemoryStore`] and their completions fed back in the same call,
//! so a JavaScript host only ever sees guard calls (and storage calls when it brings
//! its own store, like the Durable Object storage on Cloudflare).

use engine::store::{MemoryStore, RecordStore};
use engine::{
    Action, Command, CompiledConfig, ConnId, ConnectionSnapshot, Engine, HostRequest, HostResult,
    InFrame, Input, Millis, OpId, UpgradeRequest,
};
use serde::Deserialize;

use crate::batch::BatchWriter;

/// An input in JSON, for the generic `handle(now, inputJson)` entry point.
#[derive(Debug, Deserialize)]
#[serde(tag = "input", rename_all = "camelCase")]
pub enum JsonInput {
    /// `Input::Open`.
    Open {
        /// Connection id.
        conn: ConnId,
        /// The upgrade request.
        request: UpgradeRequest,
    },
    /// `Input::Frame` with a text frame.
    Frame {
        /// Connection id.
        conn: ConnId,
        /// Frame text.
        text: String,
    },
    /// `Input::Pong`.
    Pong {
        /// Connection id.
        conn: ConnId,
    },
    /// `Input::Backpressure`.
    Backpressure {
        /// Connection id.
        conn: ConnId,
        /// Queued bytes.
        buffered: u64,
    },
    /// `Input::Closed`.
    Closed {
        /// Connection id.
        conn: ConnId,
        /// Close code received.
        #[serde(default)]
        code: Option<u16>,
    },
    /// `Input::Timeout`.
    Timeout,
    /// `Input::Completed`.
    Completed {
        /// The call.
        op: OpId,
        /// Its result.
        result: HostResult,
    },
    /// `Input::Command`.
    Command {
        /// Correlation tag.
        tag: u64,
        /// The command.
        command: Command,
    },
    /// `Input::Restore`.
    Restore {
        /// Connection id.
        conn: ConnId,
        /// Snapshot taken with `snapshot(conn)`.
        snapshot: Box<ConnectionSnapshot>,
    },
}

/// Convert a JavaScript time (epoch ms as a double) to [`Millis`].
pub fn millis(now: f64) -> Millis {
    if now.is_finite() && now > 0.0 {
        Millis(now as u64)
    } else {
        Millis(0)
    }
}

/// The engine plus the optional in-wasm memory store.
#[derive(Debug)]
pub struct Core {
    engine: Engine,
    store: Option<MemoryStore>,
    /// The batch being built; after an input, the last batch's fan-out recipients
    /// ([`Core::recipients`]).
    writer: BatchWriter,
}

/// A frame given as bytes: text when it is and is valid UTF-8, else binary (which the
/// engine answers like any undecodable frame).
fn frame_of(bytes: &[u8], binary: bool) -> InFrame<'_> {
    match (binary, std::str::from_utf8(bytes)) {
        (false, Ok(text)) => InFrame::Text(text),
        _ => InFrame::Binary(bytes),
    }
}

impl Core {
    /// Parse and validate `config_json` (engine keys only), seed the id generator.
    pub fn new(config_json: &str, seed: u64, memory_store: bool) -> Result<Self, String> {
        // Parsed, checked and compiled once (issue 12): no second validation pass.
        let compiled = CompiledConfig::from_json(config_json).map_err(|e| e.to_string())?;
        let engine = Engine::from_compiled(compiled, seed);
        crate::logs::init();
        Ok(Self {
            engine,
            store: memory_store.then(MemoryStore::new),
            writer: BatchWriter::new(),
        })
    }

    /// Add records to the memory store (a JSON array of records).
    pub fn seed_store(&mut self, resource: &str, records_json: &str) -> Result<(), String> {
        let records: Vec<serde_json::Value> =
            serde_json::from_str(records_json).map_err(|e| format!("bad records: {e}"))?;
        let store = self
            .store
            .as_mut()
            .ok_or("this engine has no memory store (created with memoryStore false)")?;
        store.seed(resource, records);
        Ok(())
    }

    /// The engine (read-only).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for calls that change no connection (stream persistence).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Feed one input and return the batch.
    pub fn handle(&mut self, now: Millis, input: Input<'_>) -> String {
        let misuse = self.engine.handle(now, input).err();
        self.finish(now, misuse.map(|e| e.to_string()))
    }

    /// Feed a text frame given as UTF-8 bytes (no JS string decode); invalid UTF-8
    /// goes in as a binary frame, which the engine answers like any undecodable frame.
    pub fn frame_bytes(&mut self, now: Millis, conn: ConnId, bytes: &[u8], binary: bool) -> String {
        self.handle(
            now,
            Input::Frame {
                conn,
                frame: frame_of(bytes, binary),
            },
        )
    }

    /// Feed an input given as JSON ([`JsonInput`]).
    pub fn handle_json(&mut self, now: Millis, input_json: &str) -> String {
        let input: JsonInput = match serde_json::from_str(input_json) {
            Ok(i) => i,
            Err(e) => return self.finish(now, Some(format!("bad input: {e}"))),
        };
        match input {
            JsonInput::Open { conn, request } => self.handle(now, Input::Open { conn, request }),
            JsonInput::Frame { conn, text } => self.handle(
                now,
                Input::Frame {
                    conn,
                    frame: InFrame::Text(&text),
                },
            ),
            JsonInput::Pong { conn } => self.handle(now, Input::Pong { conn }),
            JsonInput::Backpressure { conn, buffered } => {
                self.handle(now, Input::Backpressure { conn, buffered })
            }
            JsonInput::Closed { conn, code } => self.handle(now, Input::Closed { conn, code }),
            JsonInput::Timeout => self.handle(now, Input::Timeout),
            JsonInput::Completed { op, result } => {
                self.handle(now, Input::Completed { op, result })
            }
            JsonInput::Command { tag, command } => {
                self.handle(now, Input::Command { tag, command })
            }
            JsonInput::Restore { conn, snapshot } => {
                self.handle(now, Input::Restore { conn, snapshot })
            }
        }
    }

    /// Feed one input and finish its batch in place, as a view for JavaScript
    /// ([`BatchWriter::finish_view`]): the address of the view's op buffer.
    pub fn handle_view(&mut self, now: Millis, input: Input<'_>) -> usize {
        let misuse = self.engine.handle(now, input).err();
        let logs = self.drain(now);
        let timeout = self.engine.poll_timeout();
        let error = misuse.map(|e| e.to_string());
        self.writer.finish_view(timeout, error.as_deref(), &logs)
    }

    /// [`Core::frame_bytes`], finished as a view ([`Core::handle_view`]).
    pub fn frame_bytes_view(
        &mut self,
        now: Millis,
        conn: ConnId,
        bytes: &[u8],
        binary: bool,
    ) -> usize {
        self.handle_view(
            now,
            Input::Frame {
                conn,
                frame: frame_of(bytes, binary),
            },
        )
    }

    /// The writer, holding the last batch (its view's parts: [`BatchWriter::view_parts`]).
    pub fn writer(&self) -> &BatchWriter {
        &self.writer
    }

    /// Drain every action (answering storage calls from the memory store, if on) into
    /// one batch.
    pub fn finish(&mut self, now: Millis, error: Option<String>) -> String {
        let logs = self.drain(now);
        let timeout = self.engine.poll_timeout();
        self.writer
            .finish_with_logs(timeout, error.as_deref(), &logs)
    }

    /// Drain every action (answering storage calls from the memory store, if on) into
    /// a cleared writer; returns the engine's log lines.
    fn drain(&mut self, now: Millis) -> Vec<String> {
        let w = &mut self.writer;
        w.clear();
        let mut calls = Vec::new();
        loop {
            for action in self.engine.drain_actions() {
                match action {
                    Action::Call {
                        op,
                        request: HostRequest::Store(request),
                        ..
                    } if self.store.is_some() => calls.push((op, request)),
                    other => w.push(&other),
                }
            }
            if calls.is_empty() {
                break;
            }
            // Store calls are answered in order; their results queue more actions
            // (answers, events), drained by the next round.
            for (op, request) in calls.drain(..) {
                let Some(store) = self.store.as_mut() else {
                    break;
                };
                let result = HostResult::Store(store.apply(&request));
                // A completion for an op the engine just issued cannot be misuse.
                let _ = self.engine.handle(now, Input::Completed { op, result });
            }
        }
        crate::logs::take()
    }

    /// The connection ids the last batch's fan-outs (`OP_SEND_MANY`) go to, in order;
    /// read before the next input.
    pub fn recipients(&self) -> &[f64] {
        self.writer.recipients()
    }

    /// The serializable state of one connection, as JSON.
    pub fn snapshot(&self, conn: ConnId) -> Option<String> {
        self.engine
            .snapshot(conn)
            .and_then(|s| serde_json::to_string(&s).ok())
    }

    /// Restore a connection from `snapshot(conn)`'s JSON.
    pub fn restore(&mut self, now: Millis, conn: ConnId, snapshot_json: &str) -> String {
        match serde_json::from_str::<ConnectionSnapshot>(snapshot_json) {
            Ok(s) => self.handle(
                now,
                Input::Restore {
                    conn,
                    snapshot: Box::new(s),
                },
            ),
            Err(e) => self.finish(now, Some(format!("bad snapshot: {e}"))),
        }
    }
}

/// Apply one storage request to a throw-away [`MemoryStore`] seeded with `records`
/// (the records the host read for it: the one with the request's id, or all of the
/// resource for `list`). Hosts with their own key-value storage (Durable Objects) use
/// this so the store contract (conflicts, merges, filters, pages, cursors) stays in Rust;
/// they then persist what the outcome says (`inserted`/`updated` → put, `deleted` → delete).
pub fn apply_to_records(request_json: &str, records_json: &str) -> Result<String, String> {
    let request: engine::StoreRequest =
        serde_json::from_str(request_json).map_err(|e| format!("bad store request: {e}"))?;
    let records: Vec<serde_json::Value> =
        serde_json::from_str(records_json).map_err(|e| format!("bad records: {e}"))?;
    let resource = match &request {
        engine::StoreRequest::Get { resource, .. }
        | engine::StoreRequest::List { resource, .. }
        | engine::StoreRequest::Insert { resource, .. }
        | engine::StoreRequest::Update { resource, .. }
        | engine::StoreRequest::Delete { resource, .. } => resource.clone(),
    };
    let mut store = MemoryStore::new();
    store.seed(&resource, records);
    let outcome = HostResult::Store(store.apply(&request));
    serde_json::to_string(&outcome).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::decode;
    use serde_json::{json, Value};

    const NOW: Millis = Millis(1_700_000_000_000);

    fn core() -> Core {
        Core::new(
            r#"{"resources":{"messages":{}},"heartbeatInterval":1000,"heartbeatTimeout":500}"#,
            7,
            true,
        )
        .unwrap()
    }

    fn open(c: &mut Core, conn: u64) -> (Value, Vec<String>) {
        let req = json!({"input":"open","conn":conn,"request":{"path":"/","peer":"127.0.0.1","clientId":format!("c{conn}")}});
        decode(&c.handle_json(NOW, &req.to_string()))
    }

    #[test]
    fn open_accepts_and_welcomes_in_one_batch() {
        let mut c = core();
        let (head, frames) = open(&mut c, 1);
        assert_eq!(head["actions"][0]["action"], "accept");
        assert_eq!(head["actions"][1]["action"], "send");
        let welcome: Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!(welcome["type"], "connected");
        assert_eq!(welcome["clientId"], "c1");
        assert_eq!(head["timeout"], NOW.0 + 1000);
    }

    #[test]
    fn memory_store_answers_inside_and_fans_out() {
        let mut c = core();
        open(&mut c, 1);
        open(&mut c, 2);
        let sub = r#"{"type":"subscribe","resource":"messages","requestId":1}"#;
        decode(&c.frame_bytes(NOW, ConnId(2), sub.as_bytes(), false));
        let ins =
            r#"{"type":"insert","resource":"messages","data":{"content":"hi"},"requestId":2}"#;
        let (head, frames) = decode(&c.frame_bytes(NOW, ConnId(1), ins.as_bytes(), false));
        let kinds: Vec<&str> = head["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert!(
            !kinds.contains(&"call"),
            "store calls stay inside: {kinds:?}"
        );
        let types: Vec<String> = frames
            .iter()
            .map(|f| {
                serde_json::from_str::<Value>(f).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(types, vec!["inserted", "event"]);
    }

    #[test]
    fn a_frame_finished_in_memory_is_the_batch_its_string_form_gives() {
        let (mut a, mut b) = (core(), core());
        for c in [&mut a, &mut b] {
            open(c, 1);
            open(c, 2);
        }
        let frames: [(u64, &[u8]); 5] = [
            (2, br#"{"type":"subscribe","resource":"messages","requestId":1}"#),
            // Answered by the memory store inside the call, then fanned out.
            (1, r#"{"type":"insert","resource":"messages","data":{"content":"héllo 👋"},"requestId":2}"#.as_bytes()),
            (1, br#"{"type":"ping","requestId":3}"#),
            (2, &[0xff, 0xfe]),
            (1, b"not json"),
        ];
        for (conn, bytes) in frames {
            let string = a.frame_bytes(NOW, ConnId(conn), bytes, false);
            let at = b.frame_bytes_view(NOW, ConnId(conn), bytes, false);
            let (ops, _, _) = b.writer().view_parts();
            assert_eq!(at, ops.as_ptr() as usize);
            assert_eq!(crate::batch::tests::string_of_view(b.writer()), string);
            assert_eq!(a.recipients(), b.recipients());
        }
    }

    #[test]
    fn snapshot_restore_round_trip() {
        let mut c = core();
        open(&mut c, 1);
        c.frame_bytes(NOW, ConnId(1), br#"{"type":"join","room":"lobby"}"#, false);
        let snap = c.snapshot(ConnId(1)).unwrap();
        let mut d = core();
        let (head, _) = decode(&d.restore(NOW, ConnId(9), &snap));
        assert!(head.get("error").is_none(), "{head}");
        assert_eq!(d.engine().connection_count(), 1);
        let (head, _) = decode(&d.restore(NOW, ConnId(9), &snap));
        assert!(head["error"].as_str().unwrap().contains('9'));
    }

    #[test]
    fn bad_utf8_is_a_binary_frame_and_bad_json_input_reports() {
        let mut c = core();
        open(&mut c, 1);
        let (_, frames) = decode(&c.frame_bytes(NOW, ConnId(1), &[0xff, 0xfe], false));
        assert!(frames[0].contains("INVALID_JSON"), "{frames:?}");
        let (head, _) = decode(&c.handle_json(NOW, "{nope"));
        assert!(head["error"].as_str().unwrap().starts_with("bad input"));
    }

    #[test]
    fn apply_to_records_follows_the_contract() {
        let rec = json!({"id":"a","n":1});
        let out = apply_to_records(
            &json!({"op":"insert","resource":"r","record":rec}).to_string(),
            &json!([rec]).to_string(),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["kind"], "store");
        assert_eq!(v["failed"]["kind"], "conflict");
        let out = apply_to_records(
            &json!({"op":"update","resource":"r","id":"a","patch":{"n":2}}).to_string(),
            &json!([rec]).to_string(),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["updated"]["record"], json!({"id":"a","n":2}));
        // What JS sends back parses as a HostResult.
        let _: HostResult = serde_json::from_str(&out).unwrap();
    }
}
