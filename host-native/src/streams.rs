//! Durable channel streams: the engine's memory broker kept in a SQLite file, so channel
//! history, offsets and epochs survive a restart (`kill -9` included) on the native host.
//!
//! # Design
//!
//! The engine stays pure. With [`engine::Engine::set_persistent_streams`] its broker
//! records every change to a stream (a publication appended, one trimmed by size or TTL,
//! the stream's position, a forgotten stream) as key/value operations
//! ([`engine::broker::KvOp`]), the same ones the Cloudflare host applies to Durable Object
//! storage. The actor takes them after each engine step and hands them to the
//! [`StreamWriter`] thread, which applies them in one SQLite transaction
//! (`synchronous=FULL`: fsynced before the commit returns). At start the pairs are read
//! back and given to [`engine::Engine::restore_streams`].
//!
//! # Ordering: nothing is sent before it is durable
//!
//! The frames of a step that changed a stream (the `message` fan-out with its `offset`,
//! the publisher's `published`) are held by the actor ([`StreamGate`]) until the write
//! holding that change has committed, and every later action waits behind them, so the
//! order of actions is unchanged. A client can therefore only hold an offset the file
//! already holds: after a crash it reconnects with `since` and gets `recovered: true`.
//! Writes are group-committed: while one batch is being written, the next steps' changes
//! accumulate and go out together as the next batch (one fsync for many publications).
//!
//! # Failure
//!
//! A batch that cannot be written (disk full, I/O error) is logged (error level) and
//! counted in `switchboard_stream_write_failures_total`; its held frames are then sent
//! (availability over durability: the server keeps working). Publications lost that way
//! are reported honestly after a restart: a client holding one of their offsets gets
//! `recovered: false`, never a gap.
//!
//! # Layout
//!
//! `DATA_DIR/streams.db` (separate from `switchboard.db`, so stream writes never wait for
//! the record store's write lock), one table `streams(key TEXT PRIMARY KEY, value TEXT)`
//! holding the broker's pairs (`stream:<name>` the position, `stream:<name>#<offset>` a
//! publication; see [`engine::broker`]).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use engine::broker::KvOp;
use engine::Action;
use rusqlite::{params, Connection};
use tokio::sync::mpsc;

/// File name of the stream database inside the data directory.
pub const STREAMS_FILE: &str = "streams.db";

/// The SQLite file holding the broker's key/value pairs.
#[derive(Debug)]
pub struct StreamDb {
    conn: Connection,
}

impl StreamDb {
    /// Open (or create) `DATA_DIR/streams.db`.
    pub fn open_dir(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join(STREAMS_FILE);
        let conn = Connection::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        Self::from_connection(conn)
            .map_err(|e| anyhow::anyhow!("cannot prepare {}: {e}", path.display()))
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> rusqlite::Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(conn: Connection) -> rusqlite::Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS streams (
                key TEXT PRIMARY KEY NOT NULL,
                value TEXT NOT NULL
            ) WITHOUT ROWID;",
        )?;
        Ok(Self { conn })
    }

    /// Every stored pair, in key order (for [`engine::Engine::restore_streams`]).
    pub fn load(&self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM streams ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    /// Apply `ops` in one transaction. Operations on the same key collapse to the last
    /// one (a position rewritten by every publication of a batch is written once).
    pub fn apply(&mut self, ops: &[KvOp]) -> rusqlite::Result<()> {
        let mut last: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for op in ops {
            match op {
                KvOp::Put { key, value } => last.insert(key, Some(value)),
                KvOp::Delete { key } => last.insert(key, None),
            };
        }
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO streams (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM streams WHERE key = ?1")?;
            for (key, value) in last {
                match value {
                    Some(v) => put.execute(params![key, v])?,
                    None => del.execute(params![key])?,
                };
            }
        }
        tx.commit()
    }
}

/// The outcome of one batch, sent back to the actor.
pub type WriteDone = Result<(), String>;

/// The thread that writes batches to the [`StreamDb`], one at a time, in order.
#[derive(Debug)]
pub struct StreamWriter {
    tx: std::sync::mpsc::Sender<Vec<KvOp>>,
}

/// Joins the writer thread (after the actor, which owns the [`StreamWriter`], ended).
#[derive(Debug)]
pub struct StreamWriterThread {
    thread: std::thread::JoinHandle<()>,
}

impl StreamWriterThread {
    /// Wait until every queued batch is written and the database is closed.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

impl StreamWriter {
    /// Start the thread owning `db`; each batch's outcome goes to `done`.
    pub fn spawn(
        mut db: StreamDb,
        done: mpsc::UnboundedSender<WriteDone>,
    ) -> std::io::Result<(StreamWriter, StreamWriterThread)> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<KvOp>>();
        let thread = std::thread::Builder::new()
            .name("switchboard-streams".into())
            .spawn(move || {
                // Ends when the actor drops its `StreamWriter`, after the queued batches.
                while let Ok(ops) = rx.recv() {
                    let outcome = db.apply(&ops).map_err(|e| e.to_string());
                    let _ = done.send(outcome);
                }
                drop(db);
            })?;
        Ok((StreamWriter { tx }, StreamWriterThread { thread }))
    }

