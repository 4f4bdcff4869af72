//! # Switchboard conformance suite
//!
//! Test vectors are data (`conformance/vectors/<area>/*.json`, format in
//! `conformance/README.md` and `conformance/vector.schema.json`). This crate loads them
//! and runs them on every target:
//!
//! - **engine**: in-process, through [`conformance_core::run`];
//! - **wasm**: the same runner compiled to `wasm32-unknown-unknown` (the guest in
//!   `conformance/wasm-guest`), executed with wasmtime ([`wasm`]); its output must be
//!   byte-identical to the in-process output;
//! - **live**: over real WebSocket connections against real servers: one per host and
//!   vector config ([`servers`]), driven through their test control channel
//!   ([`control`]) where a client cannot ([`live`]).
//!
//! It also checks each vector's declared [`Intent`](conformance_core::Intent) against
//! its expectations ([`intent`]) and builds the coverage table ([`coverage`]).

#![deny(missing_docs)]

pub mod control;
pub mod coverage;
pub mod intent;
pub mod live;
pub mod matrix;
pub mod schema;
pub mod servers;
pub mod wasm;
pub mod wsclient;

use std::path::{Path, PathBuf};

pub use conformance_core as core;
use conformance_core::Vector;

/// The `conformance/` directory (this crate's manifest directory).
pub fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (parent of `conformance/`).
pub fn workspace_dir() -> PathBuf {
    suite_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(suite_dir)
}

/// A vector loaded from disk.
#[derive(Debug, Clone)]
pub struct LoadedVector {
    /// Path of the file.
    pub path: PathBuf,
    /// The file's text, exactly as stored (what the wasm guest receives).
    pub text: String,
    /// The parsed vector.
    pub vector: Vector,
}

/// Load every vector under `dir` (recursively, `*.json`), sorted by name. Checks that
/// each vector's `name` is `<area>/<file stem>`.
pub fn load_vectors(dir: &Path) -> anyhow::Result<Vec<LoadedVector>> {
    let mut files = Vec::new();
    collect_json(dir, &mut files)?;
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let vector: Vector =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        anyhow::ensure!(
            vector.name == rel,
            "{}: name `{}` must be `{rel}`",
            path.display(),
            vector.name
        );
        out.push(LoadedVector { path, text, vector });
    }
    out.sort_by(|a, b| a.vector.name.cmp(&b.vector.name));
    Ok(out)
}

/// The default vectors directory, `conformance/vectors`.
pub fn vectors_dir() -> PathBuf {
    suite_dir().join("vectors")
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// `conformance/known-failures.json`: vectors that expect the correct behaviour where
/// the engine currently has a reported bug (name → bug description).
pub fn known_failures_path() -> PathBuf {
    suite_dir().join("known-failures.json")
}

/// Load the known failures (empty when the file is absent).
pub fn known_failures() -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    match std::fs::read_to_string(known_failures_path()) {
        Ok(text) => Ok(serde_json::from_str(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e.into()),
    }
}

/// The engine part of the demo deployment: `examples/demo.json` without its `server`
/// section. Vectors whose `live.deployment` is `demo` must use exactly this config.
pub fn demo_engine_config() -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(workspace_dir().join("examples/demo.json"))?;
    let mut v: serde_json::Value = serde_json::from_str(&text)?;
    if let Some(o) = v.as_object_mut() {
        o.shift_remove("server");
    }
    Ok(v)
}

/// Live hosts without JSON Schema validation (the Worker with the lean module). They
/// refuse a config with a resource `schema`, so they serve [`served_config`] instead:
/// the vectors whose outputs depend on a schema are not applicable there (`notOn`,
/// set by the generator), every other one runs.
pub const SCHEMALESS_HOSTS: &[&str] = &["workerd-lean"];

/// The config a live host serves for a vector config: as written, or without its
/// resource schemas on a [`SCHEMALESS_HOSTS`] host (what the lean Worker example,
/// `host-js/examples/cloudflare/run.mjs`, does with the demo deployment too).
pub fn served_config(host: &str, config: &serde_json::Value) -> serde_json::Value {
    let mut c = config.clone();
    if SCHEMALESS_HOSTS.contains(&host) {
        without_schemas(&mut c);
    }
    c
}

/// Remove every `resources.<name>.schema` and `messages.<type>.schema` from a config;
/// returns the names of the resources and message types whose schema was removed.
pub fn without_schemas(config: &mut serde_json::Value) -> Vec<String> {
    let mut removed = Vec::new();
    for section in ["resources", "messages"] {
        if let Some(entries) = config
            .get_mut(section)
            .and_then(serde_json::Value::as_object_mut)
        {
            for (name, entry) in entries.iter_mut() {
                if let Some(r) = entry.as_object_mut() {
                    if r.shift_remove("schema").is_some() {
                        removed.push(name.clone());
                    }
                }
            }
        }
    }
    removed
}
