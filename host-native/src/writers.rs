//! Write threads: the second core (and more) for socket writes.
//!
//! The engine is single-threaded; the actor runs it and, at the end of each turn,
//! writes every connection the turn queued frames for ([`crate::actor::Actor`]). A
//! fan-out to many connections is mostly those writes: one vectored `write` per socket,
//! and on loopback each one also runs the receiver's TCP path. With write threads
//! (`server.writeThreads`) a turn that touched at least [`SPLIT_MIN`] connections keeps
//! one share of them and hands the others, in equal shares, to the threads, which write
//! them while the actor goes on deciding.
//!
//! Order is kept per connection: frames sit in the connection's [`Outbound`] queue and
//! every writer (the actor, a write thread, the connection task) takes them from its
//! front under the queue's lock, so whoever writes, the bytes go out in the order the
//! engine queued them. A connection that drains back under its limit is reported to the
//! actor like the connection task reports it ([`ToActor::Drained`]).

use std::sync::mpsc;
use std::sync::Arc;

use engine::ConnId;

use crate::mailbox::{ActorHandle, ToActor, WeakActorHandle};
use crate::outbound::Outbound;

/// Fewest connections touched in one turn for the actor to share their writes: below
/// it, handing them over costs more than writing them.
pub const SPLIT_MIN: usize = 64;

/// Most write threads `server.writeThreads` may ask for.
pub const MAX_THREADS: usize = 64;

/// The connections one turn hands to one write thread.
type Batch = Vec<(ConnId, Arc<Outbound>)>;

/// The running write threads. Dropping it closes their queues: each thread ends once
/// it wrote what it holds (writes never wait: a full socket is left to its connection
/// task). They are not joined: one may be waiting for room in the actor's queue, which
/// only the actor's end frees.
#[derive(Debug)]
pub struct Writers {
    queues: Vec<mpsc::Sender<Batch>>,
}

impl Writers {
    /// Start `n` threads; a connection that drains back under its limit is reported to
    /// `actor` (through a handle that does not keep it running).
    pub fn spawn(n: usize, actor: &ActorHandle) -> std::io::Result<Self> {
        let mut queues = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel::<Batch>();
            let actor = actor.downgrade();
            std::thread::Builder::new()
                .name(format!("switchboard-write-{i}"))
                .spawn(move || write_loop(&rx, &actor))?;
            queues.push(tx);
        }
        Ok(Self { queues })
    }

    /// Number of threads.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Hand most of `dirty` to the threads when it is worth it; returns the share the
    /// caller writes itself (all of it below [`SPLIT_MIN`]).
    pub fn share(&self, mut dirty: Batch) -> Batch {
        if self.queues.is_empty() || dirty.len() < SPLIT_MIN {
            return dirty;
        }
        let shares = self.queues.len() + 1;
        let each = dirty.len().div_ceil(shares);
        for queue in &self.queues {
            if dirty.len() <= each {
                break;
            }
            let batch = dirty.split_off(dirty.len() - each);
            if let Err(mpsc::SendError(batch)) = queue.send(batch) {
                // The thread is gone (it never exits before its queue closes, so
                // only a panic ends it): write its share here.
                dirty.extend(batch);
            }
        }
        dirty
    }
}

fn write_loop(queue: &mpsc::Receiver<Batch>, actor: &WeakActorHandle) {
    let mut drained = Vec::new();
    while let Ok(batch) = queue.recv() {
        // The whole batch first: waiting for room in the actor's queue must not hold
        // back the other connections' writes.
        for (conn, out) in batch {
            if let Some(buffered) = out.flush_now() {
                drained.push(ToActor::Drained { conn, buffered });
            }
        }
        for msg in drained.drain(..) {
            // Only fails once the actor stopped: nobody to tell.
            actor.blocking_send(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Batch {
        (0..n)
            .map(|i| (ConnId(i as u64), Arc::new(Outbound::new(8, 1 << 20, 1024))))
            .collect()
    }

    #[test]
    fn a_small_turn_is_written_by_the_actor_alone() {
        let (actor, _rx) = crate::mailbox::channel();
        let writers = Writers::spawn(2, &actor).unwrap();
        let kept = writers.share(batch(SPLIT_MIN - 1));
        assert_eq!(kept.len(), SPLIT_MIN - 1);
    }

    #[test]
    fn a_large_turn_is_shared_equally_and_the_actor_keeps_the_first_share() {
        let (actor, _rx) = crate::mailbox::channel();
        let writers = Writers::spawn(2, &actor).unwrap();
        let kept = writers.share(batch(300));
        assert_eq!(kept.len(), 100);
        assert!(kept.iter().enumerate().all(|(i, (c, _))| c.0 == i as u64));
    }
}
