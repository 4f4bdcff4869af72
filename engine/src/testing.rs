//! The test harness shared by the engine's unit tests and its integration tests
//! (feature `testing`): one engine, a clock, and a tiny host that answers host calls
//! (storage from a [`MemoryStore`], guards, key fetches and application handlers from
//! scripted answers) or hands them to the test, plus the helpers every test reads
//! actions with (frames sent to a connection, rejections, closes, command results).
//!
//! Not part of the engine's API: test support only, never enabled in hosts.

use serde_json::{json, Value};

use crate::app::HandlerResponse;
use crate::hostcall::{FetchResponse, GuardDecision, HostRequest, HostResult, StoreOutcome};
use crate::store::{MemoryStore, RecordStore};
use crate::{
    Action, ApiMisuse, Command, CommandError, Config, ConnId, Engine, Frame, InFrame, Input,
    Millis, OpId, UpgradeRequest,
};

/// The tests' start time (epoch ms): 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;

/// A test's view of every action the harness drains ([`Harness::observe`]).
pub type Observer = Box<dyn FnMut(&Action)>;

/// The tag [`Harness::cmd`] gives its commands.
pub const CMD_TAG: u64 = 9;

/// An engine driven by a test: inputs at [`Harness::now`], every action drained and the
/// engine's invariants checked after each input.
///
/// By default host calls come back to the test in the returned actions (it answers them
/// with [`Harness::complete`] or [`Input::Completed`]). With
/// [`Harness::answer_calls`] set, the harness answers each call as it comes: storage
/// from [`Harness::store`], guards with [`Harness::guard`] (each call recorded in
/// [`Harness::guard_calls`]), key fetches with [`Harness::fetch`], handlers with
/// [`Harness::handler`]; the answers' actions follow in the same list.
pub struct Harness {
    /// The engine.
    pub e: Engine,
    /// The current time (epoch ms).
    pub now: u64,
    /// Answers storage calls when [`Harness::answer_calls`] is set.
    pub store: MemoryStore,
    /// Answer host calls at once (otherwise they are returned, and kept in
    /// [`Harness::held`]).
    pub answer_calls: bool,
    /// Host calls not answered (while [`Harness::answer_calls`] is off), in order.
    pub held: Vec<(OpId, HostRequest)>,
    /// How a host guard call is answered, from its context (`{user, filter, data, ...}`).
    pub guard: Box<dyn FnMut(&Value) -> GuardDecision>,
    /// Host guard calls answered: `{"action": ..., "context": ...}`.
    pub guard_calls: Vec<Value>,
    /// The answer to key-source fetches.
    pub fetch: FetchResponse,
    /// How application handler calls are answered.
    pub handler: Box<dyn FnMut(&HostRequest) -> HandlerResponse>,
    /// Sees every action, in order, as the harness drains it.
    pub observe: Option<Observer>,
    /// The peer address [`Harness::open`] uses for connection `conn`.
    pub peer: fn(u64) -> String,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("now", &self.now)
            .field("answer_calls", &self.answer_calls)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// An engine from this config (it must be valid), seed 7, at [`T0`].
    pub fn new(cfg: Value) -> Harness {
        Harness::with_seed(cfg, 7)
    }

    /// An engine from this config (it must be valid) and id seed, at [`T0`].
    pub fn with_seed(cfg: Value, seed: u64) -> Harness {
        let config = Config::from_value(cfg).expect("valid test config");
        Harness::from_engine(Engine::with_seed(config, seed).unwrap())
    }

    /// Drive an engine built by the test.
    pub fn from_engine(e: Engine) -> Harness {
        Harness {
            e,
            now: T0,
            store: MemoryStore::new(),
            answer_calls: false,
            held: Vec::new(),
            guard: Box::new(|_| GuardDecision::Allow),
            guard_calls: Vec::new(),
            fetch: FetchResponse::default(),
            handler: Box::new(|_| HandlerResponse::failed("no handlers in these tests")),
            observe: None,
            peer: |_| "10.0.0.1".into(),
        }
    }

    /// Answer host guard calls with `decision` from now on.
    pub fn guard_answers(&mut self, decision: GuardDecision) {
        self.guard = Box::new(move |_| decision.clone());
    }

    /// Feed `input` at [`Harness::now`]; return every action (and, when the harness
    /// answers calls, the actions of the answers, after the batch they follow:
    /// [`AnswerOrder::AfterBatch`]).
    pub fn input(&mut self, input: Input<'_>) -> Vec<Action> {
        let now = Millis(self.now);
        let mut turn = Turn::start(&mut self.e, now, input, AnswerOrder::AfterBatch);
        turn.misuse().expect("no API misuse");
        while let Some(action) = turn.next_action() {
            if let Some(observe) = &mut self.observe {
                observe(action);
            }
            if let Action::Call { op, request, .. } = action {
                let op = *op;
                if self.answer_calls {
                    let result = self.answer(request);
                    turn.complete(&mut self.e, op, result)
                        .expect("no API misuse");
                } else {
                    self.held.push((op, request.clone()));
                }
            }
        }
        let out = turn.finish();
        self.e.check_invariants().unwrap();
        out
    }

