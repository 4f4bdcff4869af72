//! The HTTP side of the one port: routing, health, readiness, metrics, server info.
//!
//! | request | answer |
//! | --- | --- |
//! | `Upgrade: websocket` on any path | the engine decides (101, or its status + JSON body) |
//! | `GET /healthz` | 200 `{"status":"ok"}` while the process runs |
//! | `GET /readyz` | 200 `{"status":"ready"}`, 503 `{"status":"draining"}` during shutdown, 503 `{"status":"broker-unavailable",...}` while the cluster broker is unreachable, 503 `{"status":"store-unavailable",...}` while the PostgreSQL store is |
//! | `GET /metrics` | Prometheus text exposition |
//! | `/admin/...` | the admin API ([`crate::admin`]) |
//! | `/console...` | the web console ([`crate::console`]) |
//! | `/__switchboard/test/...` | the test control channel ([`crate::testctl`]; 403 unless `SWITCHBOARD_TEST_CONTROL=1`) |
//! | any other request on an Engine.IO route (`/socket.io/`) | Engine.IO long-polling: the engine answers ([`crate::polling`]) |
//! | `GET /` or a non-upgrade `GET` on a WebSocket route | server info JSON |
//! | anything else | 404 `{"code":"NOT_FOUND",...}` |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use engine::endpoint::Endpoint;
use engine::{Command, ErrorCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::state::AppState;

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

/// Answer one HTTP request.
pub async fn serve(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    if crate::ws::is_upgrade(&req) {
        return Ok(crate::ws::upgrade(state, req, peer).await);
    }
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    // The engine decides what a path is (the same on every host).
    let resp = match Endpoint::of(&state.ws_routes, &method, &path) {
        Endpoint::Polling => crate::polling::serve(state, req, peer).await,
        Endpoint::TestControl => crate::testctl::handle(state, req).await,
        Endpoint::Health => json_response(StatusCode::OK, engine::endpoint::HEALTH_BODY),
        Endpoint::Ready => {
            let broker_down = state
                .broker
                .as_ref()
                .filter(|(up, _)| !up.load(Ordering::Acquire))
                .map(|(_, url)| url.as_str());
            let store_down = state
                .store_health
                .as_ref()
                .filter(|h| !h.up.load(Ordering::Acquire))
                .map(|h| h.url.as_str());
            let (status, body) = engine::endpoint::readiness(engine::endpoint::NotReady {
                draining: !state.ready.load(Ordering::Acquire),
                broker_down,
                store_down,
            });
            json_value(
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                &body,
            )
        }
        Endpoint::Metrics => {
            state.actor.sync_metrics().await;
            let mut r = Response::new(Full::new(Bytes::from(state.metrics.render())));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        Endpoint::Admin => crate::admin::handle(state, req).await,
        Endpoint::Console => crate::console::handle(state, req).await,
        Endpoint::ServerInfo => {
            let full = state.public_info || crate::admin::authorized(&state, &req);
            match state.actor.command(Command::ServerInfo).await {
                Some(Ok(info)) if full => json_value(StatusCode::OK, &info),
                // Live counts and resource names are for the operator (issue 11).
                Some(Ok(info)) => json_value(
                    StatusCode::OK,
                    &json!({
                        "name": info["name"],
                        "protocolVersion": info["protocolVersion"],
                        "draining": info["draining"],
                    }),
                ),
                _ => json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "server is stopping",
                ),
            }
        }
        Endpoint::NotFound => json_value(
            StatusCode::NOT_FOUND,
            &engine::endpoint::not_found(&method, &path),
        ),
    };
    Ok(resp)
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
