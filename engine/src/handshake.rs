//! Refusals of a WebSocket handshake that a host's HTTP layer detects before the engine
//! sees the request (a missing `Sec-WebSocket-Key`, another WebSocket version, a method
//! other than GET, a server that is stopping, a runtime that failed the upgrade).
//!
//! The host decides *that* the handshake is refused (its HTTP stack parsed the request);
//! the engine owns *what* the client gets: the status, the error code, the stable `reason`
//! and the message, so every host answers the same body, valid against
//! `protocol-spec/schemas/upgrade-rejection.schema.json` (PROTOCOL.md §3).
//!
//! ```
//! use engine::handshake::HandshakeRefusal;
//! let r = HandshakeRefusal::UnsupportedVersion;
//! assert_eq!(r.status(), 426);
//! assert!(r.body().contains(r#""reason":"unsupported_version""#));
//! assert_eq!(HandshakeRefusal::from_reason("unsupported_version"), Some(r));
//! ```

use serde_json::json;

use crate::error::ErrorCode;

/// A handshake the host refuses before asking the engine (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeRefusal {
    /// 400: the request has no `Sec-WebSocket-Key` header.
    MissingKey,
    /// 426: `Sec-WebSocket-Version` is not 13 (the host also sends
    /// `Sec-WebSocket-Version: 13`, RFC 6455 §4.4).
    UnsupportedVersion,
    /// 405: an upgrade with a method other than GET.
    MethodNotAllowed,
    /// 400: the runtime could not complete an upgrade the engine accepted.
    UpgradeFailed,
    /// 503: the server is stopping (same reason as the engine's draining refusal).
    Stopping,
    /// 500: the deployment could not be loaded (a Worker whose config was refused).
    BadDeployment,
    /// 500: the engine gave no decision for the upgrade (a host bug; never expected).
    NoDecision,
}

impl HandshakeRefusal {
    /// Every refusal, for tests and documentation.
    pub const ALL: [HandshakeRefusal; 7] = [
        HandshakeRefusal::MissingKey,
        HandshakeRefusal::UnsupportedVersion,
        HandshakeRefusal::MethodNotAllowed,
        HandshakeRefusal::UpgradeFailed,
        HandshakeRefusal::Stopping,
        HandshakeRefusal::BadDeployment,
        HandshakeRefusal::NoDecision,
    ];

    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            HandshakeRefusal::MissingKey | HandshakeRefusal::UpgradeFailed => 400,
            HandshakeRefusal::UnsupportedVersion => 426,
            HandshakeRefusal::MethodNotAllowed => 405,
            HandshakeRefusal::Stopping => 503,
            HandshakeRefusal::BadDeployment | HandshakeRefusal::NoDecision => 500,
        }
    }

    /// The error code of the body.
    pub fn code(self) -> ErrorCode {
        match self {
            HandshakeRefusal::MissingKey
            | HandshakeRefusal::UnsupportedVersion
            | HandshakeRefusal::MethodNotAllowed
            | HandshakeRefusal::UpgradeFailed => ErrorCode::InvalidMessage,
            HandshakeRefusal::Stopping => ErrorCode::Unavailable,
            HandshakeRefusal::BadDeployment | HandshakeRefusal::NoDecision => {
                ErrorCode::InternalError
            }
        }
    }

    /// The stable machine-readable reason of the body.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeRefusal::MissingKey => "missing_key",
            HandshakeRefusal::UnsupportedVersion => "unsupported_version",
            HandshakeRefusal::MethodNotAllowed => "method_not_allowed",
            HandshakeRefusal::UpgradeFailed => "upgrade_failed",
            HandshakeRefusal::Stopping => "draining",
            HandshakeRefusal::BadDeployment => "bad_deployment",
            HandshakeRefusal::NoDecision => "no_decision",
        }
    }

    /// The message for humans.
    pub fn message(self) -> &'static str {
        match self {
            HandshakeRefusal::MissingKey => "missing Sec-WebSocket-Key",
            HandshakeRefusal::UnsupportedVersion => "only WebSocket version 13 is supported",
            HandshakeRefusal::MethodNotAllowed => "upgrades must use GET",
            HandshakeRefusal::UpgradeFailed => "the WebSocket upgrade could not be completed",
            HandshakeRefusal::Stopping => "server is stopping",
            HandshakeRefusal::BadDeployment => {
                "the server's deployment config was refused; the details are in the server's log"
            }
            HandshakeRefusal::NoDecision => "the server could not decide on this upgrade",
        }
    }

    /// The JSON body: `{"type":"error","code","reason","message"}`.
    pub fn body(self) -> String {
        json!({
            "type": "error",
            "code": self.code(),
            "reason": self.reason(),
            "message": self.message(),
        })
        .to_string()
    }

    /// The RFC 6455 §4.2.1 checks a host runs on an upgrade request before the engine's
    /// decision: the method (`GET`), `Sec-WebSocket-Key` (present) and
    /// `Sec-WebSocket-Version` (`13`), in that order of precedence: method, key, version.
    /// `None`: the handshake is well-formed.
    pub fn check(method: &str, key: Option<&str>, version: Option<&str>) -> Option<Self> {
        if !method.eq_ignore_ascii_case("GET") {
            return Some(HandshakeRefusal::MethodNotAllowed);
        }
        if key.is_none_or(|k| k.trim().is_empty()) {
            return Some(HandshakeRefusal::MissingKey);
        }
        if version.map(str::trim) != Some("13") {
            return Some(HandshakeRefusal::UnsupportedVersion);
        }
        None
    }

    /// Extra headers the refusal's response carries: `Sec-WebSocket-Version: 13` on 426.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeRefusal::UnsupportedVersion => &[("sec-websocket-version", "13")],
            _ => &[],
        }
    }

    /// The refusal with this `reason` (hosts that name refusals by text, e.g. the JS hosts).
    /// `draining` is [`HandshakeRefusal::Stopping`].
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.reason() == reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_round_trips_through_its_reason() {
        for r in HandshakeRefusal::ALL {
            assert_eq!(HandshakeRefusal::from_reason(r.reason()), Some(r));
            let body: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
            assert_eq!(body["code"], json!(r.code()));
        }
        assert_eq!(HandshakeRefusal::from_reason("nope"), None);
    }

    #[test]
    fn the_handshake_check_refuses_method_then_key_then_version() {
        let check = HandshakeRefusal::check;
        assert_eq!(check("GET", Some("k"), Some("13")), None);
        assert_eq!(check("get", Some("k"), Some(" 13 ")), None);
        assert_eq!(
            check("POST", None, None),
            Some(HandshakeRefusal::MethodNotAllowed)
        );
        assert_eq!(
            check("GET", None, Some("13")),
            Some(HandshakeRefusal::MissingKey)
        );
        assert_eq!(
            check("GET", Some(" "), Some("13")),
            Some(HandshakeRefusal::MissingKey)
        );
        assert_eq!(
            check("GET", Some("k"), Some("8")),
            Some(HandshakeRefusal::UnsupportedVersion)
        );
        assert_eq!(
            check("GET", Some("k"), None),
            Some(HandshakeRefusal::UnsupportedVersion)
        );
        assert_eq!(
            HandshakeRefusal::UnsupportedVersion.headers(),
            &[("sec-websocket-version", "13")]
        );
    }
}