    /// The harness's answer to a host call (as [`Harness::answer_calls`] gives it).
    pub fn answer(&mut self, request: &HostRequest) -> HostResult {
        match request {
            HostRequest::Store(r) => HostResult::Store(self.store.apply(r)),
            HostRequest::Guard {
                action, context, ..
            } => {
                let context = serde_json::to_value(context).unwrap();
                self.guard_calls
                    .push(json!({"action": action, "context": context}));
                HostResult::Guard((self.guard)(&context))
            }
            HostRequest::Fetch(_) => HostResult::Fetch(self.fetch.clone()),
            HostRequest::Message(_) | HostRequest::Hook(_) | HostRequest::Intercept(_) => {
                HostResult::Handler(Box::new((self.handler)(request)))
            }
        }
    }

    /// Offer an upgrade request as connection `conn`.
    pub fn open_req(&mut self, conn: u64, request: UpgradeRequest) -> Vec<Action> {
        self.input(Input::Open {
            conn: ConnId(conn),
            request,
        })
    }

    /// Open connection `conn` (client id `c{conn}`) on `/` with this query; asserts it
    /// is accepted and returns its first frame (the welcome).
    pub fn open(&mut self, conn: u64, query: &str) -> Value {
        let peer = (self.peer)(conn);
        let acts = self.open_req(conn, request("/", query, &[], &peer, &format!("c{conn}")));
        assert!(
            matches!(acts[0], Action::Accept { .. }),
            "expected accept, got {acts:?}"
        );
        frames(&acts, conn).remove(0)
    }

    /// Send any text frame on `conn`.
    pub fn frame(&mut self, conn: u64, text: &str) -> Vec<Action> {
        self.input(Input::Frame {
            conn: ConnId(conn),
            frame: InFrame::Text(text),
        })
    }

    /// Send a JSON message on `conn`.
    pub fn send(&mut self, conn: u64, msg: Value) -> Vec<Action> {
        self.frame(conn, &msg.to_string())
    }

    /// Send a JSON message; return the frames the sender got.
    pub fn ask(&mut self, conn: u64, msg: Value) -> Vec<Value> {
        let acts = self.send(conn, msg);
        frames(&acts, conn)
    }

    /// Run a server-API command (tag [`CMD_TAG`]); return its result and every action.
    pub fn cmd(&mut self, command: Command) -> (Result<Value, CommandError>, Vec<Action>) {
        let acts = self.input(Input::Command {
            tag: CMD_TAG,
            command,
        });
        let result = command_result(&acts, CMD_TAG).expect("a command result");
        (result, acts)
    }

    /// Move the clock to `t` and feed [`Input::Timeout`].
    pub fn advance_to(&mut self, t: u64) -> Vec<Action> {
        self.now = t;
        self.input(Input::Timeout)
    }

    /// The connection closed (code 1000).
    pub fn closed(&mut self, conn: u64) -> Vec<Action> {
        self.input(Input::Closed {
            conn: ConnId(conn),
            code: Some(1000),
        })
    }

    /// Answer storage call `op` with `outcome`.
    pub fn complete(&mut self, op: OpId, outcome: StoreOutcome) -> Vec<Action> {
        self.input(Input::Completed {
            op,
            result: HostResult::Store(outcome),
        })
    }
}

/// Feed `input` to `e` at `now` (epoch ms); every action it queued, after checking its
/// invariants.
pub fn run(e: &mut Engine, now: u64, input: Input<'_>) -> Vec<Action> {
    e.handle(Millis(now), input).expect("no API misuse");
    let out = e.drain_actions().collect();
    e.check_invariants().unwrap();
    out
}

/// Where the actions of a host call's answer go among the actions of a [`Turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOrder {
    /// After every action already queued: the order a host that answers each call when
    /// it has read the whole batch sees (the engine's unit tests).
    AfterBatch,
    /// Right after the call they answer (depth first): the order the conformance vectors
    /// record, where a call's outcome reads next to the call.
    AfterCall,
}

/// One input and every action it leads to, with host calls answered by the caller as
/// they are read: the loop the test [`Harness`] and the conformance runner share.
///
/// ```ignore
/// let mut turn = Turn::start(&mut engine, now, input, AnswerOrder::AfterCall);
/// while let Some(action) = turn.next_action() {
///     if let Action::Call { op, request, .. } = action {
///         let (op, result) = (*op, answer(request));
///         turn.complete(&mut engine, op, result)?;
///     }
/// }
/// let actions = turn.finish();
/// ```
#[derive(Debug)]
pub struct Turn {
    now: Millis,
    order: AnswerOrder,
    actions: Vec<Action>,
    /// The index of the next action [`Turn::next_action`] reads.
    next: usize,
    misuse: Option<ApiMisuse>,
}

