//! Servers for the live target, one per host and distinct vector config.
//!
//! Vectors are grouped by their engine config (the demo deployment is one of them);
//! each host gets one server per group, started on a random port with the test control
//! channel on (`SWITCHBOARD_TEST_CONTROL=1`) and the config as its deployment file,
//! plays the group's vectors (each after a `reset`), and is stopped. The next group's
//! server starts while the current group plays. Hosts run in parallel, one thread each.
//!
//! The native host is started here (`switchboard serve --config FILE --memory`); the
//! JS hosts by the server factory of `host-js/test/live-servers.mjs`, which knows how
//! each runtime's example server is launched (`--live-factory URL`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use conformance_core::compact;
use serde_json::{json, Value};

use crate::live::{run_vector, Target};
use crate::matrix::{Column, Outcome};
use crate::wsclient::http;
use crate::LoadedVector;

/// A host of the live matrix.
#[derive(Debug, Clone)]
pub struct Host {
    /// Column name without `live:` (`native`, `node`, `deno`, `bun`, `workerd`, ...).
    pub name: String,
    /// How its servers are started.
    pub kind: HostKind,
}

/// How a host's servers are started.
#[derive(Debug, Clone)]
pub enum HostKind {
    /// `switchboard serve` from this binary.
    Native(PathBuf),
    /// A JS runtime's example server, through the factory at this address.
    Js(SocketAddr),
}

/// A running server, stopped on drop.
enum Server {
    Native(NativeServer),
    Js { factory: SocketAddr, id: u64 },
}

impl Server {
    async fn stop(self) {
        match self {
            Server::Native(s) => drop(s),
            Server::Js { factory, id } => {
                let _ = http(
                    factory,
                    "POST",
                    "/stop",
                    Some(&json!({"id": id})),
                    Duration::from_secs(15),
                )
                .await;
            }
        }
    }
}

/// A deployment file holding `config` (written once per config).
fn config_file(dir: &Path, config: &Value) -> anyhow::Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let text = serde_json::to_string_pretty(config)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let path = dir.join(format!("config-{:016x}.json", h.finish()));
    if !path.exists() {
        std::fs::write(&path, text)?;
    }
    Ok(path)
}

async fn start(host: &Host, config: &Path) -> anyhow::Result<(Server, SocketAddr)> {
    match &host.kind {
        HostKind::Native(bin) => {
            let (bin, config) = (bin.clone(), config.to_path_buf());
            let s =
                tokio::task::spawn_blocking(move || NativeServer::start(&bin, &config)).await??;
            let addr = s.addr;
            Ok((Server::Native(s), addr))
        }
        HostKind::Js(factory) => {
            let body = json!({"runtime": host.name, "config": config});
            let (status, bytes) = http(
                *factory,
                "POST",
                "/start",
                Some(&body),
                Duration::from_secs(60),
            )
            .await?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status != 200 {
                bail!(
                    "the server factory could not start {}: {}",
                    host.name,
                    v["error"]
                        .as_str()
                        .unwrap_or(&String::from_utf8_lossy(&bytes))
                );
            }
            let id = v["id"].as_u64().context("factory answer without id")?;
            let port = v["port"].as_u64().context("factory answer without port")? as u16;
            Ok((
                Server::Js {
                    factory: *factory,
                    id,
                },
                SocketAddr::from(([127, 0, 0, 1], port)),
            ))
        }
    }
}

/// Group vectors (indices) by config, in order of first appearance.
fn groups(vectors: &[LoadedVector]) -> Vec<(Value, Vec<usize>)> {
    let mut order: Vec<(Value, Vec<usize>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, l) in vectors.iter().enumerate() {
        if l.vector.live.is_none() {
            continue;
        }
        let key = compact(&l.vector.config);
        let g = *index.entry(key).or_insert_with(|| {
            order.push((l.vector.config.clone(), Vec::new()));
            order.len() - 1
        });
        order[g].1.push(i);
    }
    order
}

