//! Record storage: the SQLite store ([`sqlite`], the single-node default), the
//! PostgreSQL store ([`postgres`], records shared by the nodes of a cluster), the SQL
//! both share (`sql.rs`), and the thread that runs store operations off the async
//! reactor.
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
//! ([`engine::store::MAX_LIST_SCAN`] records per `list`). A job is answered once its
//! write has committed, so change events never announce a write that could still be
//! rolled back.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use engine::store::{failed, MemoryStore, RecordStore};
use engine::{OpId, StoreErrorKind, StoreOutcome, StoreRequest};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

#[cfg(test)]
mod cases;
mod kind;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;

pub use kind::StoreKind;
pub use postgres::{PgStore, StoreHealth};
pub use sqlite::{SqliteStore, DB_FILE};

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

/// An open store, and how to tell whether it is reachable (a PostgreSQL store).
pub struct Opened {
    /// The store, for [`StoreWorker::spawn`].
    pub store: Box<dyn RecordStore + Send>,
    /// Whether the database answers (`/readyz`), for a store on a server.
    pub health: Option<StoreHealth>,
}

/// Open the store a deployment asks for; a SQL store creates the indexes the resources
/// declare (`resources.<name>.indexes`), a PostgreSQL store its table too (the
/// connection and the migrations run on a thread of their own: the sync client must not
/// run on the async reactor).
pub fn open(
    kind: &StoreKind,
    data_dir: &Path,
    resources: &std::collections::BTreeMap<String, engine::config::ResourceConfig>,
) -> anyhow::Result<Opened> {
    let store: Box<dyn RecordStore + Send> = match kind {
        StoreKind::Memory => Box::new(MemoryStore::new()),
        StoreKind::Sqlite => {
            let mut store = SqliteStore::open_dir(data_dir).map_err(|e| {
                anyhow::anyhow!("cannot open SQLite store in {}: {e}", data_dir.display())
            })?;
            store.create_indexes(resources).map_err(|e| {
                anyhow::anyhow!("cannot create the declared indexes (resources.*.indexes): {e}")
            })?;
            Box::new(store)
        }
        StoreKind::Postgres(url) => {
            let (url, resources) = (url.clone(), resources.clone());
            let store = std::thread::Builder::new()
                .name("switchboard-store-open".into())
                .spawn(move || PgStore::connect(&url, &resources))?
                .join()
                .map_err(|_| anyhow::anyhow!("opening the PostgreSQL store panicked"))??;
            let health = store.health();
            return Ok(Opened {
                store: Box::new(store),
                health: Some(health),
            });
        }
    };
    Ok(Opened {
        store,
        health: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