impl Turn {
    /// Feed `input` to `engine` at `now` and queue the actions it produced. An API misuse
    /// is kept (see [`Turn::misuse`]); the actions queued before it are still read.
    pub fn start(engine: &mut Engine, now: Millis, input: Input<'_>, order: AnswerOrder) -> Turn {
        let misuse = engine.handle(now, input).err();
        Turn {
            now,
            order,
            actions: engine.drain_actions().collect(),
            next: 0,
            misuse,
        }
    }

    /// The API misuse the input was refused for, if it was.
    pub fn misuse(&self) -> Result<(), ApiMisuse> {
        self.misuse.clone().map_or(Ok(()), Err)
    }

    /// The next action not read yet, in order.
    pub fn next_action(&mut self) -> Option<&Action> {
        let action = self.actions.get(self.next)?;
        self.next += 1;
        Some(action)
    }

    /// Answer host call `op` (the caller read it with [`Turn::next_action`]): its
    /// completion's actions join the turn where [`AnswerOrder`] puts them.
    pub fn complete(
        &mut self,
        engine: &mut Engine,
        op: OpId,
        result: HostResult,
    ) -> Result<(), ApiMisuse> {
        let handled = engine.handle(self.now, Input::Completed { op, result });
        let more = engine.drain_actions();
        match self.order {
            AnswerOrder::AfterBatch => self.actions.extend(more),
            AnswerOrder::AfterCall => {
                let at = self.next;
                self.actions.splice(at..at, more);
            }
        }
        handled
    }

    /// Every action of the turn, in the order read.
    pub fn finish(self) -> Vec<Action> {
        self.actions
    }
}

/// An upgrade request.
pub fn request(
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    peer: &str,
    client: &str,
) -> UpgradeRequest {
    UpgradeRequest {
        path: path.into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        peer: peer.into(),
        client_id: client.into(),
    }
}

/// Frames sent to `conn` (directly or in a `SendMany`), in order.
pub fn sent(actions: &[Action], conn: u64) -> impl Iterator<Item = &Frame> {
    actions.iter().filter_map(move |a| match a {
        Action::Send { conn: c, frame } if c.0 == conn => Some(frame),
        Action::SendMany { conns, frame } if conns.contains(&ConnId(conn)) => Some(frame),
        _ => None,
    })
}

/// Text frames sent to `conn` (directly or in a `SendMany`), in order.
pub fn texts(actions: &[Action], conn: u64) -> Vec<String> {
    sent(actions, conn)
        .map(|f| f.as_text().expect("a text frame").to_string())
        .collect()
}

/// Frames sent to `conn` (directly or in a `SendMany`), parsed as JSON.
pub fn frames(actions: &[Action], conn: u64) -> Vec<Value> {
    texts(actions, conn)
        .iter()
        .map(|t| serde_json::from_str(t).expect("a JSON frame"))
        .collect()
}

/// The first action, which must be a rejection: its status and JSON body.
pub fn rejection(actions: &[Action]) -> (u16, Value) {
    match &actions[0] {
        Action::Reject { status, body, .. } => (*status, serde_json::from_str(body).unwrap()),
        other => panic!("expected rejection, got {other:?}"),
    }
}

/// The close the engine asked for on `conn`, if any: code and reason.
pub fn close_of(actions: &[Action], conn: u64) -> Option<(u16, String)> {
    actions.iter().find_map(|a| match a {
        Action::Close {
            conn: c,
            code,
            reason,
        } if c.0 == conn => Some((*code, reason.clone())),
        _ => None,
    })
}

/// The result of the command tagged `tag`, if among `actions`.
pub fn command_result(actions: &[Action], tag: u64) -> Option<Result<Value, CommandError>> {
    actions.iter().find_map(|a| match a {
        Action::CommandResult { tag: t, result } if *t == tag => Some(result.clone()),
        _ => None,
    })
}

/// How many host calls `actions` holds.
pub fn calls(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Call { .. }))
        .count()
}

/// `Deref`/`DerefMut` to [`Harness`] for a test's own wrapper `struct $name(Harness)`,
/// so the wrapper adds (or shadows) only the methods its tests read differently.
#[macro_export]
#[doc(hidden)]
macro_rules! deref_harness {
    ($name:ident) => {
        impl std::ops::Deref for $name {
            type Target = $crate::testing::Harness;
            fn deref(&self) -> &$crate::testing::Harness {
                &self.0
            }
        }
        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $crate::testing::Harness {
                &mut self.0
            }
        }
    };
}