    /// Queue a batch. False when the thread has stopped.
    pub fn submit(&self, ops: Vec<KvOp>) -> bool {
        self.tx.send(ops).is_ok()
    }
}

/// The actor's side: stream changes not yet durable and the actions waiting for them
/// (see the module docs).
#[derive(Debug)]
pub struct StreamGate {
    writer: StreamWriter,
    /// A batch is being written.
    inflight: bool,
    /// Changes not yet submitted (the next batch).
    staged: Vec<KvOp>,
    /// Actions waiting for the batch being written.
    held_inflight: VecDeque<Action>,
    /// Actions waiting for the staged changes (they come after `held_inflight`).
    held_staged: VecDeque<Action>,
}

impl StreamGate {
    /// A gate writing through `writer`.
    pub fn new(writer: StreamWriter) -> Self {
        Self {
            writer,
            inflight: false,
            staged: Vec::new(),
            held_inflight: VecDeque::new(),
            held_staged: VecDeque::new(),
        }
    }

    /// Add the changes of an engine step: the step's actions (and all later ones) wait
    /// for them.
    pub fn stage(&mut self, ops: Vec<KvOp>) {
        if self.staged.is_empty() {
            self.staged = ops;
        } else {
            self.staged.extend(ops);
        }
    }

    /// `action` if it may run now, or None when it was held behind pending writes.
    pub fn admit(&mut self, action: Action) -> Option<Action> {
        if !self.staged.is_empty() {
            self.held_staged.push_back(action);
            None
        } else if self.inflight {
            self.held_inflight.push_back(action);
            None
        } else {
            Some(action)
        }
    }

    /// Submit the staged changes if no batch is being written. When the writer thread is
    /// gone the held actions are released (returned) right away.
    pub fn flush(&mut self) -> Vec<Action> {
        if self.inflight || self.staged.is_empty() {
            return Vec::new();
        }
        let ops = std::mem::take(&mut self.staged);
        let held = std::mem::take(&mut self.held_staged);
        if self.writer.submit(ops) {
            self.inflight = true;
            self.held_inflight = held;
            Vec::new()
        } else {
            tracing::error!("the stream writer has stopped; channel history is not saved");
            held.into()
        }
    }

    /// The batch being written finished: the actions to run now, in order (the next
    /// batch is submitted first, so later changes keep waiting).
    pub fn written(&mut self) -> Vec<Action> {
        self.inflight = false;
        let mut ready: Vec<Action> = std::mem::take(&mut self.held_inflight).into();
        ready.extend(self.flush());
        ready
    }

    /// Forget held actions and staged changes (the engine was replaced).
    pub fn clear(&mut self) {
        self.staged.clear();
        self.held_inflight.clear();
        self.held_staged.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> KvOp {
        KvOp::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_batch_keeps_the_last_operation_per_key() {
        let mut db = StreamDb::open_in_memory().unwrap();
        db.apply(&[put("a", "1"), put("b", "1"), put("a", "2")])
            .unwrap();
        db.apply(&[
            KvOp::Delete { key: "b".into() },
            put("c", "1"),
            KvOp::Delete { key: "c".into() },
        ])
        .unwrap();
        assert_eq!(db.load().unwrap(), vec![("a".into(), "2".into())]);
    }

    #[test]
    fn the_file_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StreamDb::open_dir(dir.path()).unwrap();
        db.apply(&[put("stream:x", "{}")]).unwrap();
        drop(db);
        let db = StreamDb::open_dir(dir.path()).unwrap();
        assert_eq!(db.load().unwrap().len(), 1);
    }

    fn pong(n: u64) -> Action {
        Action::Ping {
            conn: engine::ConnId(n),
        }
    }

    fn conn_of(a: &Action) -> u64 {
        match a {
            Action::Ping { conn } => conn.0,
            _ => u64::MAX,
        }
    }

    #[test]
    fn actions_wait_for_their_write_and_keep_their_order() {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let (writer, thread) =
            StreamWriter::spawn(StreamDb::open_in_memory().unwrap(), done_tx).expect("thread");
        let mut gate = StreamGate::new(writer);
        // No change: runs now.
        assert!(gate.admit(pong(1)).is_some());
        // A step with a change: its action and every later one wait.
        gate.stage(vec![put("stream:a", "{}")]);
        assert!(gate.admit(pong(2)).is_none());
        assert!(gate.flush().is_empty());
        assert!(gate.admit(pong(3)).is_none());
        gate.stage(vec![put("stream:a#1", "{}")]);
        assert!(gate.admit(pong(4)).is_none());
        assert!(gate.flush().is_empty(), "one batch at a time");
        done_rx.blocking_recv().unwrap().unwrap();
        let first: Vec<u64> = gate.written().iter().map(conn_of).collect();
        assert_eq!(first, vec![2, 3], "released with the first batch");
        assert!(
            gate.admit(pong(5)).is_none(),
            "the second batch is in flight"
        );
        done_rx.blocking_recv().unwrap().unwrap();
        let second: Vec<u64> = gate.written().iter().map(conn_of).collect();
        assert_eq!(second, vec![4, 5]);
        assert!(gate.admit(pong(6)).is_some());
        drop(gate);
        thread.join();
    }
}
