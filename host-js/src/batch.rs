//! The batch: everything one input produced, encoded as ONE string for JavaScript, or
//! left in wasm memory for it to read (below).
//!
//! ```text
//! [timeout,op,args...,op,args...]\n{"actions":[...],"error":"..","logs":[..]}\n<frame 0><frame 1>...
//! ```
//!
//! Three parts, so that the hot path (a reply, a fan-out, a heartbeat ping) costs
//! JavaScript one `JSON.parse` of a flat array of numbers and no object per action:
//!
//! 1. **Ops line**: a JSON array of numbers. The first is the engine's next deadline
//!    (epoch ms) or `-1` for none; then the actions in order, each an op code and its
//!    arguments ([`OP_SEND`], [`OP_SEND_MANY`], [`OP_PING`], [`OP_OTHER`]). A fan-out's
//!    recipients are not in the string: they are the batch's *recipients*, one
//!    `Float64Array` for all its fan-outs in order (`Engine.recipients()`), which JS
//!    reads without parsing (a `JSON.parse` of 1 000 ids cost 9–13 µs).
//! 2. **Extra line**: empty, or a JSON object with `actions` (every action that is not a
//!    text send or a ping, in order: one per [`OP_OTHER`]), `error` (only when the host
//!    misused the API: unknown snapshot version, duplicate connection id, ...) and `logs`
//!    (only when the engine logged something: `["WARN key source ...", ...]`). The
//!    actions are exactly as the engine serializes [`engine::Action`] (`accept`,
//!    `reject`, `close`, `call`, `commandResult`, `respond`); binary sends (which no codec
//!    emits today) are `{"action":"send","conn":1,"binary":"<base64>"}` /
//!    `{"action":"sendMany","conns":[..],"binary":".."}`.
//! 3. **Frame texts**, back to back, unescaped. A send carries the start and end of its
//!    frame in **UTF-16 code units** relative to the first character after the second
//!    newline, so JavaScript takes it with `batch.slice(base + s, base + e)` — V8, JSC and
//!    workerd make that a cheap sliced string, not a copy; the frame text is never
//!    JSON-escaped or parsed. A fan-out carries its frame once.
//!
//! serde_json never emits a raw newline, so the two first lines are found with
//! `indexOf("\n")`.
//!
//! **The same batch in wasm memory** ([`BatchWriter::finish_view`]), for the input every
//! frame is: no string is built, returned or parsed. The writer's op buffer is an array
//! of `f64` that starts with a header of [`VIEW_HEADER`] numbers:
//!
//! ```text
//! [count, timeout|-1, extra ptr, extra len, body ptr, body len, op, args..., ...]
//! ```
//!
//! `count` is the number of op numbers after the header (the ops line without its first
//! number); the extra line and the frame texts stay in the writer's buffers, as UTF-8
//! bytes at the given addresses (an empty extra line has length 0). JavaScript reads the
//! header and the ops with a `Float64Array`, decodes the frame texts with one
//! `TextDecoder` call and slices them by the same UTF-16 offsets. It must read
//! everything before its next call into the module: the next input reuses the buffers,
//! and a grown memory moves them.

use engine::{Action, Frame, Millis};
use serde::Serialize;

/// `OP_SEND, conn, start, end`: one text frame to one connection.
pub const OP_SEND: u8 = 1;
/// `OP_SEND_MANY, n, start, end`: one text frame to the next n recipients.
pub const OP_SEND_MANY: u8 = 2;
/// `OP_PING, conn`: send a WebSocket ping.
pub const OP_PING: u8 = 3;
/// `OP_OTHER`: the next action of the extra line's `actions`.
pub const OP_OTHER: u8 = 4;

/// Numbers before the ops in a batch view ([`BatchWriter::finish_view`]).
pub const VIEW_HEADER: usize = 6;

/// Builds one batch (a string, or a view in wasm memory). The host keeps one writer and
/// [`BatchWriter::clear`]s it before each input, so its buffers are allocated once, not
/// per input.
#[derive(Debug)]
pub struct BatchWriter {
    /// [`VIEW_HEADER`] numbers (filled by [`BatchWriter::finish_view`]), then the ops.
    ops: Vec<f64>,
    extra: Vec<u8>,
    /// Whether the extra line was closed (a batch is finished once; finishing it again
    /// gives the same batch).
    extra_closed: bool,
    body: String,
    body_utf16: usize,
    actions: usize,
    others: usize,
    recipients: Vec<f64>,
}

