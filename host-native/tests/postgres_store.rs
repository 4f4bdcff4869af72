//! The PostgreSQL store (`--store postgres://...`) against a real PostgreSQL started here
//! (127.0.0.1, temp data dir, random port, stopped at the end; see common/postgres.rs):
//! the engine's store contract, the same pages and cursors as the memory store for every
//! filter, declared indexes, the same error kinds and texts as the SQLite store, a
//! database restart (`UNAVAILABLE`, `/readyz` 503, then recovery without restarting the
//! node), two nodes sharing records and change events through Redis and PostgreSQL, and
//! startup refusing a bad or unreachable database.
//!
//! Skipped, with a message, when PostgreSQL is not installed (`scripts/setup.sh`
//! installs it); in CI (`CI=true`) a missing PostgreSQL fails.

#[path = "../src/store/cases.rs"]
mod cases;
mod common;
#[path = "common/postgres.rs"]
mod pg;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use engine::store::{MemoryStore, RecordStore};
use engine::{StoreError, StoreErrorKind, StoreOutcome, StoreRequest};
use serde_json::{json, Value};
use switchboard::store::{PgStore, SqliteStore};

/// Longest wait for a reconnection.
const RECOVERY: Duration = Duration::from_secs(20);

fn resources(config: Value) -> std::collections::BTreeMap<String, engine::config::ResourceConfig> {
    engine::Config::from_value(json!({ "resources": config }))
        .expect("valid config")
        .resources
}

/// A store on database `db` of `pg` (created empty).
fn store(pg: &pg::Postgres, db: &str, config: Value) -> PgStore {
    pg.create_db(db);
    PgStore::connect(&pg.url(db), &resources(config)).expect("store connects")
}

fn insert(resource: &str, record: Value) -> StoreRequest {
    StoreRequest::Insert {
        resource: resource.into(),
        record,
    }
}

#[test]
fn the_postgres_store_keeps_the_store_contract_and_pages_like_the_memory_store() {
    let Some(pg) = pg::Postgres::start() else {
        return;
    };
    // The engine's contract, each round on a fresh database.
    let mut n = 0;
    engine::store::contract::check(|| {
        n += 1;
        store(&pg, &format!("contract{n}"), json!({}))
    });

    // Every filter pushed into SQL pages exactly like the memory store, cursors included.
    let mut sql = store(&pg, "filters", json!({"r": {}}));
    let mut mem = MemoryStore::new();
    for record in cases::records() {
        let r = insert("r", record);
        assert_eq!(sql.apply(&r), mem.apply(&r));
    }
    for f in cases::filters() {
        cases::same_pages(&mut sql, &mut mem, "r", &f, 3);
    }
    cases::same_pages(&mut sql, &mut mem, "r", &Value::Null, 7);
    // A cursor nobody issued is refused like the memory store refuses it.
    let bad = StoreRequest::List {
        resource: "r".into(),
        filter: Value::Null,
        limit: 3,
        cursor: Some("not-a-cursor".into()),
    };
    assert_eq!(sql.apply(&bad), mem.apply(&bad));

    // The same error kinds and texts as the SQLite store.
    let mut lite = SqliteStore::open_in_memory().unwrap();
    let requests = [
        insert("e", json!({"id": "a", "n": 1})),
        insert("e", json!({"id": "a", "n": 2})),
        insert("e", json!({"n": 3})),
        StoreRequest::Update {
            resource: "e".into(),
            id: "nope".into(),
            patch: json!({"n": 4}),
        },
        StoreRequest::Update {
            resource: "e".into(),
            id: "a".into(),
            patch: json!({"n": null, "k": {"x": 1}}),
        },
        StoreRequest::Delete {
            resource: "e".into(),
            id: "nope".into(),
        },
        StoreRequest::Delete {
            resource: "e".into(),
            id: "a".into(),
        },
        StoreRequest::Get {
            resource: "e".into(),
            id: "a".into(),
        },
    ];
    for r in &requests {
        assert_eq!(sql.apply(r), lite.apply(r), "{r:?}");
    }
    // U+0000 (which PostgreSQL's JSON operators refuse) is refused at the write; the
    // resource's filtered lists keep working.
    let nul = sql.apply(&insert("e", json!({"id": "z", "s": "a\u{0}b"})));
    assert!(
        matches!(&nul, StoreOutcome::Failed(StoreError { kind: StoreErrorKind::Internal, message }) if message.contains("U+0000")),
        "{nul:?}"
    );
    sql.apply(&insert("e", json!({"id": "y", "s": "a\\u0000b"})));
    let list = sql.apply(&StoreRequest::List {
        resource: "e".into(),
        filter: json!({"s": {"$gte": "a"}}),
        limit: 10,
        cursor: None,
    });
    assert!(
        matches!(&list, StoreOutcome::Page { items, .. } if items.len() == 1),
        "{list:?}"
    );
    // Records come back exactly as written (key order, number spelling).
    let odd = json!({"id": "o", "z": 1, "a": 1e16, "m": 1.0});
    sql.apply(&insert("o", odd.clone()));
    let StoreOutcome::Record(Some(back)) = sql.apply(&StoreRequest::Get {
        resource: "o".into(),
        id: "o".into(),
    }) else {
        panic!("a record")
    };
    assert_eq!(back.to_string(), odd.to_string());
}

