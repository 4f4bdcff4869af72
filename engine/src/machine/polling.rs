//! Engine.IO v4 HTTP long-polling and the polling → WebSocket upgrade, sans-IO.
//!
//! A polling session is a connection without a socket: the engine gives it a
//! [`ConnId`] of its own (at or above [`POLL_CONN_BASE`], never the host's), keeps its
//! outbound packets in a queue, and answers the host's HTTP requests
//! ([`crate::Input::Http`]) with [`crate::Action::Respond`]: at once, or later for a held
//! `GET` (released when packets are queued, by the heartbeat's ping, on close, or on an
//! upgrade). After the upgrade (`2probe` → `3probe`, `5` over a WebSocket opened with
//! `sid`), the WebSocket carries the same session: the engine rewrites the session's
//! actions to the socket's id and the socket's inputs to the session's.
//!
//! Everything is decided in [`Engine::route_polls`], which runs at the end of every
//! input: actions addressed to a polling session never reach the host.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustc_hash::FxHashMap;
use serde_json::json;

use super::{Action, Engine, Input};
use crate::error::close;
use crate::protocol::{Frame, InFrame};
use crate::timers::TimerKey;
use crate::types::{ConnId, Millis, UpgradeRequest};

/// Polling sessions get connection ids from here up (below 2^53, exact in JavaScript).
pub const POLL_CONN_BASE: u64 = 1 << 52;

/// How long a `GET` that arrives during an upgrade is held before its noop (Engine.IO
/// checks every 100 ms): the `5` that completes the upgrade usually comes first, and
/// then the `GET` is refused as for an upgraded session.
const UPGRADE_NOOP_MS: u64 = 100;

/// Engine.IO packet separator in a polling payload.
const SEPARATOR: char = '\x1e';

/// Every polling session of the engine.
#[derive(Debug, Default)]
pub(crate) struct Polls {
    sessions: FxHashMap<ConnId, PollSession>,
    /// WebSocket (probing or upgraded) → its session.
    by_ws: FxHashMap<ConnId, ConnId>,
    /// Held `GET` request → its session.
    by_get: FxHashMap<u64, ConnId>,
    /// Sessions whose queue grew during this input, or that hold a `GET` and queued
    /// packets while host calls for them are in flight.
    dirty: Vec<ConnId>,
    next: u64,
    /// WebSockets accepted only to be closed (a second upgrade of a session).
    refused: rustc_hash::FxHashSet<ConnId>,
    /// Sessions the client closed (`1`) while no `GET` was held: the `GET` racing the
    /// close still gets its noop (as in Engine.IO) until the deadline. Bounded.
    lingering: Vec<(String, Millis)>,
    /// A polling handshake is being decided (its query names `transport=polling`).
    pub(crate) opening: bool,
}

#[derive(Debug, Default)]
struct PollSession {
    /// Packets waiting for a `GET`.
    queue: Vec<Frame>,
    /// The held `GET`, if any.
    get: Option<u64>,
    /// `Access-Control-Allow-Origin` for this session's responses.
    origin: Option<String>,
    /// The WebSocket upgrading (or upgraded) this session.
    ws: Option<ConnId>,
    /// The probe was answered: `GET`s get a noop until the upgrade completes.
    probed: bool,
    /// `5` arrived: the WebSocket carries the session.
    upgraded: bool,
    /// The client sent the close packet (`1`).
    client_closed: bool,
}

/// An Engine.IO error response body (`{"code": n, "message": ...}`).
fn eio_error(code: u8) -> String {
    let message = match code {
        0 => "Transport unknown",
        1 => "Session ID unknown",
        2 => "Bad handshake method",
        4 => "Forbidden",
        5 => "Unsupported protocol version",
        _ => "Bad request",
    };
    json!({"code": code, "message": message}).to_string()
}

/// A polling payload: text packets as they are, binary packets as `b` + base64,
/// separated by `\x1e`.
pub(super) fn payload(frames: &[Frame]) -> String {
    let mut out = String::new();
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        match f {
            Frame::Text(t) => out.push_str(t),
            Frame::Binary(b) => {
                out.push('b');
                out.push_str(&STANDARD.encode(b));
            }
        }
    }
    out
}