impl Default for BatchWriter {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Serialize)]
struct BinarySend<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conns: Option<&'a [engine::ConnId]>,
    binary: String,
}

impl BatchWriter {
    /// An empty batch.
    pub fn new() -> Self {
        let mut ops = Vec::with_capacity(16);
        ops.resize(VIEW_HEADER, 0.0);
        Self {
            ops,
            extra: Vec::new(),
            extra_closed: false,
            body: String::new(),
            body_utf16: 0,
            actions: 0,
            others: 0,
            recipients: Vec::new(),
        }
    }

    /// Start the next batch: forget the last one (its recipients included), keeping the
    /// buffers' capacity up to [`BatchWriter::KEEP`] bytes each; a larger buffer (a big
    /// frame or fan-out) is given back.
    pub fn clear(&mut self) {
        fn reuse<T>(buf: &mut Vec<T>) {
            if buf.capacity() * std::mem::size_of::<T>() > BatchWriter::KEEP {
                *buf = Vec::new();
            }
            buf.clear();
        }
        fn reuse_text(buf: &mut String) {
            if buf.capacity() > BatchWriter::KEEP {
                *buf = String::new();
            }
            buf.clear();
        }
        reuse(&mut self.ops);
        self.ops.resize(VIEW_HEADER, 0.0);
        reuse(&mut self.extra);
        reuse_text(&mut self.body);
        reuse(&mut self.recipients);
        self.body_utf16 = 0;
        self.extra_closed = false;
        self.actions = 0;
        self.others = 0;
    }

    /// The most a buffer keeps between batches, in bytes.
    pub const KEEP: usize = 64 * 1024;

    /// The connection ids of this batch's fan-outs (`OP_SEND_MANY`, in order).
    pub fn recipients(&self) -> &[f64] {
        &self.recipients
    }

    /// Number of actions pushed so far.
    pub fn len(&self) -> usize {
        self.actions
    }

    /// Whether no action was pushed.
    pub fn is_empty(&self) -> bool {
        self.actions == 0
    }

    /// One op number: op codes, connection ids, counts and UTF-16 offsets, all far
    /// below 2^53, so exact as `f64`.
    fn num(&mut self, n: u64) {
        self.ops.push(n as f64);
    }

    /// Append a frame's text to the body; pushes its start and end to the ops line.
    fn text(&mut self, text: &str) {
        let start = self.body_utf16;
        let units = if text.is_ascii() {
            text.len()
        } else {
            text.encode_utf16().count()
        };
        self.body.push_str(text);
        self.body_utf16 += units;
        self.num(start as u64);
        self.num((start + units) as u64);
    }

    fn other(&mut self, action: &impl Serialize) {
        self.extra.extend_from_slice(if self.others == 0 {
            b"{\"actions\":["
        } else {
            b","
        });
        self.others += 1;
        // Serializing engine actions (string keys, finite numbers) into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.extra, action);
        self.num(u64::from(OP_OTHER));
    }

    /// Append one action.
    pub fn push(&mut self, action: &Action) {
        self.actions += 1;
        match action {
            Action::Send {
                conn,
                frame: Frame::Text(t),
            } => {
                self.num(u64::from(OP_SEND));
                self.num(conn.0);
                self.text(t);
            }
            Action::SendMany {
                conns,
                frame: Frame::Text(t),
            } => {
                self.num(u64::from(OP_SEND_MANY));
                self.num(conns.len() as u64);
                self.text(t);
                // Connection ids are JS numbers (the hosts count them from 1).
                self.recipients.extend(conns.iter().map(|c| c.0 as f64));
            }
            Action::Send {
                conn,
                frame: Frame::Binary(b),
            } => self.other(&BinarySend {
                action: "send",
                conn: Some(conn.0),
                conns: None,
                binary: base64(b),
            }),
            Action::SendMany {
                conns,
                frame: Frame::Binary(b),
            } => self.other(&BinarySend {
                action: "sendMany",
                conn: None,
                conns: Some(conns),
                binary: base64(b),
            }),
            Action::Ping { conn } => {
                self.num(u64::from(OP_PING));
                self.num(conn.0);
            }
            other => self.other(other),
        }
    }

