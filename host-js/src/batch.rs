//! The batch: everything one input produced, encoded as ONE string for JavaScript.
//!
//! ```text
//! {"actions":[...],"frames":[s0,e0,s1,e1,...],"timeout":1700000030000}\n<frame 0><frame 1>...
//! ```
//!
//! The first line is a small JSON header (serde_json never emits a raw newline). Frame
//! texts follow the newline back to back, unescaped; `frames` holds their start/end
//! offsets in **UTF-16 code units** relative to the first character after the newline,
//! so JavaScript takes each one with `batch.slice(base + s, base + e)` — V8, JSC and
//! workerd make that a cheap sliced string, not a copy, and the frame text is never
//! JSON-escaped or parsed. A fan-out (`sendMany`) carries its frame once.
//!
//! Actions in the header:
//! - `{"action":"send","conn":1,"frame":0}` / `{"action":"sendMany","conns":[1,2],"frame":0}`
//!   (binary frames, which no codec emits today, carry `"binary":"<base64>"` instead of `frame`);
//! - every other action exactly as the engine serializes [`engine::Action`]
//!   (`accept`, `reject`, `ping`, `close`, `call`, `commandResult`).
//!
//! `timeout` is the engine's next deadline (epoch ms) or `null`; `error` appears only when
//! the host misused the API (unknown snapshot version, duplicate connection id, ...);
//! `logs` only when the engine logged something (`["WARN key source ...", ...]`).

use engine::{Action, Frame, Millis};
use serde::Serialize;

/// Builds one batch string.
#[derive(Debug, Default)]
pub struct BatchWriter {
    header: Vec<u8>,
    frames: Vec<usize>,
    body: String,
    body_utf16: usize,
    actions: usize,
}

#[derive(Serialize)]
struct Sends<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conns: Option<&'a [engine::ConnId]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<String>,
}

impl BatchWriter {
    /// An empty batch.
    pub fn new() -> Self {
        let mut header = Vec::with_capacity(256);
        header.extend_from_slice(b"{\"actions\":[");
        Self {
            header,
            ..Self::default()
        }
    }

    /// Number of actions pushed so far.
    pub fn len(&self) -> usize {
        self.actions
    }

    /// Whether no action was pushed.
    pub fn is_empty(&self) -> bool {
        self.actions == 0
    }

    fn comma(&mut self) {
        if self.actions > 0 {
            self.header.push(b',');
        }
        self.actions += 1;
    }

    /// Append a frame's text to the body; returns its index.
    fn text(&mut self, text: &str) -> usize {
        let start = self.body_utf16;
        let units = if text.is_ascii() {
            text.len()
        } else {
            text.encode_utf16().count()
        };
        self.body.push_str(text);
        self.body_utf16 += units;
        self.frames.push(start);
        self.frames.push(start + units);
        self.frames.len() / 2 - 1
    }

    fn sends(&mut self, conn: Option<u64>, conns: Option<&[engine::ConnId]>, frame: &Frame) {
        let (index, binary) = match frame {
            Frame::Text(t) => (Some(self.text(t)), None),
            Frame::Binary(b) => (None, Some(base64(b))),
        };
        let s = Sends {
            action: if conns.is_some() { "sendMany" } else { "send" },
            conn,
            conns,
            frame: index,
            binary,
        };
        self.comma();
        // Serializing plain numbers, strings and slices into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.header, &s);
    }

    /// Append one action.
    pub fn push(&mut self, action: &Action) {
        match action {
            Action::Send { conn, frame } => self.sends(Some(conn.0), None, frame),
            Action::SendMany { conns, frame } => self.sends(None, Some(conns), frame),
            other => {
                self.comma();
                let _ = serde_json::to_writer(&mut self.header, other);
            }
        }
    }

    /// Finish: the header line, a newline, then the frame texts.
    pub fn finish(self, timeout: Option<Millis>, error: Option<&str>) -> String {
        self.finish_with_logs(timeout, error, &[])
    }

    /// [`BatchWriter::finish`] with the engine's log lines (`"logs"`, when any).
    pub fn finish_with_logs(
        mut self,
        timeout: Option<Millis>,
        error: Option<&str>,
        logs: &[String],
    ) -> String {
        self.header.extend_from_slice(b"],\"frames\":");
        let _ = serde_json::to_writer(&mut self.header, &self.frames);
        self.header.extend_from_slice(b",\"timeout\":");
        match timeout {
            Some(t) => {
                let _ = serde_json::to_writer(&mut self.header, &t.0);
            }
            None => self.header.extend_from_slice(b"null"),
        }
        if let Some(e) = error {
            self.header.extend_from_slice(b",\"error\":");
            let _ = serde_json::to_writer(&mut self.header, e);
        }
        if !logs.is_empty() {
            self.header.extend_from_slice(b",\"logs\":");
            let _ = serde_json::to_writer(&mut self.header, logs);
        }
        self.header.extend_from_slice(b"}\n");
        // The header is JSON written by serde_json: valid UTF-8.
        let mut out = String::from_utf8(self.header).unwrap_or_default();
        out.reserve(self.body.len());
        out.push_str(&self.body);
        out
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
    use serde_json::Value;

    /// Decode a batch the way the JS side does (offsets in UTF-16 units).
    pub(crate) fn decode(batch: &str) -> (Value, Vec<String>) {
        let (head, body) = batch.split_once('\n').expect("header line");
        let head: Value = serde_json::from_str(head).expect("header is JSON");
        let units: Vec<u16> = body.encode_utf16().collect();
        let f = head["frames"].as_array().unwrap();
        let frames = f
            .chunks(2)
            .map(|p| {
                let (s, e) = (
                    p[0].as_u64().unwrap() as usize,
                    p[1].as_u64().unwrap() as usize,
                );
                String::from_utf16(&units[s..e]).unwrap()
            })
            .collect();
        (head, frames)
    }

    #[test]
    fn frames_are_sliced_by_utf16_offsets() {
        let mut w = BatchWriter::new();
        w.push(&Action::Send {
            conn: ConnId(1),
            frame: Frame::Text("héllo 👋\n\"x\"".into()),
        });
        w.push(&Action::SendMany {
            conns: vec![ConnId(2), ConnId(3)],
            frame: Frame::Text("plain".into()),
        });
        w.push(&Action::Ping { conn: ConnId(2) });
        let out = w.finish(Some(Millis(42)), None);
        let (head, frames) = decode(&out);
        assert_eq!(frames, vec!["héllo 👋\n\"x\"".to_string(), "plain".into()]);
        assert_eq!(head["actions"][0]["action"], "send");
        assert_eq!(head["actions"][1]["conns"], serde_json::json!([2, 3]));
        assert_eq!(head["actions"][1]["frame"], 1);
        assert_eq!(
            head["actions"][2],
            serde_json::json!({"action":"ping","conn":2})
        );
        assert_eq!(head["timeout"], 42);
        assert!(head.get("error").is_none());
    }

    #[test]
    fn empty_batch_and_error() {
        let out = BatchWriter::new().finish(None, Some("bad"));
        assert_eq!(
            out,
            "{\"actions\":[],\"frames\":[],\"timeout\":null,\"error\":\"bad\"}\n"
        );
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
}
