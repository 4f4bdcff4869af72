//! Cluster mode for streams (channels whose namespace keeps history): one sequence of
//! offsets and one epoch per stream for the whole cluster.
//!
//! A publication to a stream is not ordered locally: the engine asks the host to append
//! it to the shared broker ([`ClusterMessage::Append`]), which assigns the offset and
//! carries the result to every node, this one included ([`ClusterMessage::Sequenced`]).
//! Each node delivers it to its subscribers from there, and keeps a copy of the stream in
//! its memory broker ([`crate::broker::mirror`]). A `subscribe` or `history` on a stream
//! whose copy is not synced (after a start, a broker outage, a gap) first reads the
//! shared stream ([`ClusterMessage::Fetch`], answered by [`ClusterEvent::Fetched`]),
//! then answers from the filled copy: in one step with the subscription, so no
//! publication is in both `publications` and a later `message`, or in neither.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::server_api::err;
use super::streams::publication_json;
use super::{Action, Command, Engine};
use crate::broker::{Since, StreamPosition};
use crate::cluster::{ClusterMessage, FetchedStream, StreamPublication, StreamSpec};
use crate::error::ErrorCode;
use crate::namespace::HistoryConfig;
use crate::protocol::ServerMessage;
use crate::timestamp::iso8601;
use crate::types::{ConnId, Millis};

type Rid = Option<Value>;

/// The message for a stream this node cannot read while the broker is down.
const STREAM_UNAVAILABLE: &str =
    "the cluster broker is unreachable and this node holds no copy of the channel's history; retry once it is back";

/// The message for a publication the broker did not confirm before an outage.
const UNCONFIRMED: &str =
    "the cluster broker became unreachable before it ordered the publication; it may or may not have been published";

/// What waits for the shared broker.
#[derive(Debug)]
pub(super) enum Waiting {
    /// A client's `publish`: answered with `published` once ordered.
    Publish {
        conn: ConnId,
        channel: String,
        rid: Rid,
    },
    /// A server-API `publish`: answered with its result once ordered.
    CommandPublish { tag: u64 },
    /// A client's `subscribe`, run again once the stream is read.
    Subscribe {
        conn: ConnId,
        channel: String,
        since: Option<Since>,
        rid: Rid,
    },
    /// A client's `history`, run again once the stream is read.
    History {
        conn: ConnId,
        channel: String,
        limit: Option<u64>,
        since: Option<Since>,
        reverse: bool,
        rid: Rid,
    },
    /// A server-API `history`, run again once the stream is read.
    Command { tag: u64, command: Command },
}

/// A read of a shared stream in flight and what waits for it.
#[derive(Debug)]
pub(super) struct Fetching {
    key: String,
    cfg: HistoryConfig,
    waiters: Vec<Waiting>,
}

/// Stream requests in flight (part of the cluster state).
#[derive(Debug, Default)]
pub(super) struct StreamRequests {
    next: u64,
    /// Publications awaiting their order, by request id.
    publishes: BTreeMap<u64, Waiting>,
    /// Reads in flight, by request id.
    fetches: BTreeMap<u64, Fetching>,
    /// The read in flight per stream key.
    by_key: BTreeMap<String, u64>,
}

impl StreamRequests {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Requests in flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.publishes.len() + self.fetches.len()
    }
}

/// How a stream can be answered on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// From the local copy (outside a cluster: the memory broker itself).
    Local,
    /// Read the shared stream first.
    Fetch,
    /// Neither: the broker is down and there is no copy.
    Unavailable,
}

impl Engine {
    /// The history settings of `channel` when it is a stream shared by the cluster.
    pub(super) fn cluster_history(&self, channel: &str) -> Option<HistoryConfig> {
        self.cluster.as_ref()?;
        self.namespace(channel).and_then(|(n, _)| n.history)
    }

    /// How the stream keyed `key` can be answered (`may_fetch`: false once it was read).
    pub(super) fn stream_access(&mut self, now: Millis, key: &str, may_fetch: bool) -> Access {
        let Some(c) = self.cluster.as_ref() else {
            return Access::Local;
        };
        let up = c.up;
        self.broker.prune(key, now);
        if self.broker.is_synced(key) {
            Access::Local
        } else if up && may_fetch {
            Access::Fetch
        } else if self.broker.contains(key) {
            Access::Local
        } else {
            Access::Unavailable
        }
    }

    /// The error for [`Access::Unavailable`].
    pub(super) fn stream_unavailable() -> (ErrorCode, String) {
        (ErrorCode::Unavailable, STREAM_UNAVAILABLE.to_string())
    }

