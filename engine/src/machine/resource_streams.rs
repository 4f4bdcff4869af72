//! Resource streams: the change events of a resource that keeps history
//! (`resources.<name>.history`) go through the broker like a channel's publications.
//!
//! Every committed change the resource broadcasts (client writes, server writes,
//! `resourceChanged`, late completions of timed-out writes) is appended to the stream
//! [`stream_key`] *raw*: kind, record, previous record and time, before any per-subscriber
//! projection. Its `event` frames carry the `offset` the broker assigned and the stream's
//! `epoch`. A `subscribe {resource, since}` replays the changes after `since` through
//! the same projection a live event gets for that subscription: its events, its filter
//! (client AND guard-forced, before-or-after matching for updates), the `read` guard
//! (`$before` withheld where the old record may not be read) and protected-field
//! stripping; a change the subscription would not have received is simply absent.
//! The recovery is read in the same engine step that indexes the subscription, so a
//! change is either in `publications` or arrives live, never both or neither — also when
//! the subscribe waited for a host guard meanwhile (changes committed during that call
//! are in the stream by the time the subscription is registered).
//!
//! Resource streams live in the engine's one broker, so hosts persist them exactly as
//! they persist channel streams (`take_stream_ops` / `restore_streams`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Engine;
use crate::broker::{Publication, Since, StreamPosition};
use crate::config::ChangeKind;
use crate::filter::Filter;
use crate::guard::GuardAction;
use crate::namespace::HistoryConfig;
use crate::protocol::StreamState;
use crate::types::Millis;

/// The broker key of resource `resource`'s stream: a NUL, then `resource:<name>`.
/// Channel keys are a name without NUL, or `\0<tenant>\0<name>` (two NULs at least);
/// this key has exactly one (names of resources with history cannot contain NUL,
/// config validation), so no channel of any tenant can share a resource's stream.
pub(crate) fn stream_key(resource: &str) -> String {
    format!("{}resource:{resource}", crate::tenant::SEPARATOR)
}

/// One change as stored in a resource stream.
#[derive(Deserialize)]
struct StoredChange {
    offset: u64,
    event: ChangeKind,
    record: Value,
    #[serde(default)]
    previous: Option<Value>,
    timestamp: String,
}

fn change_json(
    offset: u64,
    kind: ChangeKind,
    record: &Value,
    previous: Option<&Value>,
    timestamp: &str,
) -> Box<RawValue> {
    let mut m = Map::new();
    m.insert("offset".into(), Value::from(offset));
    m.insert("event".into(), Value::from(kind.as_str()));
    m.insert("record".into(), record.clone());
    if let Some(p) = previous {
        m.insert("previous".into(), p.clone());
    }
    m.insert("timestamp".into(), Value::from(timestamp));
    raw(&Value::Object(m))
}

fn raw(v: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|e| {
        log::error!("resource stream: {e}");
        Box::<RawValue>::default()
    })
}

/// What one resource subscription receives: the parts of its registration recovery
/// needs.
pub(super) struct SubscriberView<'a> {
    /// The effective filter (client AND forced), `None` for everything.
    pub filter: Option<&'a Filter>,
    /// The guard-forced part alone.
    pub forced: Option<&'a Filter>,
    /// The events it asked for.
    pub events: &'a [ChangeKind],
}

/// Whether a subscription with `filter` (effective) and `forced` is sent a change of
/// `record` (after) / `previous` (before), and if so whether the forced filter admits
/// the record before it (else `$before` is withheld). The same rule as
/// [`crate::hub::Hub::change_recipients_visibility`], without its index shortcuts.
pub(super) fn sees_change(
    filter: Option<&Filter>,
    forced: Option<&Filter>,
    record: &Value,
    previous: Option<&Value>,
) -> Option<bool> {
    if let Some(f) = filter {
        if !f.matches(record) && !previous.is_some_and(|p| f.matches(p)) {
            return None;
        }
    }
    match forced {
        None => Some(true),
        Some(g) if !g.matches(record) => None,
        Some(g) => Some(previous.is_none_or(|p| g.matches(p))),
    }
}

