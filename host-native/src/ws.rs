//! WebSocket upgrades and the per-connection task.
//!
//! The upgrade request goes to the engine as `Input::Open`; the engine's `Accept`
//! becomes a `101 Switching Protocols` (with `Sec-WebSocket-Protocol` when it picked
//! one), its `Reject` the HTTP status and JSON body it chose. After the 101 the
//! upgraded socket goes to the [`crate::transport`], which refuses an oversize frame
//! from its header before it is buffered (close 1009).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use engine::handshake::HandshakeRefusal;
use engine::{ConnId, UpgradeRequest};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::mailbox::{OpenOutcome, ToActor};
use crate::outbound::Outbound;
use crate::response::{json_response, Body};
use crate::state::AppState;

// The close grace is the transport's ([`crate::transport::CLOSE_GRACE`]); re-exported
// so its old path keeps working.
pub use crate::transport::CLOSE_GRACE;

/// Whether a request asks for a WebSocket upgrade.
pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

/// The response to a handshake refused before the engine decides (the engine owns the
/// status, body and headers).
fn refuse(r: HandshakeRefusal) -> Response<Body> {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, r.body());
    for (name, value) in r.headers() {
        resp.headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    resp
}

/// Answer an upgrade request: ask the engine, then switch protocols or refuse.
pub async fn upgrade(
    state: Arc<AppState>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let headers = req.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(r) = HandshakeRefusal::check(
        req.method().as_str(),
        text("sec-websocket-key"),
        text("sec-websocket-version"),
    ) {
        return refuse(r);
    }
    let Some(key) = headers.get("sec-websocket-key").cloned() else {
        return refuse(HandshakeRefusal::MissingKey);
    };
    let conn = ConnId(state.next_conn.fetch_add(1, Ordering::Relaxed));
    let request = UpgradeRequest {
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        peer: peer.ip().to_string(),
        client_id: crate::ids::client_id(),
    };
    let out = Outbound::new(
        state.ws.outbound_queue,
        state.ws.max_buffered,
        state.ws.write_batch,
    );
    let out = Arc::new(
        if engine::routes::serves_engine_io(&state.ws_routes, &request.path) {
            out.spaced()
        } else {
            out
        },
    );
    let (reply, answer) = oneshot::channel();
    let open = ToActor::Open {
        conn,
        request,
        out: out.clone(),
        reply,
    };
    if state.actor.send(open).await.is_err() {
        return refuse(HandshakeRefusal::Stopping);
    }
    match answer.await {
        Err(_) => refuse(HandshakeRefusal::Stopping),
        Ok(OpenOutcome::Reject { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            json_response(status, body)
        }
        Ok(OpenOutcome::Accept { protocol }) => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let task_state = state.clone();
            state.ws_tasks.spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let io = crate::transport::unwrap(upgraded);
                        crate::transport::serve(task_state, conn, io, out).await
                    }
                    Err(_) => {
                        let _ = task_state
                            .actor
                            .send(ToActor::Closed { conn, code: None })
                            .await;
                    }
                }
            });
            let mut resp = Response::new(Body::default());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
                h.insert("sec-websocket-accept", v);
            }
            if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
                h.insert("sec-websocket-protocol", p);
            }
            resp
        }
    }
}
