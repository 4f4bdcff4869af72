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
use serde_json::json;

use crate::state::AppState;

// The response helpers live in [`crate::response`] (every endpoint uses them; the router
// depends on the endpoints, not the other way round). Re-exported so their old paths
// keep working.
pub use crate::response::{json_error, json_response, json_value, status_for, truncate, Body};

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
