//! Deployment configuration: one TOML (or JSON) document.
//!
//! Host settings live under `[server]`; every other top-level key is the engine's
//! [`engine::Config`] (same camelCase keys). The document is converted to a
//! `serde_json::Value`, secrets from the environment are applied
//! (`SWITCHBOARD_JWT_SECRET` → `auth.jwt.secret`, `SWITCHBOARD_ADMIN_KEY` →
//! `server.adminKey`), and both halves are validated so that every problem is
//! reported with its field path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The demo deployment (`examples/demo.toml`), used by `switchboard serve` without `--config`.
/// (`host-native/demo.toml` is a link to it, so the published crate carries it.)
pub const DEMO_TOML: &str = include_str!("../demo.toml");

// The store kind is the store's ([`crate::store::StoreKind`]: the store opens it, and
// the config must not be a dependency of the store). Re-exported so its old path keeps
// working.
pub use crate::store::StoreKind;
pub use engine::deployment::{
    apply_env, uses_dev_jwt_secret, DEV_ADMIN_KEY, DEV_JWT_SECRET, ENV_ADMIN_KEY, ENV_JWT_SECRET,
};

/// Settings of the native host (the `[server]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Default `127.0.0.1:3001`.
    pub listen: String,
    /// Directory holding the SQLite file (`switchboard.db`). Default `data`.
    pub data_dir: PathBuf,
    /// `sqlite` (default), `memory` (nothing survives a restart) or
    /// `postgres://USER@HOST:PORT/DB` (records shared by the nodes of a cluster;
    /// `--store`, `SWITCHBOARD_STORE`).
    pub store: StoreKind,
    /// Key required by the admin API (`Authorization: Bearer KEY` or `X-Admin-Key`).
    /// Default `dev-admin`; override with `SWITCHBOARD_ADMIN_KEY`.
    pub admin_key: String,
    /// Serve `wss://` with this certificate chain and key (PEM files).
    pub tls: Option<TlsSettings>,
    /// How long a graceful shutdown may take before remaining sockets are dropped. Default 10000.
    pub shutdown_timeout_ms: u64,
    /// Log filter (`info`, `debug`, `switchboard=debug,info`, ...); `RUST_LOG` wins. Default `info`.
    pub log_level: String,
    /// Frames queued per connection before the engine's slow-consumer policy is asked
    /// to decide (a full queue counts as over `limits.maxBufferedBytes`). Default 1024.
    pub outbound_queue: usize,
    /// Read buffer, in bytes, shared by all the connections of a worker thread (a
    /// connection holds bytes of its own only while a frame arrives in pieces). Default
    /// 16384.
    pub read_buffer_size: usize,
    /// Bytes handed to one (vectored) write call at most: queued frames are written
    /// together up to this size. Default 16384.
    pub write_buffer_size: usize,
    /// Threads that share the socket writes of a large fan-out with the engine's thread
    /// ([`crate::writers`]), at most 64. Default 0: every write on the engine's thread.
    pub write_threads: usize,
    /// Threads of the async runtime that read, decode and write the connections (the
    /// engine decides on one of them), at most [`MAX_WORKER_THREADS`]. Default 0:
    /// `TOKIO_WORKER_THREADS` when set, else one per CPU the process may use. With one,
    /// the runtime is tokio's single-threaded scheduler, which hands a frame from its
    /// connection to the engine and back for less than the multi-threaded one. Read by
    /// `switchboard serve`; a program that embeds the server
    /// ([`crate::server::ServerBuilder`]) runs it on its own runtime.
    pub worker_threads: usize,
    /// Largest admin API request body, in bytes. Default 1 MiB.
    pub max_admin_body: usize,
    /// Whether `GET /` (and GETs on the WebSocket paths) show live counts, routes and
    /// resource names to anyone. Default false: without the admin key they show only
    /// the name, protocol version and whether the server is draining.
    pub public_info: bool,
    /// With the SQLite store, keep channel history (publications, offsets, epochs) in
    /// `DATA_DIR/streams.db` so it survives a restart, `kill -9` included: frames of a
    /// publication are sent once it is written. Default true; ignored with the memory
    /// store.
    pub persist_streams: bool,
    /// Join a cluster through this broker: `redis://HOST:PORT[/DB]` (`--broker`,
    /// `SWITCHBOARD_BROKER`). Default none: a single node.
    pub broker: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3001".into(),
            data_dir: PathBuf::from("data"),
            store: StoreKind::Sqlite,
            admin_key: DEV_ADMIN_KEY.into(),
            tls: None,
            shutdown_timeout_ms: 10_000,
            log_level: "info".into(),
            outbound_queue: 1024,
            read_buffer_size: 16 * 1024,
            write_buffer_size: 16 * 1024,
            write_threads: 0,
            worker_threads: 0,
            max_admin_body: 1024 * 1024,
            public_info: false,
            persist_streams: true,
            broker: None,
        }
    }
}

/// Most runtime threads `server.workerThreads` may ask for.
pub const MAX_WORKER_THREADS: usize = 1024;

