//! The conformance suite as `cargo test -p switchboard-conformance`:
//! vector checks (schema, intent, protocol schemas, demo config), the in-process engine
//! target, the coverage table, and — when their artifacts are available — the wasm and
//! live targets (`scripts/conformance.sh` runs all of them and prints the matrix).

use conformance::matrix::{self, Column, Outcome};
use conformance::{coverage, known_failures, load_vectors, vectors_dir, LoadedVector};

fn vectors() -> Vec<LoadedVector> {
    load_vectors(&vectors_dir()).expect("vectors load")
}

/// Fail with the details of every failing cell (known failures applied).
fn assert_column(vectors: &[LoadedVector], mut column: Column) {
    let mut cols = vec![column.clone()];
    matrix::apply_known_failures(
        vectors,
        &mut cols,
        &known_failures().expect("known failures"),
    );
    column = cols.remove(0);
    let failures: Vec<String> = vectors
        .iter()
        .zip(&column.cells)
        .filter_map(|(l, o)| match o {
            Outcome::Fail(p) => Some(format!("{}:\n    {}", l.vector.name, p.join("\n    "))),
            _ => None,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors fail on {}:\n{}",
        failures.len(),
        vectors.len(),
        column.target,
        failures.join("\n")
    );
}

#[test]
fn there_are_at_least_150_vectors() {
    let v = vectors();
    assert!(v.len() >= 150, "only {} vectors", v.len());
}

#[test]
fn vectors_match_their_schema_intent_and_the_protocol_schemas() {
    let v = vectors();
    let col = matrix::static_column(&v).expect("schemas");
    assert_column(&v, col);
}

#[test]
fn every_vector_passes_in_process() {
    let v = vectors();
    let (col, _) = matrix::engine_column(&v);
    assert_column(&v, col);
}

#[test]
fn known_failures_name_existing_vectors() {
    let v = vectors();
    for name in known_failures().expect("known failures").keys() {
        assert!(
            v.iter().any(|l| &l.vector.name == name),
            "known-failures.json lists `{name}`, which is not a vector"
        );
    }
}

#[test]
fn coverage_is_complete_and_coverage_md_is_up_to_date() {
    let v = vectors();
    let cov = coverage::build(&v).expect("coverage");
    let uncovered = cov.uncovered();
    assert!(
        uncovered.is_empty(),
        "spec items without a vector: {uncovered:?}"
    );
    let text = coverage::render(&cov, &v);
    let on_disk =
        std::fs::read_to_string(conformance::suite_dir().join("COVERAGE.md")).unwrap_or_default();
    assert!(
        on_disk == text,
        "conformance/COVERAGE.md is stale: run `cargo run -p switchboard-conformance --bin conformance -- --write-coverage`"
    );
}

#[test]
fn wasm_target_matches_in_process_byte_for_byte() {
    if cfg!(debug_assertions) && std::env::var_os("SWITCHBOARD_CONFORMANCE_WASM").is_none() {
        eprintln!(
            "SKIPPED in debug builds: unoptimised Cranelift needs 30-90 s for the 6 MB guest; \
             `scripts/conformance.sh` (step 8 of scripts/test.sh) runs the wasm target, \
             or set SWITCHBOARD_CONFORMANCE_WASM=1"
        );
        return;
    }
    let path = conformance::wasm::default_module_path();
    if !path.exists() {
        eprintln!(
            "SKIPPED: wasm guest not built ({}); `scripts/conformance.sh` builds and runs it",
            path.display()
        );
        return;
    }
    let guest = conformance::wasm::Guest::load(&path).expect("wasm guest loads");
    let v = vectors();
    let (_, reference) = matrix::engine_column(&v);
    let col = matrix::wasm_column(&guest, &v, &reference);
    assert_column(&v, col);
}

#[test]
fn every_vector_passes_live_on_the_native_host() {
    if !conformance::servers::native_host_present() {
        eprintln!("SKIPPED: the host-native package is absent, so there is no native server to play live vectors against");
        return;
    }
    let bin = conformance::servers::native_binary();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-p", "switchboard", "--bin", "switchboard"])
        .current_dir(conformance::workspace_dir())
        .status()
        .expect("running cargo build -p switchboard");
    assert!(status.success(), "building the native host failed");
    let v = vectors();
    let host = conformance::servers::Host {
        name: "native".into(),
        kind: conformance::servers::HostKind::Native(bin),
    };
    let mut cols = conformance::servers::live_columns(&[host], &v).expect("live run");
    let col = cols.remove(0);
    let skipped: Vec<&str> = v
        .iter()
        .zip(&col.cells)
        // A vector that declares itself in-process only (`inProcessOnly` with its reason,
        // e.g. it answers a host call the live runner cannot serve) is the one exception.
        .filter(|(l, o)| {
            l.vector.in_process_only.is_none()
                && !matches!(
                    o,
                    Outcome::Pass | Outcome::Fail(_) | Outcome::KnownFailure(_)
                )
        })
        .map(|(l, _)| l.vector.name.as_str())
        .collect();
    assert!(
        skipped.is_empty(),
        "vectors not run live on native: {skipped:?}"
    );
    assert_column(&v, col);
}

#[test]
fn only_vectors_whose_outputs_need_a_schema_are_not_applicable_on_schemaless_hosts() {
    let v = vectors();
    for host in conformance::SCHEMALESS_HOSTS {
        let skipped: Vec<&str> = v
            .iter()
            .filter(|l| {
                l.vector.live.as_ref().is_some_and(|live| {
                    live.not_on
                        .get(*host)
                        .is_some_and(|r| r.contains("JSON Schema"))
                })
            })
            .map(|l| l.vector.name.as_str())
            .collect();
        // The demo's messages schema decides this vector's answers...
        assert!(
            skipped.contains(&"crud/demo-messages-schema"),
            "{skipped:?}"
        );
        // ...but not those of the other demo vectors, which run on the lean Worker
        // serving the demo without the schema.
        assert!(!skipped.contains(&"crud/insert-explicit-id"), "{skipped:?}");
        let demo_skipped = v
            .iter()
            .filter(|l| {
                l.vector
                    .live
                    .as_ref()
                    .is_some_and(|live| live.deployment == "demo")
            })
            .filter(|l| skipped.contains(&l.vector.name.as_str()))
            .count();
        assert!(
            demo_skipped < 3,
            "nearly every demo vector must run on {host}: {skipped:?}"
        );
    }
}

#[test]
fn schemaless_hosts_are_served_the_config_without_schemas() {
    let demo = conformance::demo_engine_config().expect("demo config");
    assert!(demo["resources"]["messages"]["schema"].is_object());
    assert_eq!(conformance::served_config("workerd", &demo), demo);
    let lean = conformance::served_config("workerd-lean", &demo);
    assert!(lean["resources"]["messages"].get("schema").is_none());
    assert!(
        lean["resources"]["users"]["guards"].is_object(),
        "the rest stays"
    );
    let mut again = lean.clone();
    assert!(conformance::without_schemas(&mut again).is_empty());
}

#[test]
fn vector_files_are_what_the_scenarios_generate() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gen-vectors"))
        .arg("--check")
        .output()
        .expect("running gen-vectors --check");
    assert!(
        out.status.success(),
        "vector files differ from the scenarios (edit the scenario, run gen-vectors, review the diff):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
