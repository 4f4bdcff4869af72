//! Error codes, close codes and the engine's own error types.
//!
//! [`ErrorCode`] mirrors the table in `protocol-spec/PROTOCOL.md`; [`close`] holds the
//! WebSocket close codes the engine uses.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Error codes carried by `error` frames and rejected upgrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not valid JSON (or not UTF-8).
    InvalidJson,
    /// The frame is JSON but not a valid message (not an object, missing/ill-typed fields).
    InvalidMessage,
    /// `type` names no message this protocol knows.
    UnknownMessageType,
    /// The named resource is not configured for the socket.
    ResourceNotFound,
    /// The named thing (record, subscription, client, room membership) does not exist.
    NotFound,
    /// Authentication is needed (missing or invalid credentials).
    Unauthorized,
    /// Authenticated, but not allowed.
    Forbidden,
    /// The connection sent too many frames.
    RateLimitExceeded,
    /// The frame is larger than `maxPayloadSize`.
    PayloadTooLarge,
    /// The room has reached its member limit.
    RoomFull,
    /// A configured limit (subscriptions, rooms, connections, pending calls) was reached.
    LimitExceeded,
    /// Data failed validation.
    ValidationError,
    /// A host call (storage, guard) did not finish before its deadline.
    Timeout,
    /// The server is shutting down or cannot take the request now.
    Unavailable,
    /// Something failed on the server; the message never contains internals.
    InternalError,
    /// A `history` read `since` a position the stream's history no longer covers (or
    /// another epoch): read without `since` and start over.
    UnrecoverablePosition,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownMessageType,
        ErrorCode::ResourceNotFound,
        ErrorCode::NotFound,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimitExceeded,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RoomFull,
        ErrorCode::LimitExceeded,
        ErrorCode::ValidationError,
        ErrorCode::Timeout,
        ErrorCode::Unavailable,
        ErrorCode::InternalError,
        ErrorCode::UnrecoverablePosition,
    ];

    /// The wire spelling, e.g. `RATE_LIMIT_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::InvalidMessage => "INVALID_MESSAGE",
            ErrorCode::UnknownMessageType => "UNKNOWN_MESSAGE_TYPE",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RoomFull => "ROOM_FULL",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::UnrecoverablePosition => "UNRECOVERABLE_POSITION",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes used by the engine.
pub mod close {
    /// Normal closure (the client's own close; the engine itself never sends it).
    pub const NORMAL: u16 = 1000;
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error: a WebSocket framing violation (reserved bits without an
    /// extension, an unmasked client frame, an unknown opcode, an oversized or
    /// fragmented control frame). Sent by hosts; the engine never sees such frames.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Invalid frame payload data: a text frame that is not UTF-8. Sent by hosts.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation: repeated rate-limit abuse.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame exceeded `maxPayloadSize`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Slow consumer: the client could not keep up with its outbound traffic.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No pong (or any frame) within `heartbeatTimeout` after a ping.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// Disconnected through the server API (admin).
    pub const DISCONNECTED_BY_SERVER: u16 = 4001;
    /// The connection's token expired (`exp` + `leewaySeconds`) without a `refresh`.
    pub const TOKEN_EXPIRED: u16 = 4401;
}

/// One problem in a config: where and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigIssue {
    /// Field path, e.g. `limits.maxConnections` or `routes[0].path` (empty: the document).
    pub path: String,
    /// What is wrong, phrased so the fix is clear.
    pub problem: String,
}

/// A rejected config: every problem found, each with its field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    /// The problems, in the order found.
    pub issues: Vec<ConfigIssue>,
}

impl ConfigError {
    /// A config error with one issue.
    pub fn single(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            issues: vec![ConfigIssue {
                path: path.into(),
                problem: problem.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if issue.path.is_empty() {
                write!(f, "{}", issue.problem)?;
            } else {
                write!(f, "{}: {}", issue.path, issue.problem)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A host used the engine API wrongly (a bug in the host, never caused by a client).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// `Open` for a connection id that is already open.
    DuplicateConnection(u64),
    /// Restoring a snapshot whose format version this engine does not read.
    SnapshotVersion(u32),
}

impl fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiMisuse::DuplicateConnection(c) => {
                write!(
                    f,
                    "connection {c} is already open; connection ids must be unique"
                )
            }
            ApiMisuse::SnapshotVersion(v) => {
                write!(f, "snapshot format version {v} is not supported")
            }
        }
    }
}

impl std::error::Error for ApiMisuse {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn config_error_display_lists_paths() {
        let e = ConfigError {
            issues: vec![
                ConfigIssue {
                    path: "a.b".into(),
                    problem: "bad".into(),
                },
                ConfigIssue {
                    path: String::new(),
                    problem: "worse".into(),
                },
            ],
        };
        assert_eq!(e.to_string(), "a.b: bad; worse");
    }
}