impl Polls {
    /// Whether `conn` is a polling session (upgraded or not).
    fn owns(&self, conn: ConnId) -> bool {
        conn.0 >= POLL_CONN_BASE && self.sessions.contains_key(&conn)
    }

    /// The session a WebSocket carries or probes for.
    pub(crate) fn session_of_ws(&self, ws: ConnId) -> Option<ConnId> {
        self.by_ws.get(&ws).copied()
    }

    /// Whether `conn` is a polling session that has not been upgraded.
    pub(crate) fn is_polling(&self, conn: ConnId) -> bool {
        self.sessions.get(&conn).is_some_and(|s| !s.upgraded)
    }
}

impl Engine {
    fn respond(
        &mut self,
        req: u64,
        status: u16,
        content_type: &str,
        body: String,
        origin: Option<&str>,
    ) {
        let mut headers = vec![("content-type".to_string(), content_type.to_string())];
        if let Some(o) = origin {
            headers.push(("access-control-allow-origin".into(), o.to_string()));
            headers.push(("access-control-allow-credentials".into(), "true".into()));
        }
        self.actions.push_back(Action::Respond {
            req,
            status,
            headers,
            body,
        });
    }

    fn respond_error(&mut self, req: u64, status: u16, code: u8, origin: Option<&str>) {
        self.respond(req, status, "application/json", eio_error(code), origin);
    }

    /// One HTTP request on an Engine.IO route (see [`crate::Input::Http`]).
    pub(super) fn http(
        &mut self,
        now: Millis,
        req: u64,
        method: &str,
        request: UpgradeRequest,
        body: &[u8],
    ) {
        let route = crate::routes::match_route(
            &self.config.routes,
            &request.path,
            request.host().as_deref(),
        )
        .map(|(i, _)| &self.config.routes[i])
        .filter(|r| r.codec.is_engine_io());
        let Some(route) = route else {
            let body = json!({"type": "error", "code": "NOT_FOUND", "reason": "unknown_route",
                "message": "no Engine.IO route at this path"});
            return self.respond(req, 404, "application/json", body.to_string(), None);
        };
        // CORS: an allowed `Origin` is echoed back (with credentials, as Engine.IO does).
        let origin = match request.header("origin").map(str::trim) {
            Some(o)
                if route.origins.is_empty()
                    || route
                        .origins
                        .iter()
                        .any(|a| a == "*" || a.eq_ignore_ascii_case(o)) =>
            {
                Some(o.to_string())
            }
            Some(_) => return self.respond_error(req, 403, 4, None),
            None => None,
        };
        let origin = origin.as_deref();
        if method.eq_ignore_ascii_case("OPTIONS") {
            let mut headers = vec![
                (
                    "access-control-allow-methods".to_string(),
                    "GET, POST".to_string(),
                ),
                (
                    "access-control-allow-headers".into(),
                    "content-type, authorization".into(),
                ),
            ];
            if let Some(o) = origin {
                headers.push(("access-control-allow-origin".into(), o.to_string()));
                headers.push(("access-control-allow-credentials".into(), "true".into()));
            }
            self.actions.push_back(Action::Respond {
                req,
                status: 204,
                headers,
                body: String::new(),
            });
            return;
        }
        if request.query_param("EIO").as_deref() != Some("4") {
            return self.respond_error(req, 400, 5, origin);
        }
        if request.query_param("transport").as_deref() != Some("polling") {
            return self.respond_error(req, 400, 0, origin);
        }
        let Some(sid) = request.query_param("sid") else {
            if !method.eq_ignore_ascii_case("GET") {
                return self.respond_error(req, 400, 2, origin);
            }
            return self.poll_handshake(now, req, request, origin.map(str::to_string));
        };
        let session = self
            .by_client
            .get(&self.conns, &sid)
            .map(|slot| (slot, self.conns[slot].id))
            .filter(|&(slot, id)| self.polls.owns(id) && !self.conns[slot].closing);
        let Some((slot, vid)) = session else {
            let before = self.polls.lingering.len();
            self.polls
                .lingering
                .retain(|(id, until)| *id != sid || *until < now);
            if before != self.polls.lingering.len() && method.eq_ignore_ascii_case("GET") {
                let body = "6".to_string();
                return self.respond(req, 200, "text/plain; charset=UTF-8", body, origin);
            }
            return self.respond_error(req, 400, 1, origin);
        };
        if self.polls.sessions.get(&vid).is_some_and(|s| s.upgraded) {
            return self.respond_error(req, 400, 3, origin);
        }
        if method.eq_ignore_ascii_case("GET") {
            self.poll_get(now, req, slot, vid, origin);
        } else if method.eq_ignore_ascii_case("POST") {
            self.poll_post(now, req, slot, vid, body, origin);
        } else {
            self.respond_error(req, 400, 3, origin);
        }
    }