#[test]
fn declared_indexes_are_created_once_and_filtered_lists_read_through_them() {
    let Some(pg) = pg::Postgres::start() else {
        return;
    };
    let config = json!({"messages": {"indexes": ["channel", ["author.id", "n"]]}, "other": {}});
    let mut s = store(&pg, "idx", config.clone());
    // A second node starting on the same database finds table and indexes in place.
    let again = PgStore::connect(&pg.url("idx"), &resources(config)).expect("reconnects");
    drop(again);
    // 12 000 records, one in 1 000 on `rare`: more than one scan budget apart.
    pg.sql(
        "idx",
        "INSERT INTO records (resource, id, data) SELECT 'messages', format('m%s', lpad(i::text, 5, '0')), \
         format('{\"id\":\"m%s\",\"channel\":\"%s\",\"n\":%s}', lpad(i::text, 5, '0'), \
                CASE WHEN i % 1000 = 7 THEN 'rare' ELSE 'busy' END, i)::json \
         FROM generate_series(0, 11999) AS i; ANALYZE records;",
    );
    let names = std::thread::spawn({
        let url = pg.url("idx");
        move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'records' AND indexname LIKE 'sb_idx_%'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<String>>()
        }
    })
    .join()
    .unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    let plan = s
        .explain_list("messages", &json!({"channel": "rare"}))
        .unwrap();
    assert!(names.iter().any(|n| plan.contains(n.as_str())), "{plan}");

    let list =
        |s: &mut PgStore, limit: usize, cursor: Option<String>| match s.apply(&StoreRequest::List {
            resource: "messages".into(),
            filter: json!({"channel": "rare"}),
            limit,
            cursor,
        }) {
            StoreOutcome::Page { items, cursor } => (items, cursor),
            other => panic!("a page, not {other:?}"),
        };
    let (items, cursor) = list(&mut s, 100, None);
    let ids: Vec<&str> = items.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..12).map(|k| format!("m{:05}", k * 1000 + 7)).collect();
    assert_eq!(ids, expected, "every match in one page, in id order");
    assert_eq!(cursor, None);
    let (items, cursor) = list(&mut s, 5, None);
    assert_eq!(items.len(), 5);
    let (items, _) = list(&mut s, 100, cursor);
    assert_eq!(items.len(), 7);
    assert_eq!(items[0]["id"], "m05007");

    // Without an index, a filter matching nothing reads a budget of rows per page and
    // pages on exactly like the memory store.
    let mut mem = MemoryStore::new();
    for i in 0..12_000 {
        let channel = if i % 1000 == 7 { "rare" } else { "busy" };
        let id = format!("m{i:05}");
        mem.apply(&insert(
            "messages",
            json!({"id": id, "channel": channel, "n": i}),
        ));
    }
    cases::same_pages(
        &mut s,
        &mut mem,
        "messages",
        &json!({"n": {"$in": [11999]}}),
        5,
    );
}

/// An in-process node on `store` (and `broker`), the test deployment otherwise.
async fn node(store: &str, broker: Option<&str>) -> switchboard::RunningServer {
    let mut server = json!({"store": store});
    if let Some(b) = broker {
        server["broker"] = json!(b);
    }
    start(json!({ "server": server })).await
}

