//! Record storage: the SQLite store and the thread that runs store operations off the
//! async reactor.
//!
//! # SQLite layout and durability
//!
//! One table, `records(resource TEXT, id TEXT, data TEXT, PRIMARY KEY(resource, id))`,
//! `data` holding the record as JSON. The database runs in WAL mode with
//! `synchronous=FULL`: every write is its own transaction and SQLite fsyncs the WAL
//! before the commit returns, so a write the engine has acknowledged to a client (or the
//! admin API has answered) survives `kill -9` and power loss. (`NORMAL` would only be
//! safe against process crashes, not against power loss.)
//!
//! # Threading
//!
//! [`StoreWorker`] owns the store on a dedicated OS thread and executes jobs one at a
//! time, in arrival order: engine host calls (answered to the actor as
//! `Input::Completed`) and admin API requests (answered on a oneshot).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use engine::store::{decode_cursor, failed, merge_patch, page, MemoryStore, RecordStore};
use engine::{OpId, StoreError, StoreErrorKind, StoreOutcome, StoreRequest};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "switchboard.db";

/// A [`RecordStore`] backed by a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

fn fail(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
    StoreError {
        kind,
        message: message.into(),
    }
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    fail(StoreErrorKind::Internal, e.to_string())
}

fn parse(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| internal(format!("stored record is not JSON: {e}")))
}