impl Engine {
    /// The history settings of `resource`, if it keeps a stream (`metaTtlMs` at least
    /// `ttlMs`, as for namespaces).
    pub(super) fn resource_history(&self, resource: &str) -> Option<HistoryConfig> {
        let mut h = self.config.resources.get(resource)?.history?;
        h.meta_ttl_ms = h.meta_ttl_ms.max(h.ttl_ms);
        Some(h)
    }

    /// Append a committed change to `resource`'s stream if it keeps one; the position
    /// the broker gave it.
    pub(super) fn append_change(
        &mut self,
        now: Millis,
        resource: &str,
        kind: ChangeKind,
        record: &Value,
        previous: Option<&Value>,
        timestamp: &str,
    ) -> Option<StreamPosition> {
        let cfg = self.resource_history(resource)?;
        let key = stream_key(resource);
        let epoch = self.epoch_for(now, &key);
        let p = self.broker.publish(
            &key,
            cfg,
            now,
            || epoch,
            |offset| change_json(offset, kind, record, previous, timestamp),
        );
        self.metrics.history_publications += 1;
        Some(p)
    }

    /// The stream part of `subscribed` for a new subscription of `slot` to `resource`:
    /// the position (resources with history), and with `since` the recovery outcome
    /// and the missed events as `view` would have received them.
    pub(super) fn resource_stream_state(
        &mut self,
        now: Millis,
        slot: usize,
        resource: &str,
        since: Option<Since>,
        view: &SubscriberView<'_>,
    ) -> Option<StreamState> {
        let Some(cfg) = self.resource_history(resource) else {
            return since.map(|_| StreamState {
                recovered: Some(false),
                offset: None,
                epoch: None,
                publications: Some(Vec::new()),
            });
        };
        let key = stream_key(resource);
        let epoch = self.epoch_for(now, &key);
        let Some(since) = since else {
            let p = self.broker.position(&key, cfg, now, || epoch);
            return Some(StreamState {
                recovered: None,
                offset: Some(p.offset),
                epoch: Some(p.epoch),
                publications: None,
            });
        };
        let r = self.broker.recover(&key, cfg, now, &since, || epoch);
        self.metrics.recoveries += 1;
        let projected = if r.recovered {
            self.project_changes(slot, resource, &r.publications, view)
        } else {
            None
        };
        if projected.is_none() {
            self.metrics.recoveries_failed += 1;
        }
        Some(StreamState {
            recovered: Some(projected.is_some()),
            offset: Some(r.position.offset),
            epoch: Some(r.position.epoch),
            publications: Some(projected.unwrap_or_default()),
        })
    }

    /// Stored changes as `view` receives them, each `{offset, event, data, timestamp}`;
    /// `None` if a stored change cannot be read (then nothing is claimed recovered).
    fn project_changes(
        &mut self,
        slot: usize,
        resource: &str,
        stored: &[Publication],
        view: &SubscriberView<'_>,
    ) -> Option<Vec<Publication>> {
        let protected = self
            .config
            .resources
            .get(resource)
            .map(|rc| rc.protected.clone())
            .unwrap_or_default();
        let cr = self.compiled(resource);
        let mut out = Vec::new();
        for p in stored {
            let c: StoredChange = match serde_json::from_str(p.0.get()) {
                Ok(c) => c,
                Err(e) => {
                    log::error!("resource stream `{resource}`: unreadable entry: {e}");
                    return None;
                }
            };
            if !view.events.contains(&c.event) {
                continue;
            }
            let Some(mut before_ok) =
                sees_change(view.filter, view.forced, &c.record, c.previous.as_ref())
            else {
                continue;
            };
            if cr.guards.contains_key(&GuardAction::Read) {
                if !self.can_read(slot, &cr, &c.record) {
                    continue;
                }
                if let Some(prev) = &c.previous {
                    before_ok = before_ok && self.can_read(slot, &cr, prev);
                }
            }
            let prev = if c.event == ChangeKind::Update && !before_ok {
                None
            } else {
                c.previous.as_ref()
            };
            let data = super::resources::event_data(c.event, &c.record, prev, &protected);
            let mut m = Map::new();
            m.insert("offset".into(), Value::from(c.offset));
            m.insert("event".into(), Value::from(c.event.as_str()));
            m.insert("data".into(), data);
            m.insert("timestamp".into(), Value::from(c.timestamp));
            out.push(Publication(Arc::from(raw(&Value::Object(m)))));
        }
        Some(out)
    }
}
