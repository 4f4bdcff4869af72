//! What a vector exercises, read from its inputs and expectations, and the check that
//! its declared [`Intent`] is really shown by its expectations.
//!
//! The check is what keeps recorded vectors honest: a scenario declares "this must end
//! in `LIMIT_EXCEEDED`" or "this must close with 1009", and a vector whose expected
//! actions do not contain that fails the suite, whatever the engine did when the vector
//! was recorded.

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use conformance_core::{StepInput, Vector};
use engine::Command;
use serde_json::Value;

/// Spec items observed in one vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Error codes in error frames, rejection bodies and command errors.
    pub errors: BTreeSet<String>,
    /// `type` of every expected protocol frame.
    pub types: BTreeSet<String>,
    /// Codes of expected `close` actions.
    pub closes: BTreeSet<u16>,
    /// Codes the client closed with (`closed` inputs).
    pub client_closes: BTreeSet<u16>,
    /// Reasons of expected rejections.
    pub rejects: BTreeSet<String>,
    /// `type` of every frame the clients send (parsed from text/json/binary inputs).
    pub client_types: BTreeSet<String>,
    /// Server-API commands used (`command` of command inputs).
    pub commands: BTreeSet<String>,
    /// Expected action kinds (`send`, `sendMany`, `call`, ...).
    pub actions: BTreeSet<String>,
}

/// Whether a command pushes application JSON verbatim (its frames are not protocol
/// messages, so their `type` must not count as a server message type).
fn pushes_verbatim(input: &StepInput) -> bool {
    matches!(
        input,
        StepInput::Command {
            command: Command::Broadcast { .. }
                | Command::SendTo { .. }
                | Command::BroadcastToResource { .. },
            ..
        }
    )
}