/// `/readyz` until it answers `status`.
async fn readyz_becomes(addr: std::net::SocketAddr, status: u16) -> Value {
    tokio::time::timeout(RECOVERY, async {
        loop {
            let r = http(addr, "GET", "/readyz", &[], None).await;
            if r.status == status {
                return r.json();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("/readyz never answered {status}"))
}

/// Send a `get` of `messages/id` (with `request_id`) and return the answer.
async fn get(ws: &mut Ws, id: &str, request_id: u64) -> Value {
    send(
        ws,
        json!({"type":"get","resource":"messages","id": id,"requestId": request_id}),
    )
    .await;
    loop {
        let v = recv(ws).await;
        if v["requestId"] == request_id {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_fails_store_calls_as_unavailable_then_the_node_recovers() {
    let Some(mut pg) = pg::Postgres::start() else {
        return;
    };
    pg.create_db("restart");
    let server = node(&pg.url("restart"), None).await;
    let addr = server.local_addr();
    readyz_becomes(addr, 200).await;
    let (mut ws, _) = connect(addr, "/").await;
    send(
        &mut ws,
        json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"kept"},"requestId":1}),
    )
    .await;
    assert_eq!(recv_type(&mut ws, "inserted").await["requestId"], 1);

    pg.stop();
    let down = get(&mut ws, "m1", 2).await;
    assert_eq!(
        (down["type"].as_str(), down["code"].as_str()),
        (Some("error"), Some("UNAVAILABLE")),
        "{down}"
    );
    let ready = readyz_becomes(addr, 503).await;
    assert_eq!(ready["status"], "store-unavailable", "{ready}");

    pg.resume();
    readyz_becomes(addr, 200).await;
    let back = tokio::time::timeout(RECOVERY, async {
        for i in 3u64.. {
            let v = get(&mut ws, "m1", i).await;
            if v["type"] == "data" {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!()
    })
    .await
    .expect("store calls succeed again once PostgreSQL is back");
    assert_eq!(back["data"]["content"], "kept", "{back}");
    server.shutdown().await;
}

/// redis-server on a free port of 127.0.0.1 (no persistence), killed when dropped.
struct Redis(std::process::Child, u16);

impl Redis {
    fn start() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis(child, port);
        let deadline = std::time::Instant::now() + RECOVERY;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(r)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_and_one_postgresql_share_records_and_change_events() {
    let Some(pg) = pg::Postgres::start() else {
        return;
    };
    let Some(redis) = Redis::start() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is missing"
        );
        eprintln!("SKIPPED: redis-server is not installed (bash scripts/setup.sh installs it)");
        return;
    };
    pg.create_db("shared");
    let (url, broker) = (pg.url("shared"), format!("redis://127.0.0.1:{}", redis.1));
    let a = node(&url, Some(&broker)).await;
    let b = node(&url, Some(&broker)).await;
    readyz_becomes(a.local_addr(), 200).await;
    readyz_becomes(b.local_addr(), 200).await;
    let (mut wa, _) = connect(a.local_addr(), "/").await;
    let (mut wb, _) = connect(b.local_addr(), "/").await;
    send(
        &mut wb,
        json!({"type":"subscribe","resource":"messages","requestId":1}),
    )
    .await;
    recv_type(&mut wb, "subscribed").await;
    send(
        &mut wa,
        json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"shared"},"requestId":2}),
    )
    .await;
    assert_eq!(recv_type(&mut wa, "inserted").await["requestId"], 2);
    // B's subscriber gets the change event through Redis ...
    let ev = tokio::time::timeout(RECOVERY, recv_type(&mut wb, "event"))
        .await
        .expect("the change event reached node B");
    assert_eq!(
        (ev["event"].as_str(), ev["data"]["content"].as_str()),
        (Some("insert"), Some("shared")),
        "{ev}"
    );
    // ... and the record is in the shared database: B reads it.
    let got = get(&mut wb, "m1", 3).await;
    assert_eq!(
        (got["type"].as_str(), got["data"]["content"].as_str()),
        (Some("data"), Some("shared")),
        "{got}"
    );
    // An id taken on A is taken on B.
    send(
        &mut wb,
        json!({"type":"insert","resource":"messages","data":{"id":"m1","content":"again"},"requestId":4}),
    )
    .await;
    let dup = loop {
        let v = recv(&mut wb).await;
        if v["requestId"] == 4 {
            break v;
        }
    };
    assert_eq!(
        (dup["code"].as_str(), dup["message"].as_str()),
        (
            Some("VALIDATION_ERROR"),
            Some("id: a record with this id already exists")
        ),
        "{dup}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// `switchboard ARGS... --config examples/demo.toml` (with `SWITCHBOARD_STORE=store` if
/// given): its exit status and stderr (within 30 s).
fn run_with(args: &[&str], store: Option<&str>) -> (std::process::ExitStatus, String) {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo.toml");
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .args(["--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("SWITCHBOARD_STORE")
        .env_remove("SWITCHBOARD_BROKER")
        .envs(store.map(|s| ("SWITCHBOARD_STORE", s)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("switchboard {args:?} still runs after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(args: &[&str]) -> (std::process::ExitStatus, String) {
    run_with(args, None)
}

#[test]
fn a_bad_or_unreachable_database_stops_startup_with_a_clear_error() {
    let (status, err) = run_with(
        &["serve", "--listen", "127.0.0.1:0"],
        Some("mysql://u@127.0.0.1/db"),
    );
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("SWITCHBOARD_STORE") && err.contains("is not a store"),
        "{err}"
    );

    let (status, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        "postgres://127.0.0.1/db",
    ]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("--store") && err.contains("names no user"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Nothing listens on port 1.
    let (status, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        "postgres://sb:secret@127.0.0.1:1/db",
    ]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("cannot connect to PostgreSQL at postgres://sb:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(
        !err.contains("secret") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn unavailable_is_the_kind_of_a_call_made_while_the_database_is_gone() {
    let Some(mut pg) = pg::Postgres::start() else {
        return;
    };
    let mut s = store(&pg, "gone", json!({}));
    pg.stop();
    let get = StoreRequest::Get {
        resource: "r".into(),
        id: "a".into(),
    };
    let StoreOutcome::Failed(StoreError { kind, message }) = s.apply(&get) else {
        panic!("a failure while PostgreSQL is down");
    };
    assert_eq!(kind, StoreErrorKind::Unavailable, "{message}");
    assert!(message.contains("PostgreSQL"), "{message}");
    assert!(!s.health().up.load(std::sync::atomic::Ordering::Acquire));
    pg.resume();
    let deadline = std::time::Instant::now() + RECOVERY;
    while s.apply(&get) != StoreOutcome::Record(None) {
        assert!(
            std::time::Instant::now() < deadline,
            "the store never recovered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
