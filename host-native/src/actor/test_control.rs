//! The actor's side of the test control channel ([`crate::testctl`]): resets, the
//! clock, completions and injected host reports.

use engine::{ConnId, Engine, InFrame, Input, Millis, OpId};
use serde_json::Value;
use tokio::sync::mpsc;

use super::Actor;
use crate::clock::TestClock;
use crate::store::Completion;
use crate::test_session::{Injected, TestMsg};

impl Actor {
    /// A test control request (see [`crate::testctl`]).
    pub(super) fn test_message(
        &mut self,
        now: Millis,
        msg: TestMsg,
        completions: &mut mpsc::Receiver<Completion>,
    ) -> Result<Value, (u16, String)> {
        if matches!(msg, TestMsg::Reset(_)) && self.test.is_some() {
            // Frames of the old session still waiting in the turn's batch go out before
            // the 1001 close, as they would have without it (and what the engine sends
            // meanwhile is queued at once, not batched past the reset).
            self.release_batch_unbatched(now);
            self.batching = true;
        }
        let Some(test) = self.test.as_mut() else {
            return Err((403, "the test control channel is off".into()));
        };
        self.rearm = true;
        match msg {
            TestMsg::Reset(reset) => {
                let engine = Engine::with_seed(test.config.clone(), reset.seed)
                    .map_err(|e| (500, format!("cannot rebuild the engine: {e}")))?;
                test.hold = reset.hold;
                test.clock = reset.clock.map_or_else(TestClock::wall, TestClock::set);
                // Completions of the old engine's store calls (the store was swapped
                // after them) must not reach the new engine, whose op ids restart.
                while completions.try_recv().is_ok() {}
                for (_, peer) in self.peers.drain() {
                    peer.out.close(1001, "test reset");
                }
                self.commands.clear();
                self.engine = engine;
                self.engine.set_host_capabilities(self.host_capabilities());
                if let Some(gate) = self.streams.as_mut() {
                    gate.clear();
                    self.engine.set_persistent_streams(true);
                }
                Ok(serde_json::json!({"reset": true}))
            }
            TestMsg::Clock(set) => {
                test.clock = TestClock::set(set);
                Ok(serde_json::json!({"now": set.at}))
            }
            TestMsg::Complete(op, result) => {
                self.input(
                    now,
                    Input::Completed {
                        op: OpId(op),
                        result,
                    },
                );
                Ok(serde_json::json!({"completed": op}))
            }
            TestMsg::Inject(client_id, input) => {
                let conn = match &client_id {
                    None => ConnId(u64::MAX),
                    Some(id) => self
                        .peers
                        .iter()
                        .find(|(c, p)| {
                            p.accepted
                                && self
                                    .engine
                                    .snapshot(**c)
                                    .is_some_and(|s| s.client_id == *id)
                        })
                        .map(|(c, _)| *c)
                        .ok_or_else(|| {
                            (404, format!("no open connection with client id `{id}`"))
                        })?,
                };
                let input = match &input {
                    Injected::Backpressure { buffered } => Input::Backpressure {
                        conn,
                        buffered: *buffered,
                    },
                    Injected::Pong => Input::Pong { conn },
                    Injected::Closed { code } => Input::Closed { conn, code: *code },
                    Injected::Text { text } => Input::Frame {
                        conn,
                        frame: InFrame::Text(text),
                    },
                };
                self.input(now, input);
                Ok(serde_json::json!({"conn": client_id.map(|_| conn.0)}))
            }
        }
    }
}
