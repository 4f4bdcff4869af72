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
//! time: engine host calls (answered to the actor as `Input::Completed`) and admin API
//! requests (answered on a oneshot). Jobs queue per *lane* (a connection, the server's
//! commands, the admin API) and lanes take turns, one job each: a client with a hundred
//! expensive `list`s queued delays another client's `get` by at most one job per busy
//! lane, not by its whole queue. Within a lane jobs run in arrival order, so one
//! connection's writes and reads keep their order. Each job's work is bounded
//! ([`engine::store::MAX_LIST_SCAN`] records per `list`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use engine::store::{
    decode_cursor, encode_cursor, failed, merge_patch, page, MemoryStore, RecordStore,
};
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
    /// Per resource, the JSON path (`$."a"."b"`) that leads each declared index
    /// (`resources.<name>.indexes`) and the index's name: a filtered `list` with an
    /// equality on that path reads through the index.
    index_leads: std::collections::BTreeMap<String, Vec<(String, String)>>,
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
        Ok(Self {
            conn,
            index_leads: std::collections::BTreeMap::new(),
        })
    }

    /// Create the indexes the resources declare (`resources.<name>.indexes`), if they do
    /// not exist yet: `(resource, json_extract(data, <path>)..., id)` over the records
    /// table, so an equality on the first field walks the resource's matching records
    /// in id order. Returns the names of the indexes.
    pub fn create_indexes(
        &mut self,
        resources: &std::collections::BTreeMap<String, engine::config::ResourceConfig>,
    ) -> rusqlite::Result<Vec<String>> {
        let mut names = Vec::new();
        for (resource, config) in resources {
            for fields in &config.indexes {
                // Config validation refused paths `json_path` cannot write.
                let Some(paths) = fields
                    .paths()
                    .iter()
                    .map(|p| json_path(p))
                    .collect::<Option<Vec<String>>>()
                else {
                    continue;
                };
                let Some(lead) = paths.first().cloned() else {
                    continue;
                };
                let name = index_name(resource, &paths);
                let columns: Vec<String> = paths
                    .iter()
                    .map(|p| format!("json_extract(data, '{p}')"))
                    .collect();
                self.conn.execute_batch(&format!(
                    "CREATE INDEX IF NOT EXISTS \"{name}\" ON records(resource, {}, id);",
                    columns.join(", ")
                ))?;
                let leads = self.index_leads.entry(resource.clone()).or_default();
                if !leads.iter().any(|(l, _)| *l == lead) {
                    leads.push((lead, name.clone()));
                }
                names.push(name);
            }
        }
        Ok(names)
    }

    /// The declared index of `resource` whose first field `filter` compares for
    /// equality, if any (a filtered list then reads through it).
    fn index_for(&self, resource: &str, filter: &engine::filter::Filter) -> Option<&str> {
        let leads = self.index_leads.get(resource)?;
        filter.clauses().find_map(|(path, ops)| {
            let p = json_path(path)?;
            let eq = ops
                .iter()
                .any(|op| matches!(op, engine::filter::Op::Eq(v) if sql_scalar(v).is_some()));
            if !eq {
                return None;
            }
            leads
                .iter()
                .find(|(l, _)| *l == p)
                .map(|(_, name)| name.as_str())
        })
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
        if unfiltered {
            // Without a filter, `limit + 1` rows decide the page and whether more follow.
            let cap = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
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
            return Ok(page(
                loaded.iter().map(|(i, v)| (i, v)),
                filter,
                limit,
                cursor,
            ));
        }
        self.filtered_list(resource, filter, limit, &after)
    }

    /// A filtered page: at most `MAX_LIST_SCAN + 1` rows after the cursor are read (in
    /// id order); SQL narrows them with the filter's conditions it can check exactly
    /// or conservatively (`json_extract`, see [`sql_prefilter`]), so only candidate
    /// rows are parsed, and the engine's filter decides. Same pages as `page()`, except
    /// through a declared index, where the budget counts candidate rows only (a page
    /// then ends early less often).
    fn filtered_list(
        &self,
        resource: &str,
        filter: &Value,
        limit: usize,
        after: &str,
    ) -> Result<StoreOutcome, StoreError> {
        let parsed = match engine::filter::Filter::parse(filter) {
            Ok(f) => f,
            Err(e) => return Ok(failed(StoreErrorKind::Internal, format!("bad filter: {e}"))),
        };
        let budget = engine::store::MAX_LIST_SCAN;
        let (sql, args) = self.filtered_query(resource, &parsed, after);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(internal)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(internal)?;
        let mut items: Vec<Value> = Vec::with_capacity(limit.min(1024));
        let mut scanned = 0;
        let mut last_scanned: Option<String> = None;
        let mut cursor = None;
        while let Some(row) = rows.next().map_err(internal)? {
            if scanned == budget {
                // The budget ran out and more rows follow: continue after the last one read.
                cursor = last_scanned.as_deref().map(encode_cursor);
                break;
            }
            scanned += 1;
            let id: String = row.get(0).map_err(internal)?;
            if let Some(text) = row.get::<_, Option<String>>(1).map_err(internal)? {
                let record = parse(&text)?;
                if parsed.matches(&record) {
                    if items.len() == limit {
                        cursor = items
                            .last()
                            .and_then(|r| r.get("id"))
                            .and_then(Value::as_str)
                            .map(encode_cursor);
                        break;
                    }
                    items.push(record);
                }
            }
            last_scanned = Some(id);
        }
        Ok(StoreOutcome::Page { items, cursor })
    }

    /// The SQL (and its arguments) of a filtered page: through a declared index when
    /// the filter has an equality on its first field, else a bounded scan of the next
    /// rows whose condition only spares parsing. The budget is the last argument.
    fn filtered_query(
        &self,
        resource: &str,
        parsed: &engine::filter::Filter,
        after: &str,
    ) -> (String, Vec<rusqlite::types::Value>) {
        let budget = engine::store::MAX_LIST_SCAN;
        let (condition, cond_args) = sql_prefilter(parsed);
        let mut args = vec![
            rusqlite::types::Value::Text(resource.to_string()),
            rusqlite::types::Value::Text(after.to_string()),
        ];
        let sql = if let Some(index) = self.index_for(resource, parsed) {
            // Through the declared index (named: the planner has no statistics to prefer
            // it over the primary key): only candidate rows are read, at most the budget
            // of them, in id order.
            args.extend(cond_args);
            format!(
                "SELECT id, data FROM records INDEXED BY \"{index}\" \
                 WHERE resource = ? AND id > ? AND {condition} ORDER BY id LIMIT ?"
            )
        } else {
            // The next `budget` rows of the resource; the condition only spares parsing.
            args.splice(0..0, cond_args);
            format!(
                "SELECT id, CASE WHEN {condition} THEN data END FROM \
                 (SELECT id, data FROM records WHERE resource = ? AND id > ? ORDER BY id LIMIT ?)"
            )
        };
        args.push(rusqlite::types::Value::Integer(budget as i64 + 1));
        (sql, args)
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

/// A JSON path for SQLite's JSON functions (`$."a"."b"`), if every segment can be
/// written as a quoted label.
fn json_path(path: &[String]) -> Option<String> {
    let mut out = String::from("$");
    for seg in path {
        // `'` too: the path is written inside a SQL string literal.
        if seg.contains(['"', '\\', '\'']) || seg.chars().any(char::is_control) {
            return None;
        }
        out.push_str(&format!(".\"{seg}\""));
    }
    Some(out)
}

/// The SQL name of a declared index: `sb_idx_` and the hex of its resource and paths
/// (stable across restarts, any resource name).
fn index_name(resource: &str, paths: &[String]) -> String {
    let key = format!("{resource}\0{}", paths.join("\0"));
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("sb_idx_{hex}")
}

/// Largest magnitude at which integers and floats convert exactly (2^53).
const EXACT_NUMBER: f64 = 9_007_199_254_740_992.0;

/// A SQL literal argument for a JSON scalar the prefilter can compare exactly.
fn sql_scalar(v: &Value) -> Option<rusqlite::types::Value> {
    use rusqlite::types::Value as S;
    match v {
        Value::String(s) => Some(S::Text(s.clone())),
        Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite() || f.abs() > EXACT_NUMBER {
                return None;
            }
            Some(n.as_i64().map_or(S::Real(f), S::Integer))
        }
        _ => None,
    }
}