    fn poll_handshake(
        &mut self,
        now: Millis,
        req: u64,
        request: UpgradeRequest,
        origin: Option<String>,
    ) {
        let vid = ConnId(POLL_CONN_BASE + self.polls.next);
        self.polls.next += 1;
        // The handshake is the session's first held GET: the open packet releases it
        // (after the application's `connect` hook, when there is one).
        self.polls.sessions.insert(
            vid,
            PollSession {
                get: Some(req),
                origin,
                ..PollSession::default()
            },
        );
        self.polls.by_get.insert(req, vid);
        self.polls.opening = true;
        let opened = self.open(now, vid, request);
        self.polls.opening = false;
        if opened.is_err() {
            // Unreachable (the id is fresh); answer rather than hold the request.
            self.polls.sessions.remove(&vid);
            self.polls.by_get.remove(&req);
            self.respond_error(req, 500, 3, None);
        }
    }

    /// Whether a held `GET` may take the queued packets now: not while host calls of
    /// the session are in flight (the answers to one POST go out in one payload), unless
    /// the heartbeat's ping waits in the queue.
    fn poll_ready(&self, slot: usize, queue: &[Frame]) -> bool {
        self.conns[slot].pending == 0 || queue.iter().any(|f| f.as_text() == Some("2"))
    }

    fn poll_get(&mut self, now: Millis, req: u64, slot: usize, vid: ConnId, origin: Option<&str>) {
        let ready = self
            .polls
            .sessions
            .get(&vid)
            .is_some_and(|s| self.poll_ready(slot, &s.queue));
        let Some(s) = self.polls.sessions.get_mut(&vid) else {
            return;
        };
        if s.get.is_some() {
            // Overlapping polls: the reference server closes the session.
            self.respond_error(req, 400, 3, origin);
            self.close(
                slot,
                close::PROTOCOL_ERROR,
                "overlapping long-polling requests",
            );
        } else if s.probed {
            s.get = Some(req);
            self.polls.by_get.insert(req, vid);
            let at = now.plus(UPGRADE_NOOP_MS);
            self.timers.reschedule(TimerKey::Noop(vid), None, Some(at));
        } else if !s.queue.is_empty() && ready {
            let body = payload(&std::mem::take(&mut s.queue));
            self.respond(req, 200, "text/plain; charset=UTF-8", body, origin);
        } else {
            s.get = Some(req);
            if !s.queue.is_empty() {
                self.polls.dirty.push(vid);
            }
            self.polls.by_get.insert(req, vid);
        }
    }

    fn poll_post(
        &mut self,
        now: Millis,
        req: u64,
        slot: usize,
        vid: ConnId,
        body: &[u8],
        origin: Option<&str>,
    ) {
        if body.len() > self.config.max_payload_size {
            self.respond_error(req, 413, 3, origin);
            self.close(slot, close::MESSAGE_TOO_BIG, "payload too large");
            return;
        }
        let Ok(text) = std::str::from_utf8(body) else {
            self.respond_error(req, 400, 3, origin);
            self.close(slot, close::PROTOCOL_ERROR, "payload is not UTF-8");
            return;
        };
        for packet in text.split(SEPARATOR) {
            if self.conns[slot].closing {
                break;
            }
            if packet == "1" {
                if let Some(s) = self.polls.sessions.get_mut(&vid) {
                    s.client_closed = true;
                }
            }
            match packet.strip_prefix('b') {
                Some(b64) => match STANDARD.decode(b64) {
                    Ok(bytes) => self.frame(now, vid, InFrame::Binary(&bytes)),
                    Err(_) => self.close(slot, close::PROTOCOL_ERROR, "invalid base64 packet"),
                },
                None => self.frame(now, vid, InFrame::Text(packet)),
            }
        }
        let client_closed = self
            .polls
            .sessions
            .get(&vid)
            .is_some_and(|s| s.client_closed);
        if self.conns[slot].closing && !client_closed {
            self.respond_error(req, 400, 3, origin);
        } else {
            self.respond(req, 200, "text/html", "ok".into(), origin);
        }
    }