/// The text of a frame input, decoded if binary.
pub fn input_text(input: &StepInput) -> Option<String> {
    match input {
        StepInput::Binary { base64, .. } => STANDARD
            .decode(base64.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        other => other.frame_text(),
    }
}

/// Collect what a vector exercises.
pub fn observe(v: &Vector) -> Observed {
    let mut o = Observed::default();
    for step in &v.steps {
        if let Some(text) = input_text(&step.input) {
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&text) {
                if let Some(Value::String(t)) = m.get("type") {
                    o.client_types.insert(t.clone());
                } else if let Some(Value::String(e)) = m.get("event") {
                    // `{event, data}` envelope routes: the event is the type.
                    o.client_types.insert(format!("envelope:{e}"));
                }
            }
        }
        match &step.input {
            StepInput::Closed { code: Some(c), .. } => {
                o.client_closes.insert(*c);
            }
            StepInput::Command { command, .. } => {
                if let Ok(Value::Object(m)) = serde_json::to_value(command) {
                    if let Some(Value::String(c)) = m.get("command") {
                        o.commands.insert(c.clone());
                    }
                }
            }
            _ => {}
        }
        let verbatim = pushes_verbatim(&step.input);
        for a in &step.expect {
            let kind = a["action"].as_str().unwrap_or_default();
            o.actions.insert(kind.to_string());
            match kind {
                "send" | "sendMany" if !verbatim => {
                    let data = &a["frame"]["data"];
                    if let Some(t) = data["type"].as_str() {
                        o.types.insert(t.to_string());
                        if t == "error" {
                            if let Some(c) = data["code"].as_str() {
                                o.errors.insert(c.to_string());
                            }
                        }
                    } else if let Some(e) = data["event"].as_str() {
                        // An `{event, data}` envelope: recorded as `envelope:<event>`.
                        o.types.insert(format!("envelope:{e}"));
                        if e == "error" {
                            if let Some(c) = data["data"]["code"].as_str() {
                                o.errors.insert(c.to_string());
                            }
                        }
                    }
                }
                "reject" => {
                    if let Some(c) = a["body"]["code"].as_str() {
                        o.errors.insert(c.to_string());
                    }
                    if let Some(r) = a["body"]["reason"].as_str() {
                        o.rejects.insert(r.to_string());
                    }
                }
                "close" => {
                    if let Some(c) = a["code"].as_u64() {
                        o.closes.insert(c as u16);
                    }
                }
                "commandResult" => {
                    if let Some(c) = a["result"]["Err"]["code"].as_str() {
                        o.errors.insert(c.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    o
}

/// A configured limit: its config path and the outcome that shows it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSpec {
    /// Name used in `intent.limits` (the config key, or a fixed limit's name).
    pub name: &'static str,
    /// JSON pointer into the vector's config that must be set (None: fixed limit).
    pub config_pointer: Option<&'static str>,
    /// What the vector's expectations must contain when the limit is reached.
    pub signature: Signature,
    /// Human description for COVERAGE.md.
    pub what: &'static str,
}

/// Evidence that a limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// An error code (frame, rejection or command error).
    Error(&'static str),
    /// A rejection reason.
    Reject(&'static str),
    /// A close code.
    Close(u16),
    /// An expected action kind (e.g. a clamped `call`).
    Action(&'static str),
}

/// Every limit of the spec (§15, plus the fixed ones) the suite must drive to its edge.
pub const LIMITS: &[LimitSpec] = &[
    LimitSpec {
        name: "maxPayloadSize",
        config_pointer: Some("/maxPayloadSize"),
        signature: Signature::Error("PAYLOAD_TOO_LARGE"),
        what: "largest inbound frame (error + close 1009)",
    },
    LimitSpec {
        name: "rateLimit.maxRequests",
        config_pointer: Some("/rateLimit/maxRequests"),
        signature: Signature::Error("RATE_LIMIT_EXCEEDED"),
        what: "token bucket per connection",
    },
    LimitSpec {
        name: "rateLimit.closeAfter",
        config_pointer: Some("/rateLimit"),
        signature: Signature::Close(1008),
        what: "consecutive refusals before close 1008",
    },
    LimitSpec {
        name: "limits.maxConnections",
        config_pointer: Some("/limits/maxConnections"),
        signature: Signature::Reject("too_many_connections"),
        what: "open connections in total (503)",
    },
    LimitSpec {
        name: "limits.maxConnectionsPerIp",
        config_pointer: Some("/limits/maxConnectionsPerIp"),
        signature: Signature::Reject("too_many_connections_from_ip"),
        what: "connections per peer IP (429)",
    },
    LimitSpec {
        name: "limits.maxConnectionsPerUser",
        config_pointer: Some("/limits/maxConnectionsPerUser"),
        signature: Signature::Reject("too_many_connections_for_user"),
        what: "connections per user (429)",
    },
    LimitSpec {
        name: "limits.maxSubscriptionsPerConnection",
        config_pointer: Some("/limits/maxSubscriptionsPerConnection"),
        signature: Signature::Error("LIMIT_EXCEEDED"),
        what: "resource + channel subscriptions per connection",
    },
    LimitSpec {
        name: "limits.maxRoomsPerConnection",
        config_pointer: Some("/limits/maxRoomsPerConnection"),
        signature: Signature::Error("LIMIT_EXCEEDED"),
        what: "rooms one connection may be in",
    },
    LimitSpec {
        name: "rooms.maxConnections",
        config_pointer: Some("/rooms/maxConnections"),
        signature: Signature::Error("ROOM_FULL"),
        what: "members per room (room size)",
    },
    LimitSpec {
        name: "rooms.overrides",
        config_pointer: Some("/rooms/overrides"),
        signature: Signature::Error("ROOM_FULL"),
        what: "per-room member limit",
    },
    LimitSpec {
        name: "rooms.maxRooms",
        config_pointer: Some("/rooms/maxRooms"),
        signature: Signature::Error("LIMIT_EXCEEDED"),
        what: "rooms in total",
    },
    LimitSpec {
        name: "limits.maxPendingCallsPerConnection",
        config_pointer: Some("/limits/maxPendingCallsPerConnection"),
        signature: Signature::Error("LIMIT_EXCEEDED"),
        what: "host calls in flight per connection",
    },
    LimitSpec {
        name: "limits.maxPendingCalls",
        config_pointer: Some("/limits/maxPendingCalls"),
        signature: Signature::Error("UNAVAILABLE"),
        what: "host calls in flight in total",
    },
    LimitSpec {
        name: "limits.hostCallTimeoutMs",
        config_pointer: Some("/limits/hostCallTimeoutMs"),
        signature: Signature::Error("TIMEOUT"),
        what: "deadline of a host call",
    },
    LimitSpec {
        name: "limits.maxBufferedBytes",
        config_pointer: Some("/limits/maxBufferedBytes"),
        signature: Signature::Close(1013),
        what: "outbound queue before the slow-consumer policy (close 1013)",
    },
    LimitSpec {
        name: "limits.maxNameLength",
        config_pointer: Some("/limits/maxNameLength"),
        signature: Signature::Error("INVALID_MESSAGE"),
        what: "longest channel / room name",
    },
    LimitSpec {
        name: "resources.maxListLimit",
        config_pointer: None,
        signature: Signature::Action("call"),
        what: "largest list page (larger limits are clamped)",
    },
    LimitSpec {
        name: "heartbeatTimeout",
        config_pointer: Some("/heartbeatTimeout"),
        signature: Signature::Close(4000),
        what: "time to answer a ping (close 4000)",
    },
    LimitSpec {
        name: "filter.maxConditions",
        config_pointer: None,
        signature: Signature::Error("INVALID_MESSAGE"),
        what: "at most 64 conditions per filter (fixed)",
    },
    LimitSpec {
        name: "insert.maxIdLength",
        config_pointer: None,
        signature: Signature::Error("VALIDATION_ERROR"),
        what: "an inserted id is at most 256 bytes (fixed)",
    },
];

/// Problems with a vector's declared intent (empty = fine).
pub fn check_intent(v: &Vector) -> Vec<String> {
    let o = observe(v);
    let mut problems = Vec::new();
    let i = &v.intent;
    for e in &i.errors {
        if !o.errors.contains(e) {
            problems.push(format!(
                "intent: error code {e} does not appear in `expect`"
            ));
        }
    }
    for t in &i.types {
        if !o.types.contains(t) {
            problems.push(format!(
                "intent: server message `{t}` does not appear in `expect`"
            ));
        }
    }
    for c in &i.closes {
        if !o.closes.contains(c) && !o.client_closes.contains(c) {
            problems.push(format!("intent: close code {c} does not appear"));
        }
    }
    for r in &i.rejects {
        if !o.rejects.contains(r) {
            problems.push(format!("intent: rejection reason `{r}` does not appear"));
        }
    }
    for l in &i.limits {
        let Some(spec) = LIMITS.iter().find(|s| s.name == l) else {
            problems.push(format!("intent: unknown limit `{l}`"));
            continue;
        };
        if let Some(ptr) = spec.config_pointer {
            if v.config.pointer(ptr).is_none() {
                problems.push(format!(
                    "intent: limit `{l}` is not set in the config ({ptr})"
                ));
            }
        }
        let shown = match spec.signature {
            Signature::Error(c) => o.errors.contains(c),
            Signature::Reject(r) => o.rejects.contains(r),
            Signature::Close(c) => o.closes.contains(&c),
            Signature::Action(a) => o.actions.contains(a),
        };
        if !shown {
            problems.push(format!(
                "intent: limit `{l}` declared but its outcome {:?} does not appear",
                spec.signature
            ));
        }
    }
    for f in &i.features {
        if let Some(op) = f.strip_prefix("filter:$") {
            let needle = format!("\"${op}\"");
            let used = v.steps.iter().any(|s| {
                input_text(&s.input).is_some_and(|t| t.contains(&needle))
                    || serde_json::to_string(&s.input).is_ok_and(|t| t.contains(&needle))
            });
            if !used {
                problems.push(format!("intent: feature `{f}` but no input uses `${op}`"));
            }
        }
    }
    problems
}
