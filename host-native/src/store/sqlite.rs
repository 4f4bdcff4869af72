//! The SQLite store (the single-node default).
//!
//! One table, `records(resource TEXT, id TEXT, data TEXT, PRIMARY KEY(resource, id))`,
//! `data` holding the record as JSON. The database runs in WAL mode with
//! `synchronous=FULL`: every write is its own transaction and SQLite fsyncs the WAL
//! before the commit returns, so a write the engine has acknowledged to a client (or the
//! admin API has answered) survives `kill -9` and power loss. (`NORMAL` would only be
//! safe against process crashes, not against power loss.)

use std::path::Path;

use engine::store::RecordStore;
use engine::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::sql::{self, fail, internal, parse, Arg, Dialect, Indexes, Operations, Scalar};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "switchboard.db";

/// A [`RecordStore`] backed by a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    pub(super) conn: Connection,
    /// The declared indexes (`resources.<name>.indexes`): a filtered `list` with an
    /// equality on an index's first field reads through it.
    pub(super) indexes: Indexes,
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
            indexes: Indexes::new(Dialect::Sqlite),
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
        for spec in self.indexes.declare(resources) {
            self.conn.execute_batch(&spec.create)?;
            names.push(spec.name);
        }
        Ok(names)
    }
}

impl Operations for SqliteStore {
    fn get(&mut self, resource: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT data FROM records WHERE resource = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row(params![resource, id], |r| r.get(0)).optional())
            .map_err(internal)?;
        text.map(|t| parse(&t)).transpose()
    }

    fn list(
        &mut self,
        resource: &str,
        filter: &Value,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<StoreOutcome, StoreError> {
        let mut reader = Reader(&self.conn);
        sql::list(&mut reader, &self.indexes, resource, filter, limit, cursor)
    }

    fn insert(&mut self, resource: &str, record: &Value) -> Result<StoreOutcome, StoreError> {
        let id = sql::record_id(record)?;
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
                Err(sql::conflict(id))
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
            return Err(sql::not_found(id));
        };
        let previous = parse(&text)?;
        let record = sql::patched(&previous, id, patch);
        tx.prepare_cached("UPDATE records SET data = ?3 WHERE resource = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![resource, id, record.to_string()]))
            .map_err(classify)?;
        tx.commit().map_err(classify)?;
        Ok(StoreOutcome::Updated { record, previous })
    }

    fn delete(&mut self, resource: &str, id: &str) -> Result<StoreOutcome, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("DELETE FROM records WHERE resource = ?1 AND id = ?2 RETURNING data")
            .and_then(|mut s| s.query_row(params![resource, id], |r| r.get(0)).optional())
            .map_err(classify)?;
        match text {
            Some(t) => Ok(StoreOutcome::Deleted {
                previous: parse(&t)?,
            }),
            None => Err(sql::not_found(id)),
        }
    }
}

/// A query argument as SQLite binds it.
fn bind(arg: &Arg) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match arg {
        Arg::Text(s) | Arg::Equal(Scalar::Text(s)) | Arg::Order(Scalar::Text(s)) => {
            S::Text(s.clone())
        }
        Arg::Int(i) | Arg::Equal(Scalar::Int(i)) | Arg::Order(Scalar::Int(i)) => S::Integer(*i),
        Arg::Equal(Scalar::Real(f)) | Arg::Order(Scalar::Real(f)) => S::Real(*f),
    }
}

/// The rows of a `list` query, read one at a time.
struct Reader<'a>(&'a Connection);

impl sql::SqlRows for Reader<'_> {
    fn each_row(
        &mut self,
        query: &str,
        args: &[Arg],
        row: &mut dyn FnMut(String, Option<String>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(query).map_err(internal)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter().map(bind)))
            .map_err(internal)?;
        while let Some(r) = rows.next().map_err(internal)? {
            let id: String = r.get(0).map_err(internal)?;
            let text: Option<String> = r.get(1).map_err(internal)?;
            if !row(id, text)? {
                break;
            }
        }
        Ok(())
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
        let result = sql::run(self, request);
        result.unwrap_or_else(StoreOutcome::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::store::MemoryStore;
    use serde_json::json;
    use std::time::Instant;

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

    fn same_pages(sql: &mut SqliteStore, mem: &mut MemoryStore, filter: &Value, limit: usize) {
        super::super::cases::same_pages(sql, mem, "r", filter, limit);
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
        let (mut sql, mut mem) = both(super::super::cases::records());
        for f in &super::super::cases::filters() {
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
        let (sql, args) = store.indexes.filtered_query(resource, &parsed, "");
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter().map(bind)), |r| {
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
        let (sql, _) = store.indexes.filtered_query("messages", &parsed, "");
        assert!(!sql.contains("OR 1=1"), "{sql}");
    }

    #[test]
    fn simple_conditions_are_pushed_into_sql() {
        let f = engine::filter::Filter::parse(
            &json!({"channel": "general", "n": {"$gt": 1, "$ne": 3}, "o": {"a": 1}}),
        )
        .unwrap();
        let (sql, args) = sql::sql_prefilter(Dialect::Sqlite, &f);
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