impl ServerSettings {
    /// How many runtime threads to start: `workerThreads`, or `default` when it is 0
    /// (at least one).
    pub fn runtime_threads(&self, default: usize) -> usize {
        match self.worker_threads {
            0 => default.max(1),
            n => n,
        }
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen.parse().map_err(|e| {
            format!(
                "`{}` is not an address like 127.0.0.1:3001 ({e})",
                self.listen
            )
        })
    }
}

/// TLS certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A validated deployment: host settings plus the engine config.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// `[server]`.
    pub server: ServerSettings,
    /// Everything else.
    pub engine: engine::Config,
}

/// One problem in a config document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path (`server.listen`, `limits.maxConnections`; empty for the document).
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

/// Every problem found in a config document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

fn problem(path: impl Into<String>, problem: impl Into<String>) -> Problems {
    Problems(vec![Problem {
        path: path.into(),
        problem: problem.into(),
    }])
}

/// Parse TOML text into a JSON value (the form both halves are validated from).
pub fn toml_to_json(text: &str) -> Result<Value, Problems> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| problem("", e.to_string()))?;
    serde_json::to_value(doc).map_err(|e| problem("", e.to_string()))
}

/// Read a config file: `.json` files are JSON, anything else is TOML.
pub fn read_document(path: &Path) -> Result<Value, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem("", format!("cannot read {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| problem("", e.to_string()))
    } else {
        toml_to_json(&text)
    }
}

/// Validate a document (after [`apply_env`]) into a deployment, collecting every problem.
pub fn from_document(mut doc: Value) -> Result<Deployment, Problems> {
    let Value::Object(root) = &mut doc else {
        return Err(problem("", "the config must be a table/object"));
    };
    let server_value = root
        .remove("server")
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut problems = Vec::new();
    let server = match serde_path_to_error::deserialize::<_, ServerSettings>(server_value) {
        Ok(s) => {
            problems.extend(check_server(&s).0);
            Some(s)
        }
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." {
                "server".to_string()
            } else {
                format!("server.{path}")
            };
            problems.push(Problem {
                path,
                problem: e.into_inner().to_string(),
            });
            None
        }
    };
    let engine = match engine::Config::from_value(doc) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.extend(e.issues.into_iter().map(|i| Problem {
                path: i.path,
                problem: i.problem,
            }));
            None
        }
    };
    match (server, engine) {
        (Some(server), Some(engine)) if problems.is_empty() => Ok(Deployment { server, engine }),
        _ => Err(Problems(problems)),
    }
}

/// Semantic checks of the host settings.
pub fn check_server(s: &ServerSettings) -> Problems {
    let mut out = Vec::new();
    let mut push = |path: &str, p: String| {
        out.push(Problem {
            path: path.into(),
            problem: p,
        })
    };
    if let Err(e) = s.listen_addr() {
        push("server.listen", e);
    }
    if s.admin_key.is_empty() {
        push("server.adminKey", "must not be empty".into());
    }
    if let Some(b) = &s.broker {
        if let Err(e) = crate::cluster::parse_url(b) {
            push("server.broker", e.to_string());
        }
    }
    if s.shutdown_timeout_ms == 0 {
        push("server.shutdownTimeoutMs", "must be at least 1".into());
    }
    if s.outbound_queue == 0 {
        push("server.outboundQueue", "must be at least 1".into());
    }
    if s.read_buffer_size < 256 {
        push("server.readBufferSize", "must be at least 256".into());
    }
    if s.write_threads > crate::writers::MAX_THREADS {
        push(
            "server.writeThreads",
            format!("must be at most {}", crate::writers::MAX_THREADS),
        );
    }
    if s.worker_threads > MAX_WORKER_THREADS {
        push(
            "server.workerThreads",
            format!("must be at most {MAX_WORKER_THREADS}"),
        );
    }
    if s.max_admin_body == 0 {
        push("server.maxAdminBody", "must be at least 1".into());
    }
    if tracing_subscriber::EnvFilter::try_new(&s.log_level).is_err() {
        push(
            "server.logLevel",
            format!("`{}` is not a log filter like `info`", s.log_level),
        );
    }
    if let Some(tls) = &s.tls {
        for (path, file) in [("server.tls.cert", &tls.cert), ("server.tls.key", &tls.key)] {
            if let Err(e) = std::fs::metadata(file) {
                push(path, format!("cannot read {}: {e}", file.display()));
            }
        }
    }
    Problems(out)
}

/// Load a deployment from a file, applying the real environment.
pub fn load_file(path: &Path) -> Result<Deployment, Problems> {
    let mut doc = read_document(path)?;
    apply_env(&mut doc, |k| std::env::var(k).ok());
    from_document(doc)
}

