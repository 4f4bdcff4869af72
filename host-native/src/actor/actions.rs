//! Executing the engine's actions: accepts and rejects answer the waiting upgrade,
//! frames go to each connection's [`crate::outbound::Outbound`] queue (written at the end
//! of the turn, [`Actor::flush`]; a fan-out's consecutive frames to the same recipients
//! together, [`super::batch`]), pings and closes as controls, command and long-polling
//! results to the waiting request, cluster messages to the link. Host calls are
//! [`super::calls`]'s.

use std::sync::atomic::Ordering;

use engine::{Action, ConnId, Input, Millis};

use super::Actor;
use crate::mailbox::{HttpAnswer, OpenOutcome};
use crate::outbound::PushError;

impl Actor {
    /// Execute one action of the engine.
    pub(super) fn execute(&mut self, now: Millis, action: Action) {
        // The batch's frames go first to anyone this action sends to (for the actions
        // that are not sends: to everyone).
        let keeps_batch = match &action {
            // An accept writes nothing.
            Action::SendMany { .. } | Action::Accept { .. } => true,
            // A ping would go ahead of the frames anyway, but it counts against the
            // queue's bound: queued after them, as without the batch.
            Action::Send { conn, .. } | Action::Ping { conn } => !self.batch.addresses(*conn),
            _ => self.batch.is_empty(),
        };
        if !keeps_batch {
            self.release_batch(now);
        }
        match action {
            Action::Accept { conn, protocol } => {
                if let Some(peer) = self.peers.get_mut(&conn) {
                    peer.accepted = true;
                    // Debug, not info: a connection flood must not flood the log
                    // (counts are in /metrics).
                    if let Some(who) = Who::of(&self.engine, conn) {
                        tracing::debug!(
                            client = %who.client,
                            route = %who.route,
                            user = %who.user,
                            "connection opened"
                        );
                    }
                    if let Some(opening) = peer.opening.take() {
                        if opening
                            .reply
                            .send(OpenOutcome::Accept { protocol })
                            .is_err()
                        {
                            // The HTTP request went away before the answer.
                            self.peers.remove(&conn);
                            self.feed_closed(now, conn, None);
                        }
                    }
                }
            }
            Action::Reject { conn, status, body } => {
                if let Some(peer) = self.peers.remove(&conn) {
                    if let Some(opening) = peer.opening {
                        tracing::debug!(path = %opening.path, status, "upgrade rejected");
                        let _ = opening.reply.send(OpenOutcome::Reject { status, body });
                    }
                }
            }
            Action::Send { conn, frame } => {
                let bytes = crate::codec::encode_frame(&frame);
                self.turn_frames += 1;
                self.deliver(now, conn, bytes);
            }
            Action::SendMany { conns, frame } => {
                // Framed once: every recipient's queue shares these bytes.
                let bytes = crate::codec::encode_frame(&frame);
                self.turn_frames += conns.len();
                if !self.batching {
                    for conn in conns {
                        self.deliver(now, conn, bytes.clone());
                    }
                } else if !self.batch.extend(&conns, &bytes) {
                    self.release_batch(now);
                    self.batch.start(conns, bytes);
                }
            }
            Action::Ping { conn } => {
                if let Some(peer) = self.peers.get(&conn) {
                    if peer.out.push_control(crate::codec::ping()) {
                        self.dirty.push((conn, peer.out.clone()));
                    }
                }
            }
            Action::Close { conn, code, reason } => {
                if let Some(peer) = self.peers.remove(&conn) {
                    log_close(&self.engine, conn, Some(code), "server");
                    peer.out.close(code, &reason);
                    self.feed_closed(now, conn, Some(code));
                }
            }
            Action::Call { .. } if self.test.as_ref().is_some_and(|t| t.hold_call(&action)) => {}
            Action::Call {
                op,
                conn,
                request,
                deadline,
            } => self.call(now, op, conn, request, deadline),
            Action::Respond {
                req,
                status,
                headers,
                body,
            } => {
                if let Some(reply) = self.http.remove(&req) {
                    let _ = reply.send(HttpAnswer {
                        status,
                        headers,
                        body,
                    });
                }
            }
            Action::CommandResult { tag, result } => {
                if let Some(reply) = self.commands.remove(&tag) {
                    let _ = reply.send(result);
                }
            }
            Action::Cluster { message } => match &self.cluster {
                // The link reports an outage to the engine, which then stops sending.
                Some(tx) => {
                    let _ = tx.send(*message);
                }
                None => tracing::error!("the engine sent a cluster message without a cluster"),
            },
        }
    }

    /// `Closed` after executing a `Close` (the socket task's own report is then ignored).
    pub(super) fn feed_closed(&mut self, now: Millis, conn: ConnId, code: Option<u16>) {
        if let Err(e) = self.engine.handle(now, Input::Closed { conn, code }) {
            tracing::error!(error = %e, "engine refused Closed");
        }
    }

    /// Write every connection queued to this turn (one vectored write each); tell the
    /// engine about connections that drained back under their limit.
    /// Returns whether the engine was given an input.
    pub(super) fn flush(&mut self, now: Millis) -> bool {
        let mut fed = self.release_batch_unbatched(now);
        // Bounded: a drained report can make the engine queue more frames.
        for _ in 0..8 {
            if self.dirty.is_empty() {
                break;
            }
            let mut turn = std::mem::take(&mut self.dirty);
            if let Some(writers) = &self.writers {
                turn = writers.share(turn);
            }
            for (conn, out) in turn {
                if let Some(buffered) = out.flush_now() {
                    if self.peers.contains_key(&conn) {
                        self.input(now, Input::Backpressure { conn, buffered });
                        fed = true;
                    }
                }
            }
        }
        // Frames queued by the drained reports above were written in this loop too.
        self.turn_frames = 0;
        self.batching = true;
        fed
    }