impl SqliteStore {
    /// Open (or create) `DATA_DIR/switchboard.db`.
    pub fn open_dir(data_dir: &Path) -> rusqlite::Result<Self> {
        if let Err(e) = std::fs::create_dir_all(data_dir) {
            return Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e)));
        }
        Self::from_connection(Connection::open(data_dir.join(DB_FILE))?)
    }

    /// A private in-memory SQLite database (tests).
    pub fn open_in_memory() -> rusqlite::Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(conn: Connection) -> rusqlite::Result<Self> {
        // WAL: readers never block the writer; FULL: fsync on every commit (see module docs).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                resource TEXT NOT NULL,
                id TEXT NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (resource, id)
            ) WITHOUT ROWID;",
        )?;
        Ok(Self { conn })
    }

    fn get(&self, resource: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT data FROM records WHERE resource = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row(params![resource, id], |r| r.get(0)).optional())
            .map_err(internal)?;
        text.map(|t| parse(&t)).transpose()
    }

    fn list(
        &self,
        resource: &str,
        filter: &Value,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<StoreOutcome, StoreError> {
        // A cursor we cannot decode is reported by `page` exactly as MemoryStore does.
        let after = match cursor.map(decode_cursor) {
            Some(None) => return Ok(page(std::iter::empty(), filter, limit, cursor)),
            Some(Some(id)) => id,
            None => String::new(),
        };
        let unfiltered = filter.is_null() || filter.as_object().is_some_and(|m| m.is_empty());
        // Without a filter, `limit + 1` rows decide the page and whether more follow.
        let cap: i64 = if unfiltered {
            i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
        } else {
            -1
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, data FROM records WHERE resource = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(internal)?;
        let rows = stmt
            .query_map(params![resource, after, cap], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(internal)?;
        let mut loaded: Vec<(String, Value)> = Vec::new();
        for row in rows {
            let (id, text) = row.map_err(internal)?;
            loaded.push((id, parse(&text)?));
        }
        Ok(page(
            loaded.iter().map(|(i, v)| (i, v)),
            filter,
            limit,
            cursor,
        ))
    }

    fn insert(&self, resource: &str, record: &Value) -> Result<StoreOutcome, StoreError> {
        let Some(id) = record
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return Err(fail(StoreErrorKind::Internal, "record has no string id"));
        };
        let text = record.to_string();
        let res = self
            .conn
            .prepare_cached("INSERT INTO records (resource, id, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![resource, id, text]));
        match res {
            Ok(_) => Ok(StoreOutcome::Inserted(record.clone())),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(fail(StoreErrorKind::Conflict, format!("id `{id}` exists")))
            }
            Err(e) => Err(classify(e)),
        }
    }

    fn update(
        &mut self,
        resource: &str,
        id: &str,
        patch: &Value,
    ) -> Result<StoreOutcome, StoreError> {
        let tx = self.conn.transaction().map_err(classify)?;
        let text: Option<String> = tx
            .prepare_cached("SELECT data FROM records WHERE resource = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row(params![resource, id], |r| r.get(0)).optional())
            .map_err(internal)?;
        let Some(text) = text else {
            return Err(fail(StoreErrorKind::NotFound, format!("no record `{id}`")));
        };
        let previous = parse(&text)?;
        let mut record = merge_patch(&previous, patch);
        if let Value::Object(m) = &mut record {
            m.insert("id".into(), Value::String(id.to_string()));
        }
        tx.prepare_cached("UPDATE records SET data = ?3 WHERE resource = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![resource, id, record.to_string()]))
            .map_err(classify)?;
        tx.commit().map_err(classify)?;
        Ok(StoreOutcome::Updated { record, previous })
    }

    fn delete(&self, resource: &str, id: &str) -> Result<StoreOutcome, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("DELETE FROM records WHERE resource = ?1 AND id = ?2 RETURNING data")
            .and_then(|mut s| s.query_row(params![resource, id], |r| r.get(0)).optional())
            .map_err(classify)?;
        match text {
            Some(t) => Ok(StoreOutcome::Deleted {
                previous: parse(&t)?,
            }),
            None => Err(fail(StoreErrorKind::NotFound, format!("no record `{id}`"))),
        }
    }
}

/// Busy/locked/full databases are `Unavailable` (retryable); everything else is internal.
fn classify(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        use rusqlite::ErrorCode as C;
        if matches!(
            f.code,
            C::DatabaseBusy | C::DatabaseLocked | C::DiskFull | C::CannotOpen | C::SystemIoFailure
        ) {
            return fail(StoreErrorKind::Unavailable, e.to_string());
        }
    }
    internal(e)
}

impl RecordStore for SqliteStore {
    fn apply(&mut self, request: &StoreRequest) -> StoreOutcome {
        let result = match request {
            StoreRequest::Get { resource, id } => self.get(resource, id).map(StoreOutcome::Record),
            StoreRequest::List {
                resource,
                filter,
                limit,
                cursor,
            } => self.list(resource, filter, *limit, cursor.as_deref()),
            StoreRequest::Insert { resource, record } => self.insert(resource, record),
            StoreRequest::Update {
                resource,
                id,
                patch,
            } => self.update(resource, id, patch),
            StoreRequest::Delete { resource, id } => self.delete(resource, id),
        };
        result.unwrap_or_else(StoreOutcome::Failed)
    }
}

/// Who receives the outcome of a store job.
#[derive(Debug)]
pub enum Reply {
    /// An engine host call: the outcome goes back to the actor as `Completed { op }`.
    Engine(OpId),
    /// An admin API request.
    Admin(oneshot::Sender<StoreOutcome>),
}

/// One store operation.
#[derive(Debug)]
pub struct Job {
    /// What to do.
    pub request: StoreRequest,
    /// Where the outcome goes.
    pub reply: Reply,
}

/// A finished engine host call, sent to the actor.
#[derive(Debug)]
pub struct Completion {
    /// The call.
    pub op: OpId,
    /// Its outcome.
    pub outcome: StoreOutcome,
}

/// What the store thread receives.
enum ToStore {
    Job(Job),
    /// Swap the store for another (test control resets; after the queued jobs).
    Replace(Box<dyn RecordStore + Send>, oneshot::Sender<()>),
    /// Finish the jobs queued before this, close the store and exit.
    Stop,
}

/// Sends jobs to the store thread.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: std::sync::mpsc::Sender<ToStore>,
}

impl StoreHandle {
    /// Queue a job. False when the store thread has stopped.
    pub fn submit(&self, job: Job) -> bool {
        self.tx.send(ToStore::Job(job)).is_ok()
    }

    /// Replace the store after the jobs queued before (the test control channel's
    /// reset). False when the store thread has stopped.
    pub async fn replace(&self, store: Box<dyn RecordStore + Send>) -> bool {
        let (tx, rx) = oneshot::channel();
        self.tx.send(ToStore::Replace(store, tx)).is_ok() && rx.await.is_ok()
    }

    /// Ask the thread to finish the queued jobs and close the store.
    pub fn stop(&self) {
        let _ = self.tx.send(ToStore::Stop);
    }