    /// The client gave up a held request: the reference server closes the session.
    pub(super) fn http_aborted(&mut self, req: u64) {
        let Some(vid) = self.polls.by_get.remove(&req) else {
            return;
        };
        if let Some(s) = self.polls.sessions.get_mut(&vid) {
            s.get = None;
        }
        if let Some(&slot) = self.by_conn.get(&vid) {
            self.close(slot, close::GOING_AWAY, "long-polling request aborted");
        }
    }

    /// A WebSocket upgrade naming a polling session (`sid`): accept it as the session's
    /// probe. Returns false when the request is not for a polling session's upgrade.
    pub(super) fn poll_upgrade(&mut self, conn: ConnId, req: &UpgradeRequest) -> bool {
        let Some(sid) = req.query_param("sid") else {
            return false;
        };
        let engine_io =
            crate::routes::match_route(&self.config.routes, &req.path, req.host().as_deref())
                .is_some_and(|(i, _)| self.config.routes[i].codec.is_engine_io());
        if !engine_io {
            return false;
        }
        let ok_query = req.query_param("EIO").as_deref() == Some("4")
            && req.query_param("transport").as_deref() == Some("websocket");
        let session = self
            .by_client
            .get(&self.conns, &sid)
            .map(|slot| (slot, self.conns[slot].id))
            .filter(|&(slot, id)| !self.conns[slot].closing && self.polls.owns(id))
            .map(|(_, id)| id);
        let free = session.filter(|id| self.polls.sessions.get(id).is_some_and(|s| s.ws.is_none()));
        match free {
            None if ok_query && session.is_some() => {
                // Already upgrading or upgraded: Engine.IO accepts the socket and closes it.
                self.polls.refused.insert(conn);
                self.actions.push_back(Action::Accept {
                    conn,
                    protocol: None,
                });
                self.actions.push_back(Action::Close {
                    conn,
                    code: close::NORMAL,
                    reason: "this session has a WebSocket already".into(),
                });
            }
            Some(vid) if ok_query => {
                if let Some(s) = self.polls.sessions.get_mut(&vid) {
                    s.ws = Some(conn);
                }
                self.polls.by_ws.insert(conn, vid);
                self.actions.push_back(Action::Accept {
                    conn,
                    protocol: None,
                });
            }
            _ => {
                *self.metrics.rejected_upgrades.entry(400).or_default() += 1;
                let code = if ok_query { 1 } else { 3 };
                self.actions.push_back(Action::Reject {
                    conn,
                    status: 400,
                    body: eio_error(code),
                });
            }
        }
        true
    }