    /// Finish: the ops line, the extra line, then the frame texts.
    pub fn finish(mut self, timeout: Option<Millis>, error: Option<&str>) -> String {
        self.finish_with_logs(timeout, error, &[])
    }

    /// The batch string, with the engine's log lines (`"logs"`, when any); the
    /// recipients stay readable ([`BatchWriter::recipients`]) until the next
    /// [`BatchWriter::clear`].
    pub fn finish_with_logs(
        &mut self,
        timeout: Option<Millis>,
        error: Option<&str>,
        logs: &[String],
    ) -> String {
        self.close_extra(error, logs);
        let ops = &self.ops[VIEW_HEADER..];
        let mut out =
            String::with_capacity(ops.len() * 6 + self.extra.len() + self.body.len() + 24);
        out.push('[');
        match timeout {
            Some(t) => out.push_str(itoa::Buffer::new().format(t.0)),
            None => out.push_str("-1"),
        }
        for &n in ops {
            out.push(',');
            out.push_str(itoa::Buffer::new().format(n as u64));
        }
        out.push_str("]\n");
        // JSON written by serde_json: valid UTF-8.
        out.push_str(std::str::from_utf8(&self.extra).unwrap_or_default());
        out.push('\n');
        out.push_str(&self.body);
        out
    }

    /// Finish the batch in place, as a view for JavaScript (module docs: "The same
    /// batch in wasm memory"): fills the header and returns the address of the op
    /// buffer. The addresses in the header are meaningful in wasm32 only; Rust code
    /// reads the parts with [`BatchWriter::view_parts`].
    pub fn finish_view(
        &mut self,
        timeout: Option<Millis>,
        error: Option<&str>,
        logs: &[String],
    ) -> usize {
        self.close_extra(error, logs);
        // Addresses and lengths in wasm32 are below 2^32: exact as f64.
        let header = [
            (self.ops.len() - VIEW_HEADER) as f64,
            timeout.map_or(-1.0, |t| t.0 as f64),
            self.extra.as_ptr() as usize as f64,
            self.extra.len() as f64,
            self.body.as_ptr() as usize as f64,
            self.body.len() as f64,
        ];
        self.ops[..VIEW_HEADER].copy_from_slice(&header);
        self.ops.as_ptr() as usize
    }

    /// The parts of a finished view: the header and ops, the extra line, the frame
    /// texts (what JavaScript reads at the header's addresses).
    pub fn view_parts(&self) -> (&[f64], &[u8], &str) {
        (&self.ops, &self.extra, &self.body)
    }

    /// Close the extra line: `]`, the error and the logs (when any).
    fn close_extra(&mut self, error: Option<&str>, logs: &[String]) {
        if std::mem::replace(&mut self.extra_closed, true) {
            return;
        }
        if self.others == 0 && (error.is_some() || !logs.is_empty()) {
            self.extra.extend_from_slice(b"{\"actions\":[");
        }
        if !self.extra.is_empty() {
            self.extra.push(b']');
            if let Some(e) = error {
                self.extra.extend_from_slice(b",\"error\":");
                let _ = serde_json::to_writer(&mut self.extra, e);
            }
            if !logs.is_empty() {
                self.extra.extend_from_slice(b",\"logs\":");
                let _ = serde_json::to_writer(&mut self.extra, logs);
            }
            self.extra.push(b'}');
        }
    }
}

