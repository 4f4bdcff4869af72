//! # Switchboard conformance core
//!
//! The conformance vector format and the one deterministic runner every target shares.
//! A [`Vector`] is a config, a seed, optional seed records and ordered [`Step`]s: an
//! [`StepInput`] at a virtual time plus the exact [`Action`]s the engine must emit and
//! the deadline it must report afterwards.
//!
//! [`run`] plays a vector against a fresh [`Engine`] and records what it did
//! ([`StepOutput`]: every action serialized with serde, the next timeout). The native
//! test runner calls it directly; the wasm guest (`conformance/wasm-guest`) calls
//! [`run_json`] inside WebAssembly, so both targets execute the very same code and
//! their outputs can be compared byte for byte. [`check`] compares recorded outputs
//! with a vector's expectations.
//!
//! This crate has no I/O and builds for `wasm32-unknown-unknown`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use engine::store::{MemoryStore, RecordStore};
use engine::testing::{AnswerOrder, Turn};
use engine::{
    Action, Command, Config, ConnId, Engine, HostRequest, HostResult, InFrame, Input, Millis, OpId,
    UpgradeRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One conformance vector (one `conformance/vectors/<area>/<name>.json` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vector {
    /// Unique name, `<area>/<file stem>`.
    pub name: String,
    /// What the vector shows, in one or two sentences.
    pub description: String,
    /// The engine config (`Config::from_value`).
    pub config: Value,
    /// Seed for the engine's id generator (`Engine::with_seed`).
    pub seed: u64,
    /// Records the memory store starts with, by resource (used with `autoStore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<BTreeMap<String, Vec<Value>>>,
    /// Answer storage host calls from a [`MemoryStore`] right after each step.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_store: bool,
    /// What the vector is meant to show; checked against `expect` by the suite.
    #[serde(default)]
    pub intent: Intent,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Present when the vector can also be played over real sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
    /// Why the vector cannot be played over real sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_process_only: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The spec items a vector declares it exercises. The suite fails a vector whose
/// expectations do not contain every declared error code, server message type, close
/// code and rejection reason, so a wrong recorded output cannot be blessed silently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Intent {
    /// Error codes that must appear (error frames, rejection bodies, command errors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Server message types that must appear in expected frames.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Close codes that must appear in expected `close` actions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closes: Vec<u16>,
    /// Upgrade rejection reasons that must appear in expected `reject` actions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejects: Vec<String>,
    /// Configured limits the vector drives to their edge (see COVERAGE.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
    /// Other behaviours shown (auth variants, filter operators, heartbeat, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// How a vector runs over real sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Live {
    /// The deployment whose config the vector uses: `demo` (`examples/demo.json`, which
    /// any demo server can play) or `vector` (its own `config`: the runner starts a
    /// server per distinct config, with the test control channel).
    pub deployment: String,
    /// How long to wait for each expected frame, in milliseconds.
    #[serde(default = "default_wait")]
    pub wait_ms: u64,
    /// Vectors with `timeout` inputs run on the host's real timers: how far (ms) an
    /// expected frame may arrive before or after its step's virtual time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_ms: Option<u64>,
    /// Hosts the vector cannot run on live, with the reason (e.g. hosts whose
    /// WebSocket cannot send pings, for vectors that expect pings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_on: BTreeMap<String, String>,
}

fn default_wait() -> u64 {
    2000
}

/// One step: an input at a virtual time and what must come out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Virtual time (epoch milliseconds) passed as `now`.
    pub at: u64,
    /// The input.
    pub input: StepInput,
    /// Every action, in order (see README: frame texts are parsed JSON values).
    pub expect: Vec<Value>,
    /// `poll_timeout()` after the step (null: no deadline).
    pub next_timeout: Option<u64>,
}

/// An owned engine input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum StepInput {
    /// `Input::Open`: an upgrade request.
    Open {
        /// Connection id.
        conn: u64,
        /// The request (path, query, headers as `[name, value]` pairs, peer, clientId).
        request: UpgradeRequest,
    },
    /// A text frame, sent verbatim.
    Text {
        /// Connection id.
        conn: u64,
        /// Frame text (need not be valid JSON).
        text: String,
        /// When set, the first `{pad}` in `text` is replaced by this many `x` characters
        /// (keeps oversize-frame vectors small on disk).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pad: Option<usize>,
    },
    /// A text frame holding `message` serialized compactly (keys in the order written).
    Json {
        /// Connection id.
        conn: u64,
        /// The message.
        message: Value,
    },
    /// A binary frame.
    Binary {
        /// Connection id.
        conn: u64,
        /// Frame bytes, standard base64.
        base64: String,
    },
    /// A WebSocket pong.
    Pong {
        /// Connection id.
        conn: u64,
    },
    /// The connection is gone.
    Closed {
        /// Connection id.
        conn: u64,
        /// Close code received, if any.
        #[serde(default)]
        code: Option<u16>,
    },
    /// `Input::Timeout`.
    Timeout,
    /// A host call finished.
    Completed {
        /// The call's op id.
        op: u64,
        /// Its result (`HostResult` JSON).
        result: HostResult,
    },
    /// A server-API command.
    Command {
        /// Correlation tag.
        tag: u64,
        /// The command (`Command` JSON).
        command: Command,
    },
    /// The host's outbound queue size for a connection.
    Backpressure {
        /// Connection id.
        conn: u64,
        /// Bytes queued.
        buffered: u64,
    },
    /// The server loses its memory, as a Cloudflare Durable Object evicted while its
    /// sockets hibernate: a new engine (same config and seed) gets the stream histories
    /// back from durable storage and every open connection back from its snapshot. The
    /// in-process runner does exactly that; live, the Worker does it, and hosts that
    /// are never evicted (a process keeps its memory) carry on unchanged.
    Evict,
}

