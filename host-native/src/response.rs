//! HTTP response helpers shared by every endpoint ([`crate::http`] routes to them:
//! [`crate::admin`], [`crate::console`], [`crate::polling`], [`crate::testctl`],
//! [`crate::ws`]): the body type, JSON answers, the engine's error bodies and the
//! status that fits an engine error code.
//!
//! A leaf module: it knows the engine's [`ErrorCode`] vocabulary and hyper, nothing of
//! the server.

use bytes::Bytes;
use engine::ErrorCode;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

/// Response body type of every handler.
pub type Body = Full<Bytes>;

/// A JSON response from serialized text.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON response from a value.
pub fn json_value(status: StatusCode, value: &Value) -> Response<Body> {
    json_response(status, value.to_string())
}

/// A JSON error: `{"code": "...", "message": "..."}` (codes from the protocol's table).
pub fn json_error(
    status: StatusCode,
    code: ErrorCode,
    message: impl Into<String>,
) -> Response<Body> {
    json_value(
        status,
        &json!({ "code": code.as_str(), "message": message.into() }),
    )
}

/// The HTTP status that fits an engine error code.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound | ErrorCode::ResourceNotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimitExceeded | ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        // The history no longer covers the position asked for: gone for good.
        ErrorCode::UnrecoverablePosition => StatusCode::GONE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// At most `max` bytes of `s` (on a char boundary).
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