/// One host's column: every group on its own server.
async fn host_column(host: &Host, vectors: &[LoadedVector], dir: &Path) -> Vec<Outcome> {
    let mut cells: Vec<Outcome> = vectors
        .iter()
        .map(|l| match &l.vector.live {
            None => Outcome::NotApplicable,
            Some(live) => match live.not_on.get(&host.name) {
                Some(reason) => Outcome::Skipped(reason.clone()),
                None => Outcome::Pass,
            },
        })
        .collect();
    let groups: Vec<(Value, Vec<usize>)> = groups(vectors)
        .into_iter()
        .map(|(c, idx)| {
            let idx: Vec<usize> = idx
                .into_iter()
                .filter(|i| matches!(cells[*i], Outcome::Pass))
                .collect();
            (c, idx)
        })
        .filter(|(_, idx)| !idx.is_empty())
        .collect();
    let launch = |config: &Value| {
        let file = config_file(dir, &crate::served_config(&host.name, config));
        let host = host.clone();
        async move { start(&host, &file?).await }
    };
    let mut next = groups.first().map(|(c, _)| tokio::spawn(launch(c)));
    for (g, (_, idx)) in groups.iter().enumerate() {
        let started = next.take().expect("started").await;
        next = groups.get(g + 1).map(|(c, _)| tokio::spawn(launch(c)));
        let (server, addr) = match started.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(s) => s,
            Err(e) => {
                for i in idx {
                    cells[*i] = Outcome::Fail(vec![format!("server did not start: {e:#}")]);
                }
                continue;
            }
        };
        let target = crate::control::Control::probe(addr)
            .await
            .map(|control| Target { addr, control });
        for i in idx {
            cells[*i] = match &target {
                Ok(t) if t.control.is_some() => {
                    let problems = run_vector(t, &vectors[*i].vector).await;
                    if problems.is_empty() {
                        Outcome::Pass
                    } else {
                        Outcome::Fail(problems)
                    }
                }
                Ok(_) => Outcome::Fail(vec!["the server has no test control channel".into()]),
                Err(e) => Outcome::Fail(vec![format!("probing the server: {e:#}")]),
            };
        }
        server.stop().await;
    }
    if let Some(n) = next {
        if let Ok(Ok((server, _))) = n.await {
            server.stop().await;
        }
    }
    cells
}

/// Every host's live column, hosts in parallel.
pub fn live_columns(hosts: &[Host], vectors: &[LoadedVector]) -> anyhow::Result<Vec<Column>> {
    let dir = std::env::temp_dir().join(format!("switchboard-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let columns = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|host| {
                let dir = dir.clone();
                scope.spawn(move || {
                    let t0 = Instant::now();
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let cells = rt.block_on(host_column(host, vectors, &dir));
                    anyhow::Ok(Column {
                        target: format!("live:{}", host.name),
                        cells,
                        elapsed: t0.elapsed(),
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("a live host thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<Column>>>()
    });
    let _ = std::fs::remove_dir_all(&dir);
    columns
}

/// A `switchboard` server started for the live target, killed on drop.
pub struct NativeServer {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// Where its stdout/stderr go (kept after the server stops, for diagnosis).
    pub log: PathBuf,
}

impl std::fmt::Debug for NativeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeServer")
            .field("url", &self.url)
            .finish()
    }
}

impl NativeServer {
    /// Start `bin serve --config <config> --listen 127.0.0.1:0 --memory` with the test
    /// control channel on, and wait for the banner that names the port the server bound.
    ///
    /// The server picks its own port: choosing a free port here and passing it on
    /// races with every other test doing the same (a parallel test could take it in
    /// between, and the server would fail with "address in use" — or worse, the
    /// readiness probe would reach the other test's server).
    pub fn start(bin: &Path, config: &Path) -> anyhow::Result<NativeServer> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!(
            "switchboard-conformance-{}-{seq}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--memory")
            // The deployment's defaults, whatever the caller's environment says.
            .env_remove("SWITCHBOARD_JWT_SECRET")
            .env_remove("SWITCHBOARD_ADMIN_KEY")
            .env("SWITCHBOARD_TEST_CONTROL", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = NativeServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(addr) = banner_addr(&text) {
                server.addr = addr;
                server.url = format!("ws://{addr}");
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "{} exited with {status} before listening; log: {text}",
                    bin.display(),
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} printed no listening banner within 20 s; log: {text}",
                    bin.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The address in the banner's first line, `switchboard <version> listening on <addr>`
/// (only a complete line counts: the log may be read while the line is half written).
fn banner_addr(log: &str) -> Option<SocketAddr> {
    log.split_inclusive('\n').find_map(|line| {
        let line = line.strip_suffix('\n')?;
        let rest = line.strip_prefix("switchboard ")?;
        let (_, after) = rest.split_once(" listening on ")?;
        after.split_whitespace().next()?.parse().ok()
    })
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The native host's binary: `$SWITCHBOARD_BIN`, else `<target>/debug/switchboard`.
pub fn native_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_dir().join("target"));
    target.join("debug/switchboard")
}

/// Whether the native host package (`host-native/`) exists in this checkout.
pub fn native_host_present() -> bool {
    crate::workspace_dir()
        .join("host-native/Cargo.toml")
        .exists()
}
