//! Engine.IO long-polling over HTTP: every non-upgrade request on an Engine.IO route
//! goes to the engine ([`engine::Input::Http`]) and its answer
//! ([`engine::Action::Respond`]) is written back, possibly much later (a held `GET`).
//! A request that goes away before its answer is reported
//! ([`engine::Input::HttpAborted`]). Every decision is the engine's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use engine::{ErrorCode, UpgradeRequest};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::sync::oneshot;

use crate::mailbox::{ActorHandle, ToActor};
use crate::response::{json_error, Body};
use crate::state::AppState;

/// Request ids, unique in the process.
static NEXT_REQ: AtomicU64 = AtomicU64::new(1);

/// Reports the request aborted when dropped before its answer arrived (hyper drops
/// the handler's future when the client goes away).
struct Pending {
    req: u64,
    actor: ActorHandle,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.actor.try_send(ToActor::HttpAborted { req: self.req });
        }
    }
}

/// Read at most `limit` bytes of the body (the engine refuses a longer one).
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, hyper::Error> {
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = limit.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
            if buf.len() >= limit {
                break;
            }
        }
    }
    Ok(buf.freeze())
}

/// Answer one long-polling request through the engine.
pub async fn serve(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let max = state.ws.max_payload;
    let body = match read_body(body, max.saturating_add(1)).await {
        Ok(b) => b,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidMessage,
                format!("the request body could not be read: {e}"),
            )
        }
    };
    let request = UpgradeRequest {
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
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
    let id = NEXT_REQ.fetch_add(1, Ordering::Relaxed);
    let (reply, answer) = oneshot::channel();
    let msg = ToActor::Http {
        req: id,
        method: parts.method.as_str().to_string(),
        request,
        body,
        reply,
    };
    let mut pending = Pending {
        req: id,
        actor: state.actor.clone(),
        answered: false,
    };
    if state.actor.send(msg).await.is_err() {
        pending.answered = true;
        return stopping();
    }
    let Ok(a) = answer.await else {
        pending.answered = true;
        return stopping();
    };
    pending.answered = true;
    let mut r = Response::new(Full::new(Bytes::from(a.body)));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in a.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn stopping() -> Response<Body> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "server is stopping",
    )
}