/// SQL conditions on `data` (with their arguments) that every record the filter matches
/// satisfies: a necessary condition, so the query never drops a match; the engine's
/// filter still decides. Strings compare as UTF-8 bytes (code point order, like the
/// engine); numbers only within ±2^53, where SQLite's integer/real comparisons are
/// exact. Conditions it cannot express (`$ne`, objects, arrays, `null`, booleans,
/// odd field names) are left to the engine.
fn sql_prefilter(filter: &engine::filter::Filter) -> (String, Vec<rusqlite::types::Value>) {
    use engine::filter::Op;
    let mut terms: Vec<String> = Vec::new();
    let mut args = Vec::new();
    for (path, ops) in filter.clauses() {
        let Some(p) = json_path(path) else { continue };
        let extract = format!("json_extract(data, '{p}')");
        for op in ops {
            match op {
                Op::Eq(v) => {
                    if let Some(a) = sql_scalar(v) {
                        terms.push(format!("{extract} = ?"));
                        args.push(a);
                    }
                }
                Op::In(vs) => {
                    let scalars: Option<Vec<_>> = vs.iter().map(sql_scalar).collect();
                    match scalars {
                        Some(s) if s.is_empty() => terms.push("0".into()),
                        Some(s) => {
                            let marks = vec!["?"; s.len()].join(", ");
                            terms.push(format!("{extract} IN ({marks})"));
                            args.extend(s);
                        }
                        None => {}
                    }
                }
                Op::Gt(v) | Op::Gte(v) | Op::Lt(v) | Op::Lte(v) => {
                    let Some(a) = sql_scalar(v) else { continue };
                    let sign = match op {
                        Op::Gt(_) => ">",
                        Op::Gte(_) => ">=",
                        Op::Lt(_) => "<",
                        _ => "<=",
                    };
                    // Different kinds never compare: restrict to the argument's kind.
                    let kinds = if v.is_string() {
                        "'text'"
                    } else {
                        "'integer', 'real'"
                    };
                    terms.push(format!(
                        "(json_type(data, '{p}') IN ({kinds}) AND {extract} {sign} ?)"
                    ));
                    args.push(a);
                }
                Op::Exists(true) => terms.push(format!("json_type(data, '{p}') IS NOT NULL")),
                Op::Exists(false) => terms.push(format!("json_type(data, '{p}') IS NULL")),
                Op::Ne(_) => {}
            }
        }
    }
    if terms.is_empty() {
        ("1".into(), args)
    } else {
        (terms.join(" AND "), args)
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
    /// The queue it waits in (see the module docs): [`lane_of`] a connection,
    /// [`SERVER_LANE`] or [`ADMIN_LANE`].
    pub lane: u64,
}

/// The lane of the server's own commands (connection-less host calls).
pub const SERVER_LANE: u64 = u64::MAX - 1;
/// The lane of admin API requests.
pub const ADMIN_LANE: u64 = u64::MAX;

/// The lane of a host call made for `conn` (`None`: a server command).
pub fn lane_of(conn: Option<engine::ConnId>) -> u64 {
    conn.map_or(SERVER_LANE, |c| c.0.min(SERVER_LANE - 1))
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
            lane: ADMIN_LANE,
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
                let mut lanes = Lanes::default();
                loop {
                    // Block only when nothing is queued; then take whatever has arrived.
                    let first = if lanes.is_empty() {
                        match rx.recv() {
                            Ok(m) => Some(m),
                            Err(_) => break,
                        }
                    } else {
                        None
                    };
                    let mut stop = false;
                    for msg in first
                        .into_iter()
                        .chain(std::iter::from_fn(|| rx.try_recv().ok()))
                    {
                        match msg {
                            ToStore::Job(job) => lanes.push(job),
                            // Control messages apply after every job queued before them.
                            ToStore::Replace(other, done) => {
                                while let Some(job) = lanes.pop() {
                                    run_job(&mut *store, job, &completions, &metrics);
                                }
                                store = other;
                                let _ = done.send(());
                            }
                            ToStore::Stop => {
                                stop = true;
                                break;
                            }
                        }
                    }
                    if stop {
                        while let Some(job) = lanes.pop() {
                            run_job(&mut *store, job, &completions, &metrics);
                        }
                        break;
                    }
                    if let Some(job) = lanes.pop() {
                        run_job(&mut *store, job, &completions, &metrics);
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

/// Jobs queued per lane; lanes take turns (round robin), FIFO within a lane.
#[derive(Default)]
struct Lanes {
    queues: std::collections::HashMap<u64, std::collections::VecDeque<Job>>,
    /// Lanes with queued jobs, in turn order.
    turn: std::collections::VecDeque<u64>,
}

impl Lanes {
    fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }

    fn push(&mut self, job: Job) {
        let q = self.queues.entry(job.lane).or_default();
        if q.is_empty() {
            self.turn.push_back(job.lane);
        }
        q.push_back(job);
    }

    /// The next job: the head of the lane whose turn it is (which then goes to the back).
    fn pop(&mut self) -> Option<Job> {
        let lane = self.turn.pop_front()?;
        let q = self.queues.get_mut(&lane)?;
        let job = q.pop_front();
        if q.is_empty() {
            self.queues.remove(&lane);
        } else {
            self.turn.push_back(lane);
        }
        job
    }
}

/// Execute one job and deliver its outcome.
fn run_job(
    store: &mut (dyn RecordStore + Send),
    job: Job,
    completions: &mpsc::Sender<Completion>,
    metrics: &Metrics,
) {
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

/// Open the store a deployment asks for; a SQLite store creates the indexes the
/// resources declare (`resources.<name>.indexes`).
pub fn open(
    kind: crate::config::StoreKind,
    data_dir: &Path,
    resources: &std::collections::BTreeMap<String, engine::config::ResourceConfig>,
) -> anyhow::Result<Box<dyn RecordStore + Send>> {
    Ok(match kind {
        crate::config::StoreKind::Memory => Box::new(MemoryStore::new()),
        crate::config::StoreKind::Sqlite => {
            let mut store = SqliteStore::open_dir(data_dir).map_err(|e| {
                anyhow::anyhow!("cannot open SQLite store in {}: {e}", data_dir.display())
            })?;
            store.create_indexes(resources).map_err(|e| {
                anyhow::anyhow!("cannot create the declared indexes (resources.*.indexes): {e}")
            })?;
            Box::new(store)
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

    /// Page through `filter` on both stores (limit 3): identical pages and cursors.
    fn same_pages(sql: &mut SqliteStore, mem: &mut MemoryStore, filter: &Value, limit: usize) {
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let req = StoreRequest::List {
                resource: "r".into(),
                filter: filter.clone(),
                limit,
                cursor: cursor.clone(),
            };
            let a = sql.apply(&req);
            assert_eq!(a, mem.apply(&req), "filter {filter}, page {pages}");
            pages += 1;
            match a {
                StoreOutcome::Page {
                    cursor: Some(c), ..
                } => cursor = Some(c),
                _ => break,
            }
        }
    }

    fn both(records: impl IntoIterator<Item = Value>) -> (SqliteStore, MemoryStore) {
        let mut sql = SqliteStore::open_in_memory().unwrap();
        let mut mem = MemoryStore::new();
        sql.conn.execute_batch("BEGIN").unwrap();
        for record in records {
            let r = StoreRequest::Insert {
                resource: "r".into(),
                record,
            };
            sql.apply(&r);
            mem.apply(&r);
        }
        sql.conn.execute_batch("COMMIT").unwrap();
        (sql, mem)
    }

    /// Filters pushed into SQL (json_extract) never change a page: every operator, every
    /// kind of value, numbers written as integers and floats, nested paths, odd names.
    #[test]
    fn filtered_lists_in_sql_match_the_memory_store() {
        let values = [
            json!("a"),
            json!("b"),
            json!("é"),
            json!("10"),
            json!(1),
            json!(1.0),
            json!(2.5),
            json!(-3),
            json!(9007199254740993u64),
            json!(1e16),
            json!(true),
            json!(false),
            json!(null),
            json!([1, "a"]),
            json!({"k": 1}),
        ];
        let records = (0..60).map(|i| {
            let v = values[i % values.len()].clone();
            let w = values[(i * 7 + 3) % values.len()].clone();
            let mut r = json!({"id": format!("k{i:03}"), "v": v, "m": {"w": w}, "we\"ird": i});
            if i % 4 == 0 {
                r.as_object_mut().unwrap().remove("v");
            }
            r
        });
        let (mut sql, mut mem) = both(records);
        let mut filters = vec![
            json!({"m": {"w": 1}}),
            json!({"we\"ird": {"$gte": 10}}),
            json!({"$and": [{"v": {"$exists": true}}, {"m.w": {"$ne": "a"}}]}),
            json!({"v": {"$exists": false}}),
            json!({"v": {"$in": ["a", 1, 2.5, null]}}),
            json!({"v": {"$in": []}}),
            json!({"v": {"$gt": 9007199254740992u64}}),
            json!({"v": 9007199254740993u64}),
            json!({"v": 10000000000000000u64}),
        ];
        for v in &values {
            for op in ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"] {
                filters.push(json!({"v": {op: v}}));
                filters.push(json!({"m.w": {op: v}}));
            }
            filters.push(json!({"v": v}));
        }
        for f in &filters {
            same_pages(&mut sql, &mut mem, f, 3);
        }
    }

    /// A filter matching nothing reads at most MAX_LIST_SCAN rows per request and pages
    /// on exactly like the memory store.
    #[test]
    fn a_selective_filtered_list_is_bounded_like_the_memory_store() {
        let n = engine::store::MAX_LIST_SCAN + 7;
        let (mut sql, mut mem) =
            both((0..n).map(|i| json!({"id": format!("k{i:06}"), "last": i == n - 1})));
        same_pages(&mut sql, &mut mem, &json!({"last": {"$in": [true]}}), 5);
        same_pages(
            &mut sql,
            &mut mem,
            &json!({"id": {"$gte": "k000005"}}),
            5000,
        );
    }

    fn indexed(
        indexes: Value,
    ) -> std::collections::BTreeMap<String, engine::config::ResourceConfig> {
        let config = engine::Config::from_value(json!({"resources": {
            "messages": {"indexes": indexes}, "other": {}
        }}))
        .expect("valid config");
        config.resources
    }

    fn plan(store: &SqliteStore, resource: &str, filter: Value) -> String {
        let parsed = engine::filter::Filter::parse(&filter).unwrap();
        let (sql, args) = store.filtered_query(resource, &parsed, "");
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn declared_indexes_are_created_and_filtered_lists_use_them() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        let names = store
            .create_indexes(&indexed(json!(["channel", ["author.id", "n"]])))
            .unwrap();
        assert_eq!(names.len(), 2);
        let in_db: Vec<String> = store
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'sb_idx_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(in_db, expected);
        // Idempotent: a restart finds them.
        assert_eq!(
            store
                .create_indexes(&indexed(json!(["channel", ["author.id", "n"]])))
                .unwrap(),
            names
        );

        // An equality on an index's first field reads through it ...
        let p = plan(
            &store,
            "messages",
            json!({"channel": "general", "n": {"$gt": 1}}),
        );
        assert!(p.contains(&names[0]), "{p}");
        let p = plan(&store, "messages", json!({"author.id": "u1"}));
        assert!(p.contains(&names[1]), "{p}");
        // ... other filters, and other resources, scan as before.
        for (resource, filter) in [
            ("messages", json!({"n": 1})),
            ("messages", json!({"channel": {"$ne": "x"}})),
            ("other", json!({"channel": "general"})),
        ] {
            let p = plan(&store, resource, filter.clone());
            assert!(!p.contains("sb_idx_"), "{resource} {filter}: {p}");
        }
    }

    #[test]
    fn indexed_lists_return_the_matching_records_in_id_order_past_the_scan_budget() {
        let mut sql = SqliteStore::open_in_memory().unwrap();
        sql.create_indexes(&indexed(json!(["channel"]))).unwrap();
        // 12 000 records, one in 1 000 on `rare`: more than one scan budget apart.
        for i in 0..12_000 {
            let channel = if i % 1000 == 7 { "rare" } else { "busy" };
            let r = json!({"id": format!("m{i:05}"), "channel": channel, "n": i});
            sql.insert("messages", &r).unwrap();
        }
        let filter = json!({"channel": "rare"});
        let StoreOutcome::Page { items, cursor } =
            sql.list("messages", &filter, 100, None).unwrap()
        else {
            panic!("a page")
        };
        let ids: Vec<&str> = items.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let expected: Vec<String> = (0..12).map(|k| format!("m{:05}", k * 1000 + 7)).collect();
        assert_eq!(ids, expected, "every match in one page, in id order");
        assert_eq!(cursor, None);
        // A page limit still pages, and the cursor continues after the last record.
        let StoreOutcome::Page { items, cursor } = sql.list("messages", &filter, 5, None).unwrap()
        else {
            panic!("a page")
        };
        assert_eq!(items.len(), 5);
        let StoreOutcome::Page { items, .. } = sql
            .list("messages", &filter, 100, cursor.as_deref())
            .unwrap()
        else {
            panic!("a page")
        };
        assert_eq!(items.len(), 7);
        assert_eq!(items[0]["id"], "m05007");
    }

    #[test]
    fn a_quote_in_a_filter_field_is_never_written_into_sql() {
        let store = SqliteStore::open_in_memory().unwrap();
        let parsed = engine::filter::Filter::parse(&json!({"a') OR 1=1 --": "x"})).unwrap();
        let (sql, _) = store.filtered_query("messages", &parsed, "");
        assert!(!sql.contains("OR 1=1"), "{sql}");
    }

    #[test]
    fn simple_conditions_are_pushed_into_sql() {
        let f = engine::filter::Filter::parse(
            &json!({"channel": "general", "n": {"$gt": 1, "$ne": 3}, "o": {"a": 1}}),
        )
        .unwrap();
        let (sql, args) = sql_prefilter(&f);
        assert_eq!(args.len(), 2, "{sql}");
        assert!(
            sql.contains(r#"json_extract(data, '$."channel"') = ?"#),
            "{sql}"
        );
    }

    /// Not a test: prints how long a `list` with a filter matching nothing takes over
    /// 50k records of ~1 KB (BENCHMARKS.md, "Store"). Run with
    /// `cargo test --release -p switchboard --lib measure_filtered_list -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure_filtered_list() {
        let pad = "x".repeat(1000);
        let (mut sql, mut mem) = both(
            (0..50_000)
                .map(|i| json!({"id": format!("m{i:06}"), "channel": "general", "body": pad})),
        );
        for (name, store) in [
            ("sqlite", &mut sql as &mut dyn RecordStore),
            ("memory", &mut mem as &mut dyn RecordStore),
        ] {
            for filter in [
                json!(null),
                json!({"channel": "nope"}),
                json!({"body": {"$ne": pad}}),
            ] {
                let req = StoreRequest::List {
                    resource: "r".into(),
                    filter: filter.clone(),
                    limit: 100,
                    cursor: None,
                };
                let started = Instant::now();
                let runs = 20;
                for _ in 0..runs {
                    store.apply(&req);
                }
                println!(
                    "{name} list filter={filter}: {:.2} ms",
                    started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
                );
            }
        }
    }

    #[test]
    fn lanes_take_turns_and_keep_order_within_a_lane() {
        let job = |lane: u64, op: u64| Job {
            request: StoreRequest::Get {
                resource: "r".into(),
                id: op.to_string(),
            },
            reply: Reply::Engine(engine::OpId(op)),
            lane,
        };
        let mut lanes = Lanes::default();
        for op in 1..=4 {
            lanes.push(job(1, op));
        }
        lanes.push(job(2, 10));
        lanes.push(job(ADMIN_LANE, 20));
        let order: Vec<u64> = std::iter::from_fn(|| lanes.pop())
            .map(|j| match j.reply {
                Reply::Engine(op) => op.0,
                Reply::Admin(_) => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![1, 10, 20, 2, 3, 4]);
        assert!(lanes.is_empty());
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