impl StepInput {
    /// The frame text a text/json input sends (`None` for other inputs).
    pub fn frame_text(&self) -> Option<String> {
        match self {
            StepInput::Text { text, pad, .. } => Some(match pad {
                Some(n) => text.replacen("{pad}", &"x".repeat(*n), 1),
                None => text.clone(),
            }),
            StepInput::Json { message, .. } => Some(compact(message)),
            _ => None,
        }
    }

    /// The connection the input is about, if any.
    pub fn conn(&self) -> Option<u64> {
        match self {
            StepInput::Open { conn, .. }
            | StepInput::Text { conn, .. }
            | StepInput::Json { conn, .. }
            | StepInput::Binary { conn, .. }
            | StepInput::Pong { conn }
            | StepInput::Closed { conn, .. }
            | StepInput::Backpressure { conn, .. } => Some(*conn),
            _ => None,
        }
    }
}

/// What the engine did in one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    /// Every action, serialized with serde (`Action` JSON, frame texts as strings).
    pub actions: Vec<String>,
    /// `poll_timeout()` after the step.
    pub next_timeout: Option<u64>,
    /// The engine refused the input as a host bug (`ApiMisuse`); never expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misuse: Option<String>,
    /// `Engine::check_invariants` failed after the step; never expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariant: Option<String>,
}

