//! Engine cold start (criterion): what a host does once per process, and a JS host once
//! per isolate (a wasm cold start) — turn the demo deployment's engine config
//! (`examples/demo.json` without its `server` section: 4 routes, JWT and API-key auth,
//! two channel namespaces, resources with CEL guards and a JSON Schema) into an engine.
//!
//! * `cold_start/from_json_then_with_seed` — `Config::from_json` + `Engine::with_seed`
//!   (what `host-js` `Core::new` did before issue 12).
//! * `cold_start/with_seed` — `Engine::with_seed` from a parsed `Config` (the native
//!   host: the config was loaded and checked earlier).
//! * `cold_start/compiled_from_json` — `CompiledConfig::from_json` +
//!   `Engine::from_compiled` (what `host-js` `Core::new` does since issue 12: parsed,
//!   checked and compiled once).
//!
//! Run: `cargo bench -p switchboard-engine --bench cold_start`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use engine::{CompiledConfig, Config, Engine};
use serde_json::Value;

/// The demo deployment's engine config as JSON text (the `server` section removed).
fn demo_engine_json() -> String {
    let mut doc: Value =
        serde_json::from_str(include_str!("../../examples/demo.json")).expect("demo.json");
    doc.as_object_mut().expect("object").remove("server");
    doc.to_string()
}

fn cold_start(c: &mut Criterion) {
    let text = demo_engine_json();
    let parsed = Config::from_json(&text).expect("demo config");
    let mut g = c.benchmark_group("cold_start");
    g.bench_function("from_json_then_with_seed", |b| {
        b.iter(|| {
            let config = Config::from_json(black_box(&text)).unwrap();
            black_box(Engine::with_seed(config, 7).unwrap())
        })
    });
    g.bench_function("with_seed", |b| {
        b.iter_batched(
            || parsed.clone(),
            |config| black_box(Engine::with_seed(config, 7).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("compiled_from_json", |b| {
        b.iter(|| {
            let compiled = CompiledConfig::from_json(black_box(&text)).unwrap();
            black_box(Engine::from_compiled(compiled, 7))
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    cold_start(&mut c);
    c.final_summary();
}
