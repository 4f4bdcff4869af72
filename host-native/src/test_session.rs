//! The test control channel's session: what the runner set (which host calls are held,
//! the clock, the served config a reset rebuilds the engine from), the events waiting
//! for it, and the messages the channel sends the actor ([`TestMsg`]).
//!
//! A leaf module of plain types: the HTTP side ([`crate::testctl`]), the server state
//! ([`crate::state`]), the actor's mailbox ([`crate::mailbox`]) and the actor share them
//! without depending on each other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use engine::{Action, HostResult, UpgradeRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::{ClockSet, TestClock};

/// Upgrade request header naming the client id to use (test control only).
pub const CLIENT_ID_HEADER: &str = "x-switchboard-test-client-id";

/// `reset` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reset {
    /// Seed of the new engine's id generator.
    pub seed: u64,
    /// Clock setting.
    #[serde(default)]
    pub clock: Option<ClockSet>,
    /// Records the fresh memory store starts with.
    #[serde(default)]
    pub store: BTreeMap<String, Vec<Value>>,
    /// Which host calls to hold.
    #[serde(default)]
    pub hold: Hold,
}

/// Which host calls are held for the channel instead of executed.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Hold {
    /// Guard calls (default true).
    pub guard: bool,
    /// Storage calls (default false: the store answers them).
    pub store: bool,
}

impl Default for Hold {
    fn default() -> Self {
        Hold {
            guard: true,
            store: false,
        }
    }
}

/// A host report the channel can inject.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Injected {
    /// `Input::Backpressure`.
    Backpressure {
        /// Bytes queued.
        buffered: u64,
    },
    /// `Input::Pong`.
    Pong,
    /// `Input::Closed`.
    Closed {
        /// Close code.
        #[serde(default)]
        code: Option<u16>,
    },
    /// A text frame.
    Text {
        /// The text.
        text: String,
    },
}

/// What the channel asks the actor.
#[derive(Debug)]
pub enum TestMsg {
    /// Swap in a fresh engine (the store was replaced before).
    Reset(Reset),
    /// Set the clock.
    Clock(ClockSet),
    /// Feed a completion.
    Complete(u64, HostResult),
    /// Feed a host report.
    Inject(Option<String>, Injected),
}

/// Events waiting for the runner, shared by the actor and the HTTP handlers.
#[derive(Debug, Default)]
pub struct Events {
    /// Bumped by every reset: results of commands sent before it are dropped.
    epoch: u64,
    queue: Vec<Value>,
}

/// State of the channel shared by the HTTP handlers and the actor.
#[derive(Debug, Default)]
pub struct Shared {
    events: Mutex<Events>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue an event.
    pub fn push(&self, event: Value) {
        self.lock().queue.push(event);
    }

    /// Queue an event unless a reset came since `epoch` ([`Shared::epoch`]).
    pub fn push_if(&self, epoch: u64, event: Value) {
        let mut e = self.lock();
        if e.epoch == epoch {
            e.queue.push(event);
        }
    }

    /// Forget every event; results of earlier commands are dropped from now on.
    pub fn clear(&self) {
        let mut e = self.lock();
        e.epoch += 1;
        e.queue.clear();
    }

    /// The current epoch (bumped by every [`Shared::clear`]).
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Take every queued event once there are at least `min`.
    pub fn take_if(&self, min: usize) -> Option<Vec<Value>> {
        let mut e = self.lock();
        (e.queue.len() >= min).then(|| std::mem::take(&mut e.queue))
    }
}

/// The actor's part of the channel.
#[derive(Debug)]
pub struct ActorTest {
    /// The served engine config (a reset builds a fresh engine from it).
    pub config: engine::Config,
    /// Events for the runner.
    pub shared: Arc<Shared>,
    /// Calls held for the runner.
    pub hold: Hold,
    /// The host clock.
    pub clock: TestClock,
}

impl ActorTest {
    /// A channel for an engine serving `config`.
    pub fn new(config: engine::Config, shared: Arc<Shared>) -> Self {
        ActorTest {
            config,
            shared,
            hold: Hold::default(),
            clock: TestClock::wall(),
        }
    }

    /// Report `action` (a call) to the runner instead of executing it, if held.
    pub fn hold_call(&self, action: &Action) -> bool {
        let Action::Call { request, .. } = action else {
            return false;
        };
        let held = match request {
            engine::HostRequest::Store(_) => self.hold.store,
            engine::HostRequest::Guard { .. } => self.hold.guard,
            // Key-source fetches are always performed (vectors answer them in-process).
            engine::HostRequest::Fetch(_) => false,
            // Application handlers, hooks and interceptors: the vector's scripted
            // handler answers them (`complete`).
            engine::HostRequest::Message(_)
            | engine::HostRequest::Hook(_)
            | engine::HostRequest::Intercept(_) => true,
        };
        if held {
            let action = serde_json::to_value(action).unwrap_or(Value::Null);
            self.shared.push(json!({"event": "call", "action": action}));
        }
        held
    }

    /// Apply the client id header of an upgrade (removed from the headers the engine
    /// sees).
    pub fn client_id(request: &mut UpgradeRequest) {
        if let Some(i) = request
            .headers
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(CLIENT_ID_HEADER))
        {
            let (_, id) = request.headers.remove(i);
            request.client_id = id;
        }
    }
}