    /// Inputs on a WebSocket that probes or carries a polling session: the probe and
    /// the upgrade are handled here (None); an upgraded socket's inputs become the
    /// session's.
    pub(super) fn poll_ws_input<'a>(&mut self, input: Input<'a>) -> Option<Input<'a>> {
        let ws = match &input {
            Input::Frame { conn, .. }
            | Input::Pong { conn }
            | Input::Backpressure { conn, .. }
            | Input::Closed { conn, .. } => *conn,
            _ => return Some(input),
        };
        if self.polls.refused.contains(&ws) {
            if matches!(input, Input::Closed { .. }) {
                self.polls.refused.remove(&ws);
            }
            return None;
        }
        let Some(vid) = self.polls.session_of_ws(ws) else {
            return Some(input);
        };
        let upgraded = self.polls.sessions.get(&vid).is_some_and(|s| s.upgraded);
        match input {
            Input::Closed { code, .. } if upgraded => {
                self.polls.by_ws.remove(&ws);
                self.polls.sessions.remove(&vid);
                Some(Input::Closed { conn: vid, code })
            }
            Input::Closed { .. } => {
                // The probe failed: the session goes on polling.
                self.polls.by_ws.remove(&ws);
                if let Some(s) = self.polls.sessions.get_mut(&vid) {
                    s.ws = None;
                    s.probed = false;
                }
                None
            }
            Input::Frame { frame, .. } if upgraded => Some(Input::Frame { conn: vid, frame }),
            Input::Pong { .. } if upgraded => Some(Input::Pong { conn: vid }),
            Input::Backpressure { buffered, .. } if upgraded => Some(Input::Backpressure {
                conn: vid,
                buffered,
            }),
            Input::Frame {
                frame: InFrame::Text("2probe"),
                ..
            } => {
                let frame = Frame::Text(Arc::from("3probe"));
                self.actions.push_back(Action::Send { conn: ws, frame });
                // A held GET gets its noop after Engine.IO's 100 ms check, unless `5`
                // completes the upgrade first (then it is refused, as after an upgrade).
                let held = self.polls.sessions.get_mut(&vid).is_some_and(|s| {
                    s.probed = true;
                    s.get.is_some()
                });
                if held {
                    let at = self.now.plus(UPGRADE_NOOP_MS);
                    self.timers.reschedule(TimerKey::Noop(vid), None, Some(at));
                }
                None
            }
            Input::Frame {
                frame: InFrame::Text("5"),
                ..
            } => {
                let s = self.polls.sessions.get_mut(&vid)?;
                s.upgraded = true;
                let queued = std::mem::take(&mut s.queue);
                let held = s.get.take().map(|g| (g, s.origin.clone()));
                for frame in queued {
                    self.actions.push_back(Action::Send { conn: ws, frame });
                }
                if let Some((get, origin)) = held {
                    // Upgraded: polling requests are refused from now on.
                    self.polls.by_get.remove(&get);
                    self.respond_error(get, 400, 3, origin.as_deref());
                }
                if let Some(&slot) = self.by_conn.get(&vid) {
                    let now = self.now;
                    self.alive(slot, now);
                }
                None
            }
            // Anything else before the upgrade completes is ignored, as Engine.IO does.
            _ => None,
        }
    }

    /// Route the queued actions of polling sessions: frames into their queues (or to
    /// their WebSocket once upgraded), held `GET`s released, closes completed.
    pub(super) fn route_polls(&mut self, now: Millis) {
        if self.polls.sessions.is_empty() {
            return;
        }
        loop {
            let mut closed = Vec::new();
            let actions = std::mem::take(&mut self.actions);
            let mut out = VecDeque::with_capacity(actions.len());
            for action in actions {
                match action {
                    Action::Accept { conn, .. } if self.polls.owns(conn) => {}
                    Action::Reject { conn, status, body } if self.polls.owns(conn) => {
                        if let Some(s) = self.polls.sessions.remove(&conn) {
                            if let Some(get) = s.get {
                                self.polls.by_get.remove(&get);
                                self.respond_into(&mut out, get, status, body, s.origin);
                            }
                        }
                    }
                    Action::Send { conn, frame } if self.polls.owns(conn) => {
                        self.poll_deliver(&mut out, conn, frame);
                    }
                    Action::SendMany { conns, frame }
                        if conns.iter().any(|c| self.polls.owns(*c)) =>
                    {
                        let mut rest = Vec::with_capacity(conns.len());
                        for c in conns {
                            match self.polls.sessions.get(&c) {
                                Some(s) if s.upgraded => rest.extend(s.ws),
                                Some(_) => self.poll_deliver(&mut out, c, frame.clone()),
                                None => rest.push(c),
                            }
                        }
                        if !rest.is_empty() {
                            out.push_back(Action::SendMany { conns: rest, frame });
                        }
                    }
                    Action::Ping { conn } if self.polls.owns(conn) => {
                        if let Some(ws) = self.upgraded_ws(conn) {
                            out.push_back(Action::Ping { conn: ws });
                        }
                    }
                    Action::Close { conn, code, reason } if self.polls.owns(conn) => {
                        if let Some(ws) = self.upgraded_ws(conn) {
                            // The host reports the socket's `Closed`, which ends the session.
                            out.push_back(Action::Close {
                                conn: ws,
                                code,
                                reason,
                            });
                            continue;
                        }
                        let Some(s) = self.polls.sessions.remove(&conn) else {
                            continue;
                        };
                        if let Some(ws) = s.ws {
                            self.polls.by_ws.remove(&ws);
                            out.push_back(Action::Close {
                                conn: ws,
                                code,
                                reason,
                            });
                        }
                        if s.get.is_none() && s.client_closed {
                            self.linger(now, conn);
                        }
                        if let Some(get) = s.get {
                            self.polls.by_get.remove(&get);
                            // The client's own close ends its poll with a noop; the
                            // server's close is announced with the close packet.
                            let mut frames = s.queue;
                            if !s.client_closed {
                                frames.push(Frame::Text(Arc::from("1")));
                            } else if frames.is_empty() {
                                frames.push(Frame::Text(Arc::from("6")));
                            }
                            self.respond_into(&mut out, get, 200, payload(&frames), s.origin);
                        }
                        closed.push((conn, code));
                    }
                    Action::Call {
                        op,
                        conn: Some(conn),
                        deadline,
                        request,
                    } if self.polls.owns(conn) => out.push_back(Action::Call {
                        op,
                        conn: Some(self.upgraded_ws(conn).unwrap_or(conn)),
                        deadline,
                        request,
                    }),
                    other => out.push_back(other),
                }
            }
            let mut dirty = std::mem::take(&mut self.polls.dirty);
            dirty.sort_unstable();
            dirty.dedup();
            for vid in dirty {
                let ready = match (self.by_conn.get(&vid), self.polls.sessions.get(&vid)) {
                    (Some(&slot), Some(s)) => self.poll_ready(slot, &s.queue),
                    _ => continue,
                };
                let Some(s) = self.polls.sessions.get_mut(&vid) else {
                    continue;
                };
                if s.queue.is_empty() || s.probed || s.get.is_none() {
                    continue;
                }
                if !ready {
                    // Checked again after the next input (a call completes or times out).
                    self.polls.dirty.push(vid);
                    continue;
                }
                let Some(get) = s.get.take() else {
                    continue;
                };
                let body = payload(&std::mem::take(&mut s.queue));
                let origin = s.origin.clone();
                self.polls.by_get.remove(&get);
                self.respond_into(&mut out, get, 200, body, origin);
            }
            self.actions = out;
            if closed.is_empty() {
                return;
            }
            for (vid, code) in closed {
                self.closed(now, vid, Some(code));
            }
        }
    }

    /// The upgrade's noop for a `GET` held while the probe is answered and `5` is due.
    pub(super) fn poll_noop(&mut self, vid: ConnId) {
        let Some(s) = self.polls.sessions.get_mut(&vid) else {
            return;
        };
        if s.upgraded || !s.probed {
            return;
        }
        let Some(get) = s.get.take() else {
            return;
        };
        let origin = s.origin.clone();
        self.polls.by_get.remove(&get);
        self.respond(
            get,
            200,
            "text/plain; charset=UTF-8",
            "6".into(),
            origin.as_deref(),
        );
    }

    /// Remember a client-closed session for the `GET` that may race its close.
    fn linger(&mut self, now: Millis, vid: ConnId) {
        let Some(&slot) = self.by_conn.get(&vid) else {
            return;
        };
        let sid = self.conns[slot].state.client_id.clone();
        let lingering = &mut self.polls.lingering;
        lingering.retain(|(_, until)| *until >= now);
        if lingering.len() >= 256 {
            lingering.remove(0);
        }
        let grace = self.config.heartbeat_timeout.max(1000);
        lingering.push((sid, now.plus(grace)));
    }

    fn upgraded_ws(&self, vid: ConnId) -> Option<ConnId> {
        self.polls
            .sessions
            .get(&vid)
            .filter(|s| s.upgraded)
            .and_then(|s| s.ws)
    }

    fn poll_deliver(&mut self, out: &mut VecDeque<Action>, vid: ConnId, frame: Frame) {
        if let Some(ws) = self.upgraded_ws(vid) {
            out.push_back(Action::Send { conn: ws, frame });
        } else if let Some(s) = self.polls.sessions.get_mut(&vid) {
            s.queue.push(frame);
            self.polls.dirty.push(vid);
        }
    }

    fn respond_into(
        &self,
        out: &mut VecDeque<Action>,
        req: u64,
        status: u16,
        body: String,
        origin: Option<String>,
    ) {
        let ctype = if status == 200 {
            "text/plain; charset=UTF-8"
        } else {
            "application/json"
        };
        let mut headers = vec![("content-type".to_string(), ctype.to_string())];
        if let Some(o) = origin {
            headers.push(("access-control-allow-origin".into(), o));
            headers.push(("access-control-allow-credentials".into(), "true".into()));
        }
        out.push_back(Action::Respond {
            req,
            status,
            headers,
            body,
        });
    }
}