    fn stream_spec(&mut self, key: String, cfg: HistoryConfig) -> StreamSpec {
        StreamSpec {
            key,
            size: cfg.size,
            ttl_ms: cfg.ttl_ms,
            meta_ttl_ms: cfg.meta_ttl_ms,
            epoch: self.random_id(8),
        }
    }

    /// Ask the shared broker to order a publication of a stream (the caller checked
    /// the broker is up). `waiter` is answered once it is ordered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cluster_append(
        &mut self,
        now: Millis,
        tenant: Option<&str>,
        channel: &str,
        from: String,
        data: Option<Value>,
        resource_too: bool,
        cfg: HistoryConfig,
        waiter: Option<Waiting>,
    ) {
        let key = crate::tenant::scoped(tenant, channel).into_owned();
        let stream = self.stream_spec(key, cfg);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let request = waiter.map(|w| {
            let id = c.streams.id();
            c.streams.publishes.insert(id, w);
            id
        });
        let node = c.node.clone();
        let publication = StreamPublication {
            node: node.clone(),
            request,
            tenant: tenant.map(str::to_string),
            channel: channel.to_string(),
            from,
            data,
            timestamp: iso8601(now),
            resource_too,
            offset: 0,
            epoch: String::new(),
        };
        self.actions.push_back(Action::Cluster {
            message: Box::new(ClusterMessage::Append {
                node,
                stream,
                publication,
            }),
        });
    }

    /// Read the shared stream keyed `key`, then run `waiter` again (one read per stream
    /// in flight: later waiters join it).
    pub(super) fn cluster_fetch(&mut self, key: String, cfg: HistoryConfig, waiter: Waiting) {
        if let Some(c) = self.cluster.as_mut() {
            if let Some(id) = c.streams.by_key.get(&key).copied() {
                if let Some(f) = c.streams.fetches.get_mut(&id) {
                    f.waiters.push(waiter);
                    return;
                }
            }
        }
        let stream = self.stream_spec(key.clone(), cfg);
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let request = c.streams.id();
        c.streams.by_key.insert(key.clone(), request);
        c.streams.fetches.insert(
            request,
            Fetching {
                key,
                cfg,
                waiters: vec![waiter],
            },
        );
        let node = c.node.clone();
        self.actions.push_back(Action::Cluster {
            message: Box::new(ClusterMessage::Fetch {
                node,
                request,
                stream,
            }),
        });
    }

    /// Server-API `publish` and `history` on a shared stream: answered once the broker
    /// has ordered or read it. Returns the other commands untouched.
    pub(super) fn cluster_stream_command(
        &mut self,
        now: Millis,
        tag: u64,
        cmd: Command,
    ) -> Option<Command> {
        match cmd {
            Command::Publish {
                channel,
                data,
                tenant,
            } if self.cluster_history(&channel).is_some() => {
                let cfg = self.cluster_history(&channel)?;
                let checked = self
                    .check_name("channel", &channel)
                    .map_err(|m| err(ErrorCode::InvalidMessage, m))
                    .and_then(|()| self.cluster_gate().map_err(|(c, m)| err(c, m)));
                if let Err(e) = checked {
                    self.actions.push_back(Action::CommandResult {
                        tag,
                        result: Err(e),
                    });
                    return None;
                }
                let resource_too = self
                    .config
                    .resources
                    .get(&channel)
                    .is_some_and(|r| r.publish);
                let waiter = Waiting::CommandPublish { tag };
                self.cluster_append(
                    now,
                    tenant.as_deref(),
                    &channel,
                    "server".into(),
                    data,
                    resource_too,
                    cfg,
                    Some(waiter),
                );
                None
            }
            Command::History {
                ref channel,
                ref tenant,
                ..
            } if self.cluster_history(channel).is_some()
                && self.check_name("channel", channel).is_ok() =>
            {
                let cfg = self.cluster_history(channel)?;
                let key = crate::tenant::scoped(tenant.as_deref(), channel).into_owned();
                if self.stream_access(now, &key, true) != Access::Fetch {
                    return Some(cmd);
                }
                self.cluster_fetch(key, cfg, Waiting::Command { tag, command: cmd });
                None
            }
            other => Some(other),
        }
    }

    /// A publication the shared broker ordered (from any node, this one included).
    pub(super) fn take_sequenced(&mut self, now: Millis, p: StreamPublication) {
        let key = crate::tenant::scoped(p.tenant.as_deref(), &p.channel).into_owned();
        if let Some(cfg) = self.cluster_history(&p.channel) {
            let json = publication_json(p.offset, &p.from, p.data.as_ref(), &p.timestamp);
            if !self.broker.take(&key, cfg, now, p.offset, &p.epoch, json) {
                return;
            }
        }
        self.deliver_sequenced(p);
    }

    /// Deliver an ordered publication to this node's subscribers and answer its
    /// publisher if it waits here.
    fn deliver_sequenced(&mut self, p: StreamPublication) {
        self.metrics.history_publications += 1;
        let waiter = match self.cluster.as_mut() {
            Some(c) if c.node == p.node => p.request.and_then(|r| c.streams.publishes.remove(&r)),
            _ => None,
        };
        let exclude = match &waiter {
            Some(Waiting::Publish { conn, .. }) => self.by_conn.get(conn).copied(),
            _ => None,
        };
        let position = StreamPosition {
            offset: p.offset,
            epoch: Arc::from(p.epoch.as_str()),
        };
        let delivered = self.fanout_publication(
            exclude,
            p.tenant.as_deref(),
            &p.channel,
            p.from,
            p.data,
            p.resource_too,
            p.timestamp,
            Some(&position),
        );
        match waiter {
            Some(Waiting::Publish { conn, channel, rid }) => {
                if let Some(slot) = self.live_slot(conn) {
                    let msg = ServerMessage::Published {
                        channel,
                        delivered,
                        request_id: rid,
                    };
                    self.send(slot, &msg);
                }
            }
            Some(Waiting::CommandPublish { tag }) => {
                let result = json!({
                    "delivered": delivered,
                    "offset": position.offset,
                    "epoch": &*position.epoch,
                });
                self.actions.push_back(Action::CommandResult {
                    tag,
                    result: Ok(result),
                });
            }
            _ => {}
        }
    }

    /// The answer to a [`ClusterMessage::Fetch`].
    pub(super) fn fetched(
        &mut self,
        now: Millis,
        request: u64,
        result: Result<FetchedStream, String>,
    ) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let Some(f) = c.streams.fetches.remove(&request) else {
            return;
        };
        if c.streams.by_key.get(&f.key) == Some(&request) {
            c.streams.by_key.remove(&f.key);
        }
        match result {
            Ok(stream) => {
                let entries = stream
                    .publications
                    .iter()
                    .map(|p| {
                        let json =
                            publication_json(p.offset, &p.from, p.data.as_ref(), &p.timestamp);
                        (p.offset, json)
                    })
                    .collect();
                let delivered = self
                    .broker
                    .fill(&f.key, f.cfg, now, &stream.epoch, stream.offset, entries)
                    .unwrap_or(0);
                // What this node had not delivered yet reaches its subscribers now (the
                // later copy from the bus is then a duplicate).
                for p in stream.publications {
                    if p.offset > delivered && p.offset <= stream.offset {
                        self.deliver_sequenced(p);
                    }
                }
            }
            Err(e) => log::warn!("cluster: reading stream `{}` failed: {e}", f.key),
        }
        for w in f.waiters {
            self.resume(now, w);
        }
    }

    /// Run a request that waited for a read again, without reading again.
    fn resume(&mut self, now: Millis, w: Waiting) {
        match w {
            Waiting::Subscribe {
                conn,
                channel,
                since,
                rid,
            } => {
                if let Some(slot) = self.live_slot(conn) {
                    self.subscribe_channel_at(now, slot, channel, since, rid, false);
                }
            }
            Waiting::History {
                conn,
                channel,
                limit,
                since,
                reverse,
                rid,
            } => {
                if let Some(slot) = self.live_slot(conn) {
                    self.history_at(now, slot, channel, limit, since, reverse, rid, false);
                }
            }
            Waiting::Command { tag, command } => {
                let result = self.immediate_command(now, command);
                self.actions
                    .push_back(Action::CommandResult { tag, result });
            }
            Waiting::Publish { conn, rid, .. } => {
                if let Some(slot) = self.live_slot(conn) {
                    self.send_error(slot, ErrorCode::Unavailable, UNCONFIRMED, rid);
                }
            }
            Waiting::CommandPublish { tag } => {
                self.actions.push_back(Action::CommandResult {
                    tag,
                    result: Err(err(ErrorCode::Unavailable, UNCONFIRMED)),
                });
            }
        }
    }

    /// The broker became unreachable: copies are no longer synced, reads in flight are
    /// answered from the copies (or refused), publications in flight are reported
    /// unconfirmed.
    pub(super) fn streams_disconnected(&mut self, now: Millis) {
        self.broker.unsync_all();
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let requests = std::mem::take(&mut c.streams);
        let next = requests.next;
        c.streams.next = next;
        for (_, w) in requests.publishes {
            self.resume(now, w);
        }
        for (_, f) in requests.fetches {
            for w in f.waiters {
                self.resume(now, w);
            }
        }
    }
}