/// Compact JSON text of a value (keys in insertion order).
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Play a vector against a fresh engine and record every step's output.
/// Fails only if the vector itself is unusable (bad config, bad base64).
pub fn run(vector: &Vector) -> Result<Vec<StepOutput>, String> {
    let config = Config::from_value(vector.config.clone()).map_err(|e| format!("config: {e}"))?;
    let mut engine = Engine::with_seed(config, vector.seed).map_err(|e| format!("config: {e}"))?;
    let mut store = MemoryStore::new();
    if let Some(seed) = &vector.store {
        for (resource, records) in seed {
            store.seed(resource, records.iter().cloned());
        }
    }
    // Durable storage of the stream histories (what a Durable Object keeps).
    engine.set_persistent_streams(true);
    let mut kv: BTreeMap<String, String> = BTreeMap::new();
    let mut open: Vec<ConnId> = Vec::new();
    let mut outputs = Vec::with_capacity(vector.steps.len());
    for (i, step) in vector.steps.iter().enumerate() {
        let now = Millis(step.at);
        match &step.input {
            StepInput::Open { conn, .. } => open.push(ConnId(*conn)),
            StepInput::Closed { conn, .. } => open.retain(|c| c.0 != *conn),
            _ => {}
        }
        if matches!(step.input, StepInput::Evict) {
            apply_kv(&mut kv, engine.take_stream_ops());
            let snapshots: Vec<_> = open
                .iter()
                .filter_map(|c| engine.snapshot(*c).map(|s| (*c, s)))
                .collect();
            let config =
                Config::from_value(vector.config.clone()).map_err(|e| format!("config: {e}"))?;
            engine = Engine::with_seed(config, vector.seed).map_err(|e| format!("config: {e}"))?;
            engine.set_persistent_streams(true);
            let pairs: Vec<(String, String)> = kv.clone().into_iter().collect();
            let bad = engine.restore_streams(&pairs);
            let mut misuse = (!bad.is_empty()).then(|| format!("unreadable stream keys: {bad:?}"));
            let mut actions = Vec::new();
            for (conn, snapshot) in snapshots {
                let input = Input::Restore {
                    conn,
                    snapshot: Box::new(snapshot),
                };
                play(
                    &mut engine,
                    &mut store,
                    vector.auto_store,
                    now,
                    input,
                    &mut actions,
                    &mut misuse,
                );
            }
            outputs.push(StepOutput {
                actions,
                next_timeout: engine.poll_timeout().map(|m| m.0),
                misuse,
                invariant: engine.check_invariants().err(),
            });
            continue;
        }
        let text = step.input.frame_text();
        let bytes = match &step.input {
            StepInput::Binary { base64, .. } => Some(
                STANDARD
                    .decode(base64.as_bytes())
                    .map_err(|e| format!("step {i}: bad base64: {e}"))?,
            ),
            _ => None,
        };
        let input = match &step.input {
            StepInput::Open { conn, request } => Input::Open {
                conn: ConnId(*conn),
                request: request.clone(),
            },
            StepInput::Text { conn, .. } | StepInput::Json { conn, .. } => Input::Frame {
                conn: ConnId(*conn),
                frame: InFrame::Text(text.as_deref().unwrap_or_default()),
            },
            StepInput::Binary { conn, .. } => Input::Frame {
                conn: ConnId(*conn),
                frame: InFrame::Binary(bytes.as_deref().unwrap_or_default()),
            },
            StepInput::Pong { conn } => Input::Pong {
                conn: ConnId(*conn),
            },
            StepInput::Closed { conn, code } => Input::Closed {
                conn: ConnId(*conn),
                code: *code,
            },
            StepInput::Timeout => Input::Timeout,
            StepInput::Completed { op, result } => Input::Completed {
                op: OpId(*op),
                result: result.clone(),
            },
            StepInput::Command { tag, command } => Input::Command {
                tag: *tag,
                command: command.clone(),
            },
            StepInput::Backpressure { conn, buffered } => Input::Backpressure {
                conn: ConnId(*conn),
                buffered: *buffered,
            },
            // Handled above (a new engine, not one input).
            StepInput::Evict => Input::Timeout,
        };
        let mut actions = Vec::new();
        let mut misuse = None;
        play(
            &mut engine,
            &mut store,
            vector.auto_store,
            now,
            input,
            &mut actions,
            &mut misuse,
        );
        apply_kv(&mut kv, engine.take_stream_ops());
        outputs.push(StepOutput {
            actions,
            next_timeout: engine.poll_timeout().map(|m| m.0),
            misuse,
            invariant: engine.check_invariants().err(),
        });
    }
    Ok(outputs)
}

/// Apply stream storage operations to the runner's durable key/value map.
fn apply_kv(kv: &mut BTreeMap<String, String>, ops: Vec<engine::broker::KvOp>) {
    for op in ops {
        match op {
            engine::broker::KvOp::Put { key, value } => {
                kv.insert(key, value);
            }
            engine::broker::KvOp::Delete { key } => {
                kv.remove(&key);
            }
        }
    }
}