    /// Queue the batch's frames, and what the engine answers to the reports that makes,
    /// at once: batching stays off until the caller turns it back on (the turn's end,
    /// a test reset). Returns whether the engine was given an input.
    pub(super) fn release_batch_unbatched(&mut self, now: Millis) -> bool {
        self.batching = false;
        let fed = self.release_batch(now);
        if fed {
            self.pump(now);
        }
        fed
    }

    /// Queue the batch's frames ([`super::batch`]) for each of its recipients. Returns
    /// whether the engine was told of a queue over its limit (its actions then wait in
    /// the engine).
    fn release_batch(&mut self, now: Millis) -> bool {
        let Some(batch) = self.batch.take() else {
            return false;
        };
        let frames = batch.count();
        let mut fed = false;
        for &conn in &batch.conns {
            match self.deliver_frames(now, conn, batch.bytes.clone(), frames) {
                Delivery::Queued => {}
                Delivery::Told | Delivery::Full => fed = true,
                Delivery::OneByOne => {
                    let mut rest = batch.frames();
                    while let Some(frame) = rest.next() {
                        match self.deliver_frames(now, conn, frame, 1) {
                            Delivery::Queued => {}
                            Delivery::Told => fed = true,
                            // The rest would find the queue full too (or, were it written
                            // meanwhile, arrive after a gap): refused with this one,
                            // and the engine told once. (One frame is never given back
                            // as `OneByOne`.)
                            Delivery::Full | Delivery::OneByOne => {
                                fed = true;
                                self.metrics.outbound_overflow.inc_by(rest.count() as u64);
                                break;
                            }
                        }
                    }
                }
            }
        }
        fed
    }

    /// Queue a frame for one connection; tell the engine when the queue is over its
    /// limit.
    fn deliver(&mut self, now: Millis, conn: ConnId, frame: bytes::Bytes) {
        self.deliver_frames(now, conn, frame, 1);
    }

    /// Queue `frames` frames (one buffer) for one connection; tell the engine when the
    /// queue is over its limit. Several frames are not queued together
    /// ([`Delivery::OneByOne`]) for a queue that has not room for all of them (the
    /// caller gives as many as fit and refuses the rest at the first that does not) or
    /// that writes its frames apart ([`crate::outbound::Outbound::spaced`]).
    fn deliver_frames(
        &mut self,
        now: Millis,
        conn: ConnId,
        bytes: bytes::Bytes,
        frames: u32,
    ) -> Delivery {
        let Some(peer) = self.peers.get(&conn) else {
            return Delivery::Queued;
        };
        let out = &peer.out;
        if frames > 1 && out.is_spaced() {
            return Delivery::OneByOne;
        }
        let report = match out.push_frames(bytes, frames) {
            Ok((queued, schedule)) => {
                if schedule {
                    self.dirty.push((conn, out.clone()));
                }
                let over = out.pressure.crossing(false, queued) == Some(true)
                    && !out.reported_over.swap(true, Ordering::AcqRel);
                (over.then_some(queued), false)
            }
            Err(PushError::Full) if frames > 1 => return Delivery::OneByOne,
            Err(PushError::Full) => {
                // A full queue counts as over the byte limit: the engine's policy decides.
                self.metrics.outbound_overflow.inc();
                out.reported_over.store(true, Ordering::Release);
                let queued = out.queued.load(Ordering::Acquire);
                (Some(queued.max(out.pressure.over.saturating_add(1))), true)
            }
            // The connection task is gone; its Closed report is on the way.
            Err(PushError::Gone) => (None, false),
        };
        let (Some(buffered), full) = report else {
            return Delivery::Queued;
        };
        if let Err(e) = self
            .engine
            .handle(now, Input::Backpressure { conn, buffered })
        {
            tracing::error!(error = %e, "engine refused Backpressure");
        }
        if full {
            Delivery::Full
        } else {
            Delivery::Told
        }
    }
}

/// What became of frames given to a connection's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Queued, or dropped for a connection that is gone.
    Queued,
    /// Queued, and the engine told that the queue is over its byte limit.
    Told,
    /// Refused: the queue was full; the engine was told.
    Full,
    /// Several frames not queued together: to be given one by one.
    OneByOne,
}

/// Who a connection is, for the debug logs: read from the engine, and only when debug
/// logging is on (a snapshot is a copy of the connection's state).
struct Who {
    client: String,
    /// The route's path pattern (`/ws/game/:sessionId`).
    route: String,
    user: String,
}

impl Who {
    fn of(engine: &engine::Engine, conn: ConnId) -> Option<Self> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return None;
        }
        let s = engine.snapshot(conn)?;
        let route = engine
            .config()
            .routes
            .get(s.route)
            .map_or_else(|| "-".to_string(), |r| r.path.clone());
        Some(Self {
            client: s.client_id,
            route,
            user: s.user.map_or_else(|| "-".to_string(), |u| u.id),
        })
    }
}

/// Log a close (before the engine forgets the connection).
pub(super) fn log_close(engine: &engine::Engine, conn: ConnId, code: Option<u16>, by: &str) {
    if let Some(who) = Who::of(engine, conn) {
        tracing::debug!(
            client = %who.client,
            route = %who.route,
            user = %who.user,
            code = code.map_or(-1, i32::from),
            by,
            "connection closed"
        );
    }
}
