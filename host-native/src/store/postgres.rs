//! The PostgreSQL store (`--store postgres://USER@HOST:PORT/DB`): records every node of a
//! cluster shares.
//!
//! # Layout
//!
//! One table, created at startup if missing (with the declared indexes, under an
//! advisory lock so that nodes starting together do not race):
//! `records(resource text COLLATE "C", id text COLLATE "C", data json, PRIMARY KEY
//! (resource, id))`. `data` is `json`, kept exactly as written (key order included);
//! filters read it through `#>` and compare as `jsonb`, `numeric` or byte-ordered text,
//! the same conditions the SQLite store pushes down (`sql.rs`); ids order
//! bytewise (`COLLATE "C"`), as in the other stores, so cursors mean the same thing.
//! A declared index is `(resource, (data #> '{path}')::jsonb..., id)`.
//!
//! # Connections and failures
//!
//! The sync client (`postgres`) runs on the store thread, pooled (`r2d2`, a few
//! connections, each checked before use). Every write is its own transaction (an
//! update reads the record `FOR UPDATE`), answered after its commit. No TLS: the client
//! is for a database on loopback or a private network (`sslmode=require` is refused).
//! While the database is unreachable, calls fail at once with
//! [`StoreErrorKind::Unavailable`] (clients see `UNAVAILABLE`, "storage is unavailable;
//! retry later"), `/readyz` answers 503 (a health thread checks the database every
//! second), and the pool reconnects by itself when the database is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::store::RecordStore;
use engine::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};
use fallible_iterator::FallibleIterator as _;
use postgres::types::{ToSql, Type};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use serde_json::Value;

use super::sql::{self, fail, parse, Arg, Dialect, Indexes, Scalar};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// Connections kept by a node (the store thread uses one at a time; the health check
/// one more).
const POOL_SIZE: u32 = 4;
/// How long startup waits for the first connection; also caps the pool's reconnection
/// backoff (at half of it).
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a connection while the database is reachable ...
const CHECKOUT_WAIT: Duration = Duration::from_secs(3);
/// ... and while it is not (calls then fail fast).
const DOWN_WAIT: Duration = Duration::from_millis(250);
/// How often the health thread checks the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// The advisory lock the migrations run under.
const MIGRATION_LOCK: i64 = 0x5357_4254_4348; // "SWBTCH"

/// Whether the database answers, for `/readyz`.
#[derive(Debug, Clone)]
pub struct StoreHealth {
    /// False while the database is unreachable.
    pub up: Arc<AtomicBool>,
    /// The database URL, password hidden.
    pub url: String,
}

/// A [`RecordStore`] in PostgreSQL.
pub struct PgStore {
    pool: Pool,
    indexes: Indexes,
    health: StoreHealth,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.health.url)
            .finish_non_exhaustive()
    }
}

/// Check a `postgres://` (or `postgresql://`) URL: it must name a user, and ask for no
/// TLS (the store's client has none).
pub fn parse_url(url: &str) -> Result<postgres::Config, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "`{}` is not a PostgreSQL URL like postgres://USER@HOST:PORT/DB",
            redact(url)
        ));
    }
    let config: postgres::Config = url
        .parse()
        .map_err(|e| format!("`{}` is not a valid PostgreSQL URL: {e}", redact(url)))?;
    if config.get_user().is_none() {
        return Err(format!(
            "`{}` names no user (postgres://USER@HOST:PORT/DB)",
            redact(url)
        ));
    }
    if config.get_hosts().is_empty() {
        return Err(format!(
            "`{}` names no host (postgres://USER@HOST:PORT/DB)",
            redact(url)
        ));
    }
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        return Err("sslmode=require: the PostgreSQL store connects without TLS (loopback or a private network only)".into());
    }
    Ok(config)
}