/// Feed one input and record every action it leads to, serialized; with `auto_store`,
/// answer each storage call right away from `store` and record what its completion
/// produced right after the call (depth first: [`AnswerOrder::AfterCall`]). The first API
/// misuse is kept in `misuse`.
fn play(
    engine: &mut Engine,
    store: &mut MemoryStore,
    auto_store: bool,
    now: Millis,
    input: Input<'_>,
    out: &mut Vec<String>,
    misuse: &mut Option<String>,
) {
    let mut turn = Turn::start(engine, now, input, AnswerOrder::AfterCall);
    if let Err(e) = turn.misuse() {
        misuse.get_or_insert_with(|| e.to_string());
    }
    while let Some(action) = turn.next_action() {
        out.push(serde_json::to_string(action).unwrap_or_default());
        let Action::Call {
            op,
            request: HostRequest::Store(request),
            ..
        } = action
        else {
            continue;
        };
        if !auto_store {
            continue;
        }
        let (op, result) = (*op, HostResult::Store(store.apply(request)));
        if let Err(e) = turn.complete(engine, op, result) {
            misuse.get_or_insert_with(|| e.to_string());
        }
    }
}

/// The result document of [`run_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// Outputs per step (absent on error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepOutput>>,
    /// Why the vector could not be run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Parse a vector from JSON text, run it, and return the [`RunResult`] as JSON text.
/// This is the function the wasm guest exports; native runners call it too, so the two
/// outputs are comparable byte for byte.
pub fn run_json(vector_json: &str) -> String {
    let result = match serde_json::from_str::<Vector>(vector_json) {
        Ok(v) => match run(&v) {
            Ok(steps) => RunResult {
                steps: Some(steps),
                error: None,
            },
            Err(e) => RunResult {
                steps: None,
                error: Some(e),
            },
        },
        Err(e) => RunResult {
            steps: None,
            error: Some(format!("vector: {e}")),
        },
    };
    serde_json::to_string(&result).unwrap_or_default()
}

// ------------------------------------------------------------------ expected form

/// Turn one serialized action into its readable expected form: a frame's text (and a
/// rejection's body) becomes the parsed JSON value when it re-serializes to exactly
/// the same bytes; otherwise it is kept as a string under `raw` (frames) / `bodyRaw`.
pub fn to_expected(action_json: &str) -> Value {
    let mut v: Value = match serde_json::from_str(action_json) {
        Ok(v) => v,
        Err(_) => return Value::String(action_json.to_string()),
    };
    if let Some(obj) = v.as_object_mut() {
        if let Some(Value::Object(frame)) = obj.get_mut("frame") {
            if let Some(Value::String(text)) = frame.get("data").cloned() {
                match round_trip(&text) {
                    Some(parsed) => {
                        frame.insert("data".into(), parsed);
                    }
                    None => {
                        frame.remove("data");
                        frame.insert("raw".into(), Value::String(text));
                    }
                }
            }
        }
        if obj.get("action").and_then(Value::as_str) == Some("reject") {
            if let Some(Value::String(body)) = obj.get("body").cloned() {
                if let Some(parsed) = round_trip(&body) {
                    obj.insert("body".into(), parsed);
                } else {
                    obj.remove("body");
                    obj.insert("bodyRaw".into(), Value::String(body));
                }
            }
        }
    }
    v
}

fn round_trip(text: &str) -> Option<Value> {
    let parsed: Value = serde_json::from_str(text).ok()?;
    (compact(&parsed) == text).then_some(parsed)
}

/// Turn an expected action back into the exact JSON text the engine's `Action` would
/// serialize to: frame `data` / rejection `body` values are serialized compactly, `raw`
/// / `bodyRaw` strings are used verbatim, then the whole value goes through `Action`'s
/// serde (which also checks that it is a well-formed action).
pub fn expected_to_actual(expected: &Value) -> Result<String, String> {
    let mut v = expected.clone();
    let obj = v
        .as_object_mut()
        .ok_or_else(|| "an expected action must be an object".to_string())?;
    if let Some(Value::Object(frame)) = obj.get_mut("frame") {
        textify(frame, "data", "raw")?;
    }
    if obj.get("action").and_then(Value::as_str) == Some("reject") {
        textify(obj, "body", "bodyRaw")?;
    }
    let action: Action =
        serde_json::from_value(v).map_err(|e| format!("not a valid action: {e}"))?;
    serde_json::to_string(&action).map_err(|e| e.to_string())
}

