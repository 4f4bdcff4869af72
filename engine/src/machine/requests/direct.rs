//! Direct messages between clients, local or on another node of a cluster.

use super::*;

impl Engine {
    pub(super) fn direct(
        &mut self,
        now: Millis,
        slot: usize,
        to: String,
        data: Option<Value>,
        ack: bool,
        rid: Rid,
    ) {
        let target = self
            .by_client
            .get(&self.conns, &to)
            .filter(|s| !self.conns[*s].closing)
            // Client lookups stay inside the sender's tenant.
            .filter(|s| self.conns[*s].state.tenant == self.conns[slot].state.tenant);
        let Some(target) = target else {
            if self.cluster_node().is_some() {
                return self.direct_remote(now, slot, to, data, ack, rid);
            }
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                format!("no connected client `{}`", clip(&to)),
                rid,
            );
        };
        let msg = ServerMessage::Direct {
            from: self.conns[slot].state.client_id.clone(),
            data,
            timestamp: iso8601(now),
        };
        let conn = self.conns[target].id;
        let delivered = self.fanout(&[(target, conn)], Outbound::Message(&msg));
        if ack {
            self.send(
                slot,
                &ServerMessage::Sent {
                    delivered,
                    request_id: rid,
                },
            );
        }
    }

    /// `direct` to a client that is not local, in a cluster: forwarded to the node it is
    /// connected to (`sent.delivered` is 1 once handed to the broker).
    pub(super) fn direct_remote(
        &mut self,
        now: Millis,
        slot: usize,
        to: String,
        data: Option<Value>,
        ack: bool,
        rid: Rid,
    ) {
        let tenant = self.conns[slot].state.tenant.clone();
        let Some(node) = self.remote_client(&to, tenant.as_deref()) else {
            return self.send_error(
                slot,
                ErrorCode::NotFound,
                format!("no connected client `{}`", clip(&to)),
                rid,
            );
        };
        if let Err((code, m)) = self.cluster_gate() {
            return self.send_error(slot, code, m, rid);
        }
        let from = self.conns[slot].state.client_id.clone();
        self.cluster_direct(node, tenant, from, to, data, iso8601(now));
        if ack {
            self.send(
                slot,
                &ServerMessage::Sent {
                    delivered: 1,
                    request_id: rid,
                },
            );
        }
    }
}