/// The URL with its password (if any) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl PgStore {
    /// Connect (waiting a few seconds at most), check the database is UTF8, create the
    /// table and the declared indexes if missing, and start the health thread. Blocks:
    /// never call it on the async reactor.
    pub fn connect(
        url: &str,
        resources: &std::collections::BTreeMap<String, engine::config::ResourceConfig>,
    ) -> anyhow::Result<Self> {
        let shown = redact(url);
        let mut config = parse_url(url).map_err(anyhow::Error::msg)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CHECKOUT_WAIT);
        }
        config
            .application_name("switchboard")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            // A statement never holds the store thread forever.
            .options("-c statement_timeout=30000");
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(START_TIMEOUT)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(PostgresConnectionManager::new(config, NoTls))
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {shown}: {e}"))?;
        let mut indexes = Indexes::new(Dialect::Postgres);
        let specs = indexes.declare(resources);
        let mut conn = pool
            .get()
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {shown}: {e}"))?;
        let encoding: String = conn
            .query_one("SHOW server_encoding", &[])
            .map_err(|e| anyhow::anyhow!("PostgreSQL at {shown}: {e}"))?
            .get(0);
        if encoding != "UTF8" {
            anyhow::bail!(
                "PostgreSQL at {shown}: the database's encoding is {encoding}; the store needs UTF8 (createdb --encoding=UTF8)"
            );
        }
        migrate(&mut conn, &specs).map_err(|e| {
            anyhow::anyhow!("PostgreSQL at {shown}: cannot create the records table or the declared indexes (resources.*.indexes): {e}")
        })?;
        drop(conn);
        let health = StoreHealth {
            up: Arc::new(AtomicBool::new(true)),
            url: shown,
        };
        spawn_health_check(pool.clone(), health.clone())?;
        Ok(Self {
            pool,
            indexes,
            health,
        })
    }

    /// Whether the database answers (`/readyz`).
    pub fn health(&self) -> StoreHealth {
        self.health.clone()
    }

    /// A pooled connection, or `Unavailable` (quickly while the database is known down).
    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
        let wait = if self.health.up.load(Ordering::Acquire) {
            CHECKOUT_WAIT
        } else {
            DOWN_WAIT
        };
        self.pool.get_timeout(wait).map_err(|e| {
            self.health.up.store(false, Ordering::Release);
            fail(
                StoreErrorKind::Unavailable,
                format!("PostgreSQL at {} is unreachable: {e}", self.health.url),
            )
        })
    }

    /// A failed statement as a store error; a lost connection marks the database down.
    fn classify(&self, e: postgres::Error) -> StoreError {
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        let retryable = e.is_closed()
            || io
            || ["08", "53", "57P"].iter().any(|p| code.starts_with(p))
            || code == "40001"
            || code == "40P01";
        if retryable {
            self.health.up.store(false, Ordering::Release);
            fail(
                StoreErrorKind::Unavailable,
                format!("PostgreSQL at {}: {e}", self.health.url),
            )
        } else {
            sql::internal(format!("PostgreSQL: {e}"))
        }
    }

    /// `EXPLAIN` of the query a filtered list of `resource` runs (tests: which index it
    /// reads through).
    pub fn explain_list(&self, resource: &str, filter: &Value) -> Result<String, StoreError> {
        let parsed = engine::filter::Filter::parse(filter).map_err(sql::internal)?;
        let (query, args) = self.indexes.filtered_query(resource, &parsed, "");
        let params = bind(&args);
        let rows = self
            .conn()?
            .query_typed(
                &format!("EXPLAIN {}", sql::numbered(&query)),
                &typed(&params),
            )
            .map_err(|e| self.classify(e))?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

impl sql::Operations for PgStore {
    fn get(&mut self, resource: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let row = self
            .conn()?
            .query_typed_opt(
                "SELECT data::text FROM records WHERE resource = $1 AND id = $2",
                &[(&resource, Type::TEXT), (&id, Type::TEXT)],
            )
            .map_err(|e| self.classify(e))?;
        row.map(|r| parse(&r.get::<_, String>(0))).transpose()
    }

    fn insert(&mut self, resource: &str, record: &Value) -> Result<StoreOutcome, StoreError> {
        let id = sql::record_id(record)?;
        let text = storable(record)?;
        let inserted = self
            .conn()?
            .execute_typed(
                "INSERT INTO records (resource, id, data) VALUES ($1, $2, $3::json) \
                 ON CONFLICT (resource, id) DO NOTHING",
                &[
                    (&resource, Type::TEXT),
                    (&id, Type::TEXT),
                    (&text, Type::TEXT),
                ],
            )
            .map_err(|e| self.classify(e))?;
        if inserted == 0 {
            return Err(sql::conflict(id));
        }
        Ok(StoreOutcome::Inserted(record.clone()))
    }

    fn update(
        &mut self,
        resource: &str,
        id: &str,
        patch: &Value,
    ) -> Result<StoreOutcome, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(|e| self.classify(e))?;
        let row = tx
            .query_typed_opt(
                "SELECT data::text FROM records WHERE resource = $1 AND id = $2 FOR UPDATE",
                &[(&resource, Type::TEXT), (&id, Type::TEXT)],
            )
            .map_err(|e| self.classify(e))?;
        let Some(row) = row else {
            return Err(sql::not_found(id));
        };
        let previous = parse(&row.get::<_, String>(0))?;
        let record = sql::patched(&previous, id, patch);
        let text = storable(&record)?;
        tx.execute_typed(
            "UPDATE records SET data = $3::json WHERE resource = $1 AND id = $2",
            &[
                (&resource, Type::TEXT),
                (&id, Type::TEXT),
                (&text, Type::TEXT),
            ],
        )
        .map_err(|e| self.classify(e))?;
        tx.commit().map_err(|e| self.classify(e))?;
        Ok(StoreOutcome::Updated { record, previous })
    }

    fn delete(&mut self, resource: &str, id: &str) -> Result<StoreOutcome, StoreError> {
        let row = self
            .conn()?
            .query_typed_opt(
                "DELETE FROM records WHERE resource = $1 AND id = $2 RETURNING data::text",
                &[(&resource, Type::TEXT), (&id, Type::TEXT)],
            )
            .map_err(|e| self.classify(e))?;
        match row {
            Some(r) => Ok(StoreOutcome::Deleted {
                previous: parse(&r.get::<_, String>(0))?,
            }),
            None => Err(sql::not_found(id)),
        }
    }

    fn list(
        &mut self,
        resource: &str,
        filter: &Value,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<StoreOutcome, StoreError> {
        sql::list(
            &mut Reader(self),
            &self.indexes,
            resource,
            filter,
            limit,
            cursor,
        )
    }
}

/// The JSON text of a record PostgreSQL can store: its JSON operators (filters,
/// declared indexes) refuse the character U+0000 anywhere in a document, so a record
/// holding one is refused (`Internal`) rather than stored and breaking every filtered
/// `list` of its resource.
fn storable(record: &Value) -> Result<String, StoreError> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let text = record.to_string();
    // Serialized, U+0000 is always `\u0000`: walk the record only when that appears.
    if text.contains("\\u0000") && has_nul(record) {
        return Err(sql::internal(
            "PostgreSQL cannot store the character U+0000 in a record's strings",
        ));
    }
    Ok(text)
}

