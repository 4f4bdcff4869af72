//! Connection lifecycle: heartbeat, timeouts, backpressure, closing and restore.

use super::{Action, Engine};
use crate::config::SlowConsumerPolicy;
use crate::connection::{ConnectionSnapshot, Heartbeat, JsonText, SubTarget, SNAPSHOT_VERSION};
use crate::error::{close, ApiMisuse};
use crate::filter::Filter;
use crate::timers::TimerKey;
use crate::types::{ConnId, Millis};

impl Engine {
    fn set_heartbeat(&mut self, slot: usize, hb: Heartbeat) {
        let c = &mut self.conns[slot];
        let old = c.state.heartbeat.deadline();
        c.state.heartbeat = hb;
        let id = c.id;
        self.timers
            .reschedule(TimerKey::Conn(id), old, hb.deadline());
    }

    /// The client showed it is alive (pong or any frame).
    pub(super) fn alive(&mut self, slot: usize, now: Millis) {
        if let Heartbeat::AwaitPong { sent, .. } = self.conns[slot].state.heartbeat {
            let at = sent.plus(self.config.heartbeat_interval).max(now);
            self.set_heartbeat(slot, Heartbeat::NextPing { at });
        }
    }

    pub(super) fn backpressure(&mut self, conn: ConnId, buffered: u64) {
        let Some(slot) = self.live_slot(conn) else {
            return;
        };
        self.conns[slot].buffered = buffered;
        if buffered > self.config.limits.max_buffered_bytes
            && self.config.limits.slow_consumer == SlowConsumerPolicy::Close
        {
            self.metrics.closed_slow_consumer += 1;
            self.close(slot, close::TRY_AGAIN_LATER, "slow consumer");
        }
    }

    /// Engine-initiated close: emit the close, then detach the connection from everything
    /// so it receives nothing more. The slot stays until the host reports `Closed`.
    pub(super) fn close(&mut self, slot: usize, code: u16, reason: &str) {
        if self.conns[slot].closing {
            return;
        }
        let conn = self.conns[slot].id;
        // A close frame's reason is at most 123 bytes (RFC 6455 §5.5).
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.actions.push_back(Action::Close {
            conn,
            code,
            reason: reason[..end].to_string(),
        });
        self.conns[slot].closed_with = Some(Box::new((code, reason[..end].to_string())));
        self.detach(slot);
        self.conns[slot].closing = true;
    }

    /// Remove a connection's subscriptions, channel and room memberships and timer.
    fn detach(&mut self, slot: usize) {
        while !self.conns[slot].state.subscriptions.is_empty() {
            let last = self.conns[slot].state.subscriptions.len() - 1;
            self.remove_subscription(slot, last);
        }
        let rooms = std::mem::take(&mut self.conns[slot].state.rooms);
        // Mark closing first so presence notices are not sent to the leaver itself.
        self.conns[slot].closing = true;
        for room in rooms {
            self.leave_room_and_notify(slot, &room);
        }
        self.set_heartbeat(slot, Heartbeat::Off);
        self.set_expiry(slot, None);
        self.sio_fail_acks(slot, None);
    }