fn textify(obj: &mut Map<String, Value>, key: &str, raw_key: &str) -> Result<(), String> {
    match (obj.remove(key), obj.remove(raw_key)) {
        (Some(_), Some(_)) => Err(format!("give either `{key}` or `{raw_key}`, not both")),
        (Some(value), None) => {
            obj.insert(key.into(), Value::String(compact(&value)));
            Ok(())
        }
        (None, Some(Value::String(raw))) => {
            obj.insert(key.into(), Value::String(raw));
            Ok(())
        }
        (None, Some(_)) => Err(format!("`{raw_key}` must be a string")),
        (None, None) => Ok(()),
    }
}

/// One difference between a vector's expectations and what a target did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Step index (0-based).
    pub step: usize,
    /// What differs.
    pub detail: String,
}

/// Compare recorded outputs with a vector's expectations. Empty = pass.
pub fn check(vector: &Vector, outputs: &[StepOutput]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if outputs.len() != vector.steps.len() {
        out.push(Mismatch {
            step: outputs.len().min(vector.steps.len()),
            detail: format!(
                "{} step outputs for {} steps",
                outputs.len(),
                vector.steps.len()
            ),
        });
    }
    for (i, (step, got)) in vector.steps.iter().zip(outputs).enumerate() {
        let mut push = |detail: String| out.push(Mismatch { step: i, detail });
        if let Some(m) = &got.misuse {
            push(format!("engine refused the input as API misuse: {m}"));
        }
        if let Some(m) = &got.invariant {
            push(format!("engine invariant broken: {m}"));
        }
        let want: Vec<Result<String, String>> =
            step.expect.iter().map(expected_to_actual).collect();
        let n = want.len().max(got.actions.len());
        for k in 0..n {
            match (want.get(k), got.actions.get(k)) {
                (Some(Err(e)), _) => push(format!("expected action {k} is malformed: {e}")),
                (Some(Ok(w)), Some(g)) if w == g => {}
                (Some(Ok(w)), Some(g)) => push(format!(
                    "action {k} differs:\n  expected {w}\n  actual   {g}"
                )),
                (Some(Ok(w)), None) => push(format!("action {k} missing: expected {w}")),
                (None, Some(g)) => push(format!("unexpected action {k}: {g}")),
                (None, None) => {}
            }
        }
        if step.next_timeout != got.next_timeout {
            push(format!(
                "nextTimeout: expected {:?}, actual {:?}",
                step.next_timeout, got.next_timeout
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expected_form_round_trips() {
        let a = r#"{"action":"send","conn":1,"frame":{"kind":"text","data":"{\"type\":\"pong\",\"timestamp\":5,\"requestId\":2.0}"}}"#;
        let e = to_expected(a);
        assert_eq!(e["frame"]["data"]["requestId"], json!(2.0));
        assert_eq!(expected_to_actual(&e).unwrap(), a);
        let r = r#"{"action":"reject","conn":1,"status":404,"body":"{\"type\":\"error\"}"}"#;
        let e = to_expected(r);
        assert_eq!(e["body"]["type"], "error");
        assert_eq!(expected_to_actual(&e).unwrap(), r);
    }

    #[test]
    fn non_canonical_text_is_kept_raw() {
        let a = r#"{"action":"send","conn":1,"frame":{"kind":"text","data":"{ \"a\": 1 }"}}"#;
        let e = to_expected(a);
        assert_eq!(e["frame"]["raw"], "{ \"a\": 1 }");
        assert_eq!(expected_to_actual(&e).unwrap(), a);
    }

    #[test]
    fn envelope_key_order_does_not_matter_but_frame_bytes_do() {
        let a = r#"{"action":"send","conn":1,"frame":{"kind":"text","data":"{\"b\":1,\"a\":2}"}}"#;
        let reordered =
            json!({"frame":{"data":{"b":1,"a":2},"kind":"text"},"conn":1,"action":"send"});
        assert_eq!(expected_to_actual(&reordered).unwrap(), a);
        let swapped =
            json!({"action":"send","conn":1,"frame":{"kind":"text","data":{"a":2,"b":1}}});
        assert_ne!(expected_to_actual(&swapped).unwrap(), a);
    }
}