/// Create the records table and the declared indexes if missing, in one transaction
/// under [`MIGRATION_LOCK`] (nodes starting together wait for each other).
fn migrate(conn: &mut postgres::Client, specs: &[sql::IndexSpec]) -> Result<(), postgres::Error> {
    let mut tx = conn.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS records (
            resource text COLLATE \"C\" NOT NULL,
            id text COLLATE \"C\" NOT NULL,
            data json NOT NULL,
            PRIMARY KEY (resource, id)
        )",
    )?;
    for spec in specs {
        tx.batch_execute(&spec.create)?;
    }
    tx.commit()
}

/// A query argument as the client sends it: text (cast in the SQL) or an `int8`.
enum Param {
    Text(String),
    Int(i64),
}

fn bind(args: &[Arg]) -> Vec<Param> {
    args.iter()
        .map(|a| match a {
            Arg::Text(s) | Arg::Order(Scalar::Text(s)) => Param::Text(s.clone()),
            Arg::Int(i) => Param::Int(*i),
            Arg::Equal(s) => Param::Text(s.json()),
            Arg::Order(s) => Param::Text(s.json()),
        })
        .collect()
}

fn typed(params: &[Param]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(s) => (s as &(dyn ToSql + Sync), Type::TEXT),
            Param::Int(i) => (i as &(dyn ToSql + Sync), Type::INT8),
        })
        .collect()
}

/// The rows of a `list` query, streamed.
struct Reader<'a>(&'a PgStore);

impl sql::SqlRows for Reader<'_> {
    fn each_row(
        &mut self,
        query: &str,
        args: &[Arg],
        row: &mut dyn FnMut(String, Option<String>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let store = self.0;
        let mut conn = store.conn()?;
        let params = bind(args);
        let mut rows = conn
            .query_typed_raw(&sql::numbered(query), typed(&params))
            .map_err(|e| store.classify(e))?;
        while let Some(r) = rows.next().map_err(|e| store.classify(e))? {
            let id: String = r.try_get(0).map_err(sql::internal)?;
            let text: Option<String> = r.try_get(1).map_err(sql::internal)?;
            if !row(id, text)? {
                break;
            }
        }
        Ok(())
    }
}

impl RecordStore for PgStore {
    fn apply(&mut self, request: &StoreRequest) -> StoreOutcome {
        let result = sql::run(self, request);
        if result.is_ok() {
            self.health.up.store(true, Ordering::Release);
        }
        result.unwrap_or_else(StoreOutcome::Failed)
    }
}

/// Check the database every [`HEALTH_INTERVAL`], logging when it becomes unreachable
/// and when it answers again; stops once the store and the server state are gone.
fn spawn_health_check(pool: Pool, health: StoreHealth) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("switchboard-pg-health".into())
        .spawn(move || {
            while Arc::strong_count(&health.up) > 1 {
                std::thread::sleep(HEALTH_INTERVAL);
                let check = pool
                    .get_timeout(HEALTH_INTERVAL)
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| c.simple_query("SELECT 1").map_err(|e| e.to_string()));
                let was_up = health.up.swap(check.is_ok(), Ordering::AcqRel);
                match (&check, was_up) {
                    (Err(e), true) => tracing::error!(
                        database = %health.url,
                        error = %e,
                        "PostgreSQL is unreachable: store calls fail with UNAVAILABLE until it is back"
                    ),
                    (Ok(_), false) => {
                        tracing::info!(database = %health.url, "PostgreSQL is reachable again")
                    }
                    _ => {}
                }
            }
        })
        .map(|_| ())
}