    /// The host reports the connection gone.
    pub(super) fn closed(&mut self, now: Millis, conn: ConnId, code: Option<u16>) {
        let Some(&slot) = self.by_conn.get(&conn) else {
            self.metrics.unknown_connection_inputs += 1;
            return;
        };
        if !self.conns[slot].closing {
            self.detach(slot);
        }
        self.by_client.remove(&self.conns, slot);
        let c = self.conns.remove(slot);
        self.by_conn.remove(&conn);
        self.tenanted -= usize::from(c.state.tenant.is_some());
        self.cluster_client(
            &c.state.client_id,
            c.state.tenant.as_deref(),
            None,
            None,
            false,
        );
        if let Some(n) = self.per_ip.get_mut(&c.state.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&c.state.peer);
            }
        }
        if let Some(view) = &c.user_view {
            self.release_user(view);
        }
        if let Some(u) = &c.state.user {
            if let Some(n) = self.per_user.get_mut(&u.id) {
                *n -= 1;
                if *n == 0 {
                    self.per_user.remove(&u.id);
                }
            }
        }
        self.metrics.disconnections += 1;
        self.metrics.current_connections -= 1;
        self.run_disconnect_hook(now, &c, code);
    }

    /// Fire every deadline that is due.
    pub(super) fn timeout(&mut self, now: Millis) {
        while let Some((_, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Op(op) => self.call_timed_out(op),
                TimerKey::Expiry(conn) => self.expiry_due(now, conn),
                TimerKey::KeySource(i) => self.key_source_due(now, i),
                TimerKey::Noop(vid) => self.poll_noop(vid),
                TimerKey::SioAck(conn, id) => self.sio_ack_timed_out(conn, id),
                TimerKey::Conn(conn) => {
                    let Some(&slot) = self.by_conn.get(&conn) else {
                        continue;
                    };
                    match self.conns[slot].state.heartbeat {
                        Heartbeat::Off => {}
                        Heartbeat::NextPing { at } => {
                            // The timer entry was popped: install the new state directly.
                            // The pong is due a timeout after the ping was due, however
                            // late the host's timer fired.
                            let sent = at.min(now);
                            let deadline = sent.plus(self.config.heartbeat_timeout);
                            self.conns[slot].state.heartbeat =
                                Heartbeat::AwaitPong { sent, deadline };
                            self.timers
                                .reschedule(TimerKey::Conn(conn), None, Some(deadline));
                            if self.conns[slot].state.codec.is_engine_io() {
                                // Engine.IO pings are packets (`2`), answered with `3`.
                                let frame = crate::protocol::Frame::Text("2".into());
                                self.actions.push_back(Action::Send { conn, frame });
                            } else {
                                self.actions.push_back(Action::Ping { conn });
                            }
                        }
                        Heartbeat::AwaitPong { .. } => {
                            self.conns[slot].state.heartbeat = Heartbeat::Off;
                            self.metrics.heartbeat_timeouts += 1;
                            self.close(slot, close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                        }
                    }
                }
            }
        }
    }

    /// Re-create a connection from a snapshot.
    pub(super) fn restore(
        &mut self,
        now: Millis,
        conn: ConnId,
        snapshot: ConnectionSnapshot,
    ) -> Result<(), ApiMisuse> {
        if self.by_conn.contains_key(&conn) {
            return Err(ApiMisuse::DuplicateConnection(conn.0));
        }
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(ApiMisuse::SnapshotVersion(snapshot.version));
        }
        let mut state = snapshot;
        let subs = std::mem::take(&mut state.subscriptions);
        let rooms = std::mem::take(&mut state.rooms);
        // A heartbeat deadline that passed while hibernating is due now.
        state.heartbeat = match state.heartbeat {
            Heartbeat::Off if self.config.heartbeat_interval > 0 => Heartbeat::NextPing {
                at: now.plus(self.config.heartbeat_interval),
            },
            hb => hb,
        };
        let slot = self.insert_connection(conn, state);
        self.metrics.connections += 1;
        self.metrics.restored_connections += 1;
        for sub in subs {
            let key = match &sub.target {
                SubTarget::Resource {
                    name,
                    filter,
                    forced,
                    events,
                } => {
                    let filter = filter.as_ref().map(JsonText::value);
                    let forced = forced.as_ref().map(JsonText::value);
                    let parsed = crate::guard::and_filters(filter.as_ref(), forced.as_ref())
                        .and_then(|f| Filter::parse(&f).ok())
                        .filter(|f| !f.is_empty());
                    let forced_parsed = forced
                        .as_ref()
                        .and_then(|f| Filter::parse(f).ok())
                        .filter(|f| !f.is_empty());
                    self.hub.subscribe_resource_forced(
                        slot,
                        conn,
                        name,
                        parsed,
                        forced_parsed,
                        events,
                    )
                }
                SubTarget::Channel { name } => {
                    let key = self.key_for(slot, name);
                    self.hub.join_channel(slot, conn, &key);
                    usize::MAX
                }
            };
            self.conns[slot].push_subscription(key, sub);
        }
        for room in rooms {
            let key = self.key_for(slot, &room);
            self.hub.join_room(slot, &key);
            self.conns[slot].state.rooms.push(room);
        }
        Ok(())
    }
}