/// Standard base64 with padding (binary frames only; none are produced today).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use engine::ConnId;
    use serde_json::{json, Value};

    /// Decode a batch the way the JS side does (offsets in UTF-16 units), into a view
    /// with one object per action (`{"action":"send","conn":1,"frame":0}`, frames
    /// numbered in order), `timeout` (null for none), `error` and `logs`.
    pub(crate) fn decode(batch: &str) -> (Value, Vec<String>) {
        decode_with(batch, &[])
    }

    /// [`decode`] with the batch's recipients (`sendMany` gets its `conns`).
    pub(crate) fn decode_with(batch: &str, recipients: &[f64]) -> (Value, Vec<String>) {
        let mut next = 0;
        let (ops, rest) = batch.split_once('\n').expect("ops line");
        let (extra, body) = rest.split_once('\n').expect("extra line");
        let ops: Vec<u64> = {
            let v: Vec<f64> =
                serde_json::from_str(ops).expect("ops line is a JSON array of numbers");
            v.into_iter().map(|n| n.max(0.0) as u64).collect()
        };
        let extra: Value = if extra.is_empty() {
            json!({})
        } else {
            serde_json::from_str(extra).expect("extra line is JSON")
        };
        let units: Vec<u16> = body.encode_utf16().collect();
        let slice = |s: u64, e: u64| String::from_utf16(&units[s as usize..e as usize]).unwrap();
        let timeout = batch.starts_with("[-1");
        let mut actions = Vec::new();
        let mut frames = Vec::new();
        let mut others = extra["actions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter();
        let mut i = 1;
        while i < ops.len() {
            match ops[i] as u8 {
                OP_SEND => {
                    actions.push(json!({"action":"send","conn":ops[i + 1],"frame":frames.len()}));
                    frames.push(slice(ops[i + 2], ops[i + 3]));
                    i += 4;
                }
                OP_SEND_MANY => {
                    let n = ops[i + 1] as usize;
                    let conns: Vec<u64> = recipients
                        .get(next..next + n)
                        .unwrap_or_default()
                        .iter()
                        .map(|c| *c as u64)
                        .collect();
                    next += n;
                    actions.push(
                        json!({"action":"sendMany","n":n,"conns":conns,"frame":frames.len()}),
                    );
                    frames.push(slice(ops[i + 2], ops[i + 3]));
                    i += 4;
                }
                OP_PING => {
                    actions.push(json!({"action":"ping","conn":ops[i + 1]}));
                    i += 2;
                }
                OP_OTHER => {
                    actions.push(others.next().expect("an extra action per OP_OTHER"));
                    i += 1;
                }
                op => panic!("unknown op {op} in {batch}"),
            }
        }
        assert!(others.next().is_none(), "every extra action has its op");
        let mut head = json!({
            "actions": actions,
            "timeout": if timeout { Value::Null } else { json!(ops[0]) },
        });
        for k in ["error", "logs"] {
            if let Some(v) = extra.get(k) {
                head[k] = v.clone();
            }
        }
        (head, frames)
    }

    /// A send with text outside ASCII, a fan-out, a ping and a close.
    fn push_sample_actions(w: &mut BatchWriter) {
        w.push(&Action::Send {
            conn: ConnId(1),
            frame: Frame::Text("héllo 👋\n\"x\"".into()),
        });
        w.push(&Action::SendMany {
            conns: vec![ConnId(2), ConnId(3)],
            frame: Frame::Text("plain".into()),
        });
        w.push(&Action::Ping { conn: ConnId(2) });
        w.push(&Action::Close {
            conn: ConnId(3),
            code: 4000,
            reason: "bye".into(),
        });
    }

    #[test]
    fn frames_are_sliced_by_utf16_offsets() {
        let mut w = BatchWriter::new();
        push_sample_actions(&mut w);
        let out = w.finish_with_logs(Some(Millis(42)), None, &[]);
        let recipients = w.recipients().to_vec();
        assert_eq!(recipients, vec![2.0, 3.0]);
        let (head, frames) = decode_with(&out, &recipients);
        assert_eq!(frames, vec!["héllo 👋\n\"x\"".to_string(), "plain".into()]);
        assert_eq!(head["actions"][0]["action"], "send");
        assert_eq!(head["actions"][1]["conns"], json!([2, 3]));
        assert_eq!(head["actions"][1]["frame"], 1);
        assert_eq!(head["actions"][2], json!({"action":"ping","conn":2}));
        assert_eq!(head["actions"][3]["action"], "close");
        assert_eq!(head["timeout"], 42);
        assert!(head.get("error").is_none());
    }

    /// The batch string a view stands for, rebuilt from its parts.
    pub(crate) fn string_of_view(w: &BatchWriter) -> String {
        let (ops, extra, body) = w.view_parts();
        let (header, ops) = ops.split_at(VIEW_HEADER);
        assert_eq!(header[0] as usize, ops.len(), "count");
        assert_eq!(header[2] as usize, extra.as_ptr() as usize, "extra address");
        assert_eq!(header[4] as usize, body.as_ptr() as usize, "body address");
        assert_eq!(header[3] as usize, extra.len(), "extra length");
        assert_eq!(header[5] as usize, body.len(), "body length");
        let mut numbers = vec![header[1] as i64];
        numbers.extend(ops.iter().map(|&n| n as i64));
        format!(
            "{}\n{}\n{body}",
            serde_json::to_string(&numbers).unwrap(),
            std::str::from_utf8(extra).unwrap()
        )
    }

    #[test]
    fn a_view_holds_the_same_batch_as_the_string() {
        let logs = ["WARN a log line".to_string()];
        let cases: [(Option<Millis>, Option<&str>, &[String]); 3] = [
            (Some(Millis(1_700_000_030_000)), None, &[]),
            (None, Some("bad"), &logs),
            (Some(Millis(5)), None, &logs),
        ];
        for (timeout, error, logs) in cases {
            let (mut a, mut b) = (BatchWriter::new(), BatchWriter::new());
            push_sample_actions(&mut a);
            push_sample_actions(&mut b);
            let string = a.finish_with_logs(timeout, error, logs);
            let at = b.finish_view(timeout, error, logs);
            assert_eq!(at, b.view_parts().0.as_ptr() as usize);
            assert_eq!(string_of_view(&b), string);
            assert_eq!(a.recipients(), b.recipients());
        }
        // Finished twice, a batch is the same batch.
        let mut w = BatchWriter::default();
        push_sample_actions(&mut w);
        let once = w.finish_with_logs(None, Some("bad"), &logs);
        assert_eq!(w.finish_with_logs(None, Some("bad"), &logs), once);
        w.finish_view(None, Some("bad"), &logs);
        assert_eq!(string_of_view(&w), once);
        // An empty batch: no extra line, no frames.
        let mut w = BatchWriter::new();
        w.finish_view(None, None, &[]);
        assert_eq!(string_of_view(&w), "[-1]\n\n");
        // A cleared writer's view starts again after the header.
        w.clear();
        w.push(&Action::Ping { conn: ConnId(9) });
        w.finish_view(Some(Millis(7)), None, &[]);
        assert_eq!(string_of_view(&w), "[7,3,9]\n\n");
    }

    #[test]
    fn a_reply_is_numbers_and_its_text() {
        let mut w = BatchWriter::new();
        w.push(&Action::Send {
            conn: ConnId(7),
            frame: Frame::Text(r#"{"type":"pong"}"#.into()),
        });
        assert_eq!(
            w.finish(Some(Millis(1_700_000_030_000)), None),
            "[1700000030000,1,7,0,15]\n\n{\"type\":\"pong\"}"
        );
    }

    #[test]
    fn empty_batch_and_error() {
        let out = BatchWriter::new().finish(None, Some("bad"));
        assert_eq!(out, "[-1]\n{\"actions\":[],\"error\":\"bad\"}\n");
        let (head, frames) = decode(&out);
        assert_eq!(head["error"], "bad");
        assert!(head["timeout"].is_null() && frames.is_empty());
    }

    #[test]
    fn binary_frames_are_base64() {
        let mut w = BatchWriter::new();
        w.push(&Action::Send {
            conn: ConnId(1),
            frame: Frame::Binary(vec![0u8, 1, 2, 255].into()),
        });
        let (head, frames) = decode(&w.finish(None, None));
        assert!(frames.is_empty());
        assert_eq!(head["actions"][0]["binary"], "AAEC/w==");
    }

    #[test]
    fn a_cleared_writer_starts_an_empty_batch_and_gives_back_large_buffers() {
        let mut w = BatchWriter::new();
        w.push(&Action::SendMany {
            conns: vec![ConnId(2), ConnId(3)],
            frame: Frame::Text("x".repeat(BatchWriter::KEEP + 1).into()),
        });
        w.push(&Action::Close {
            conn: ConnId(3),
            code: 4000,
            reason: "bye".into(),
        });
        let first = w.finish_with_logs(None, None, &[]);
        assert!(first.len() > BatchWriter::KEEP);
        w.clear();
        assert!(w.is_empty() && w.recipients().is_empty());
        assert!(w.body.capacity() <= BatchWriter::KEEP);
        w.push(&Action::Send {
            conn: ConnId(7),
            frame: Frame::Text(r#"{"type":"pong"}"#.into()),
        });
        assert_eq!(
            w.finish_with_logs(Some(Millis(5)), None, &[]),
            "[5,1,7,0,15]\n\n{\"type\":\"pong\"}"
        );
    }
}