/// The demo deployment, applying the real environment.
pub fn demo() -> Result<Deployment, Problems> {
    let mut doc = toml_to_json(DEMO_TOML)?;
    apply_env(&mut doc, |k| std::env::var(k).ok());
    from_document(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn demo_toml_and_json_are_identical() {
        let toml = toml_to_json(DEMO_TOML).unwrap();
        let json: Value = serde_json::from_str(include_str!("../../examples/demo.json")).unwrap();
        assert_eq!(
            toml, json,
            "examples/demo.toml and examples/demo.json differ"
        );
    }

    #[test]
    fn demo_is_valid() {
        let mut doc = toml_to_json(DEMO_TOML).unwrap();
        apply_env(&mut doc, no_env);
        let d = from_document(doc).unwrap();
        assert_eq!(d.server.listen, "127.0.0.1:3001");
        assert!(uses_dev_jwt_secret(&d.engine));
        assert_eq!(d.engine.max_payload_size, 1024 * 1024);
        assert!(d.engine.resources.contains_key("users"));
        assert!(d.engine.resources.contains_key("messages"));
    }

    #[test]
    fn env_overrides_secrets() {
        let mut doc = toml_to_json(DEMO_TOML).unwrap();
        apply_env(&mut doc, |k| match k {
            ENV_JWT_SECRET => Some("s3cret".into()),
            ENV_ADMIN_KEY => Some("adm".into()),
            _ => None,
        });
        let d = from_document(doc).unwrap();
        assert_eq!(d.server.admin_key, "adm");
        assert!(!uses_dev_jwt_secret(&d.engine));
        assert_eq!(d.engine.auth.jwt.unwrap().secret.as_deref(), Some("s3cret"));
    }

    #[test]
    fn every_problem_has_a_path() {
        let doc = toml_to_json(
            r#"
            heartbeatInterval = "soon"
            [server]
            listen = "nowhere"
            outboundQueue = 0
            "#,
        )
        .unwrap();
        let err = from_document(doc).unwrap_err();
        let paths: Vec<_> = err.0.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"server.listen"), "{err}");
        assert!(paths.contains(&"server.outboundQueue"), "{err}");
        assert!(paths.contains(&"heartbeatInterval"), "{err}");
    }

    #[test]
    fn a_broker_that_is_not_a_redis_url_is_reported_at_its_path() {
        let doc = toml_to_json("[server]\nbroker = \"amqp://x\"\n").unwrap();
        let err = from_document(doc).unwrap_err();
        assert_eq!(err.0[0].path, "server.broker", "{err}");
        let ok = toml_to_json("[server]\nbroker = \"redis://127.0.0.1:6379/1\"\n").unwrap();
        let d = from_document(ok).unwrap();
        assert_eq!(d.server.broker.as_deref(), Some("redis://127.0.0.1:6379/1"));
    }

    #[test]
    fn a_store_is_sqlite_memory_or_a_postgres_url_reported_at_its_path() {
        for bad in [
            "mysql://u@h/db",
            "postgres://h:5432/db",
            "postgres://u@h/db?sslmode=require",
        ] {
            let doc = toml_to_json(&format!("[server]\nstore = \"{bad}\"\n")).unwrap();
            let err = from_document(doc).unwrap_err();
            assert_eq!(err.0[0].path, "server.store", "{bad}: {err}");
        }
        let doc =
            toml_to_json("[server]\nstore = \"postgres://u:pw@127.0.0.1:5432/db\"\n").unwrap();
        let d = from_document(doc).unwrap();
        assert_eq!(
            d.server.store,
            StoreKind::Postgres("postgres://u:pw@127.0.0.1:5432/db".into())
        );
        for (text, kind) in [("sqlite", StoreKind::Sqlite), ("memory", StoreKind::Memory)] {
            let doc = toml_to_json(&format!("[server]\nstore = \"{text}\"\n")).unwrap();
            assert_eq!(from_document(doc).unwrap().server.store, kind);
        }
    }

    #[test]
    fn worker_threads_default_to_the_available_cpus_and_are_bounded() {
        let doc = toml_to_json("[server]\nworkerThreads = 1025\n").unwrap();
        let err = from_document(doc).unwrap_err();
        assert_eq!(err.0[0].path, "server.workerThreads", "{err}");
        let defaults = ServerSettings::default();
        assert_eq!(defaults.runtime_threads(4), 4);
        assert_eq!(defaults.runtime_threads(0), 1);
        let doc = toml_to_json("[server]\nworkerThreads = 1\n").unwrap();
        let one = from_document(doc).unwrap().server;
        assert_eq!(one.runtime_threads(8), 1);
    }

    #[test]
    fn write_threads_over_the_maximum_are_reported_at_their_path() {
        let doc = toml_to_json("[server]\nwriteThreads = 65\n").unwrap();
        let err = from_document(doc).unwrap_err();
        assert_eq!(err.0[0].path, "server.writeThreads", "{err}");
        assert!(err.0[0].problem.contains("at most 64"), "{err}");
        let doc = toml_to_json("[server]\nwriteThreads = 0\n").unwrap();
        assert_eq!(from_document(doc).unwrap().server.write_threads, 0);
    }

    #[test]
    fn unknown_server_key_is_reported() {
        let doc = toml_to_json("[server]\nlisten_addr = \"x\"\n").unwrap();
        let err = from_document(doc).unwrap_err();
        assert_eq!(err.0[0].path, "server.listen_addr", "{err}");
    }

    #[test]
    fn toml_syntax_errors_are_reported() {
        let err = toml_to_json("a = ").unwrap_err();
        assert!(err.0[0].problem.contains("line 1"), "{err}");
    }
}