    /// Run an admin request and wait for its outcome.
    pub async fn run(&self, request: StoreRequest) -> StoreOutcome {
        let (tx, rx) = oneshot::channel();
        if !self.submit(Job {
            request,
            reply: Reply::Admin(tx),
        }) {
            return failed(StoreErrorKind::Unavailable, "the store has stopped");
        }
        rx.await
            .unwrap_or_else(|_| failed(StoreErrorKind::Unavailable, "the store has stopped"))
    }
}

/// The store thread.
#[derive(Debug)]
pub struct StoreWorker {
    thread: std::thread::JoinHandle<()>,
}

impl StoreWorker {
    /// Start a thread owning `store`. Engine completions go to `completions`.
    pub fn spawn(
        mut store: Box<dyn RecordStore + Send>,
        completions: mpsc::Sender<Completion>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(StoreHandle, StoreWorker)> {
        let (tx, rx) = std::sync::mpsc::channel::<ToStore>();
        let thread = std::thread::Builder::new()
            .name("switchboard-store".into())
            .spawn(move || {
                for msg in rx {
                    let job = match msg {
                        ToStore::Job(job) => job,
                        ToStore::Replace(other, done) => {
                            store = other;
                            let _ = done.send(());
                            continue;
                        }
                        ToStore::Stop => break,
                    };
                    let started = Instant::now();
                    let outcome = store.apply(&job.request);
                    metrics
                        .store_latency
                        .observe(started.elapsed().as_secs_f64());
                    if let StoreOutcome::Failed(e) = &outcome {
                        if matches!(
                            e.kind,
                            StoreErrorKind::Internal | StoreErrorKind::Unavailable
                        ) {
                            tracing::error!(error = %e.message, "store operation failed");
                        }
                    }
                    match job.reply {
                        Reply::Engine(op) => {
                            // The actor may be gone during shutdown; nothing to answer then.
                            let _ = completions.blocking_send(Completion { op, outcome });
                        }
                        Reply::Admin(tx) => {
                            let _ = tx.send(outcome);
                        }
                    }
                }
                // Dropping the store closes the database (and checkpoints the WAL).
                drop(store);
            })?;
        Ok((StoreHandle { tx }, StoreWorker { thread }))
    }

    /// Wait for the thread to finish (after [`StoreHandle::stop`] or when every handle
    /// is dropped).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Open the store a deployment asks for.
pub fn open(
    kind: crate::config::StoreKind,
    data_dir: &Path,
) -> anyhow::Result<Box<dyn RecordStore + Send>> {
    Ok(match kind {
        crate::config::StoreKind::Memory => Box::new(MemoryStore::new()),
        crate::config::StoreKind::Sqlite => {
            Box::new(SqliteStore::open_dir(data_dir).map_err(|e| {
                anyhow::anyhow!("cannot open SQLite store in {}: {e}", data_dir.display())
            })?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqlite_store_passes_the_engine_contract() {
        engine::store::contract::check(|| SqliteStore::open_in_memory().unwrap());
    }

    #[test]
    fn sqlite_store_passes_the_contract_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        engine::store::contract::check(|| {
            n += 1;
            SqliteStore::open_dir(&dir.path().join(n.to_string())).unwrap()
        });
    }

    #[test]
    fn list_matches_memory_store_on_pages_without_filter() {
        let mut sql = SqliteStore::open_in_memory().unwrap();
        let mut mem = MemoryStore::new();
        for i in 0..10 {
            let r = StoreRequest::Insert {
                resource: "r".into(),
                record: json!({"id": format!("k{i}"), "i": i}),
            };
            sql.apply(&r);
            mem.apply(&r);
        }
        let mut cursor = None;
        loop {
            let req = StoreRequest::List {
                resource: "r".into(),
                filter: Value::Null,
                limit: 3,
                cursor: cursor.clone(),
            };
            let a = sql.apply(&req);
            assert_eq!(a, mem.apply(&req));
            match a {
                StoreOutcome::Page {
                    cursor: Some(c), ..
                } => cursor = Some(c),
                _ => break,
            }
        }
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = SqliteStore::open_dir(dir.path()).unwrap();
            s.apply(&StoreRequest::Insert {
                resource: "r".into(),
                record: json!({"id":"a","v":1}),
            });
        }
        let mut s = SqliteStore::open_dir(dir.path()).unwrap();
        assert_eq!(
            s.apply(&StoreRequest::Get {
                resource: "r".into(),
                id: "a".into()
            }),
            StoreOutcome::Record(Some(json!({"id":"a","v":1})))
        );
    }
}
