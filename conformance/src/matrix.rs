//! Run vectors on targets and print the vector × target matrix.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use conformance_core::{check, run_json, RunResult, Vector};

use crate::schema::Schemas;
use crate::LoadedVector;

/// The result of one vector on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Behaved exactly as expected.
    Pass,
    /// Did not; the problems found.
    Fail(Vec<String>),
    /// The vector does not run on this target (e.g. in-process-only vectors live).
    NotApplicable,
    /// The vector cannot run live on this host, for this reason (`live.notOn`, or a
    /// server that cannot play it). Printed as `n/a`; never counted as a pass.
    Skipped(String),
    /// Failed as expected: the vector is listed in `known-failures.json` (a reported
    /// engine bug; the vector expects the correct behaviour).
    KnownFailure(String),
}

/// Apply `known-failures.json`: a listed vector that fails on a target is a known
/// failure there; one that passes is a failure (the bug is fixed: regenerate the
/// vectors so the correction and the listing go away). Failures that are not about
/// the expectations (wasm output differing from native, a target that could not run)
/// stay failures.
pub fn apply_known_failures(
    vectors: &[LoadedVector],
    columns: &mut [Column],
    known: &std::collections::BTreeMap<String, String>,
) {
    for (i, l) in vectors.iter().enumerate() {
        let Some(reason) = known.get(&l.vector.name) else {
            continue;
        };
        for c in columns.iter_mut().filter(|c| c.target != "vector") {
            let cell = &mut c.cells[i];
            match cell {
                Outcome::Pass => {
                    *cell = Outcome::Fail(vec![format!(
                        "listed in known-failures.json ({reason}) but passes: the engine bug \
                         looks fixed; remove the scenario's known_bug correction and regenerate"
                    )])
                }
                Outcome::Fail(p) if p.iter().all(|m| m.starts_with("step ")) => {
                    *cell = Outcome::KnownFailure(reason.clone())
                }
                _ => {}
            }
        }
    }
}

/// One target's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Target name (`vector`, `engine`, `wasm`, `live:native`, ...).
    pub target: String,
    /// One outcome per vector, in vector order.
    pub cells: Vec<Outcome>,
    /// Time the column took.
    pub elapsed: Duration,
}

/// Check a run result document against a vector's expectations.
pub fn judge(v: &Vector, run_result_json: &str) -> Outcome {
    let r: RunResult = match serde_json::from_str(run_result_json) {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(vec![format!("unreadable run result: {e}")]),
    };
    match (r.steps, r.error) {
        (_, Some(e)) => Outcome::Fail(vec![format!("could not run: {e}")]),
        (Some(steps), None) => {
            let m = check(v, &steps);
            if m.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(
                    m.into_iter()
                        .map(|m| format!("step {}: {}", m.step, m.detail))
                        .collect(),
                )
            }
        }
        (None, None) => Outcome::Fail(vec!["empty run result".into()]),
    }
}

/// Static checks of each vector: vector schema, declared intent, protocol schemas of
/// the expected frames, and the demo config for live vectors.
pub fn static_column(vectors: &[LoadedVector]) -> anyhow::Result<Column> {
    let t0 = Instant::now();
    let schemas = Schemas::load()?;
    let demo = crate::demo_engine_config()?;
    let cells = vectors
        .iter()
        .map(|l| {
            let mut p = Vec::new();
            match serde_json::from_str::<serde_json::Value>(&l.text) {
                Ok(raw) => p.extend(schemas.check_vector_file(&raw)),
                Err(e) => p.push(e.to_string()),
            }
            p.extend(crate::intent::check_intent(&l.vector));
            p.extend(schemas.check_protocol(&l.vector));
            if let Some(live) = &l.vector.live {
                if live.deployment == "demo" && l.vector.config != demo {
                    p.push("live vector's config differs from examples/demo.json (regenerate the vectors)".into());
                }
            }
            if p.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(p)
            }
        })
        .collect();
    Ok(Column {
        target: "vector".into(),
        cells,
        elapsed: t0.elapsed(),
    })
}

/// The in-process engine target. Also returns each vector's run result JSON (the
/// reference the wasm target must match byte for byte).
pub fn engine_column(vectors: &[LoadedVector]) -> (Column, Vec<String>) {
    let t0 = Instant::now();
    let mut outputs = Vec::with_capacity(vectors.len());
    let cells = vectors
        .iter()
        .map(|l| {
            let out = run_json(&l.text);
            let o = judge(&l.vector, &out);
            outputs.push(out);
            o
        })
        .collect();
    (
        Column {
            target: "engine".into(),
            cells,
            elapsed: t0.elapsed(),
        },
        outputs,
    )
}

/// The wasm target: each vector in a fresh instance of the guest; the output must be
/// byte-identical to the in-process output and match the expectations.
pub fn wasm_column(
    guest: &crate::wasm::Guest,
    vectors: &[LoadedVector],
    reference: &[String],
) -> Column {
    let t0 = Instant::now();
    let cells = vectors
        .iter()
        .zip(reference)
        .map(|(l, native)| match guest.run(&l.text) {
            Err(e) => Outcome::Fail(vec![format!("wasm: {e}")]),
            Ok(out) if out != *native => Outcome::Fail(vec![format!(
                "wasm output differs from the in-process output:\n  wasm   {}\n  native {}",
                first_difference(&out, native).0,
                first_difference(&out, native).1
            )]),
            Ok(out) => judge(&l.vector, &out),
        })
        .collect();
    Column {
        target: "wasm".into(),
        cells,
        elapsed: t0.elapsed(),
    }
}

fn first_difference(a: &str, b: &str) -> (String, String) {
    let i = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let start = i.saturating_sub(40);
    let cut = |s: &str| {
        let s = s.get(start..).unwrap_or("");
        s.chars().take(120).collect::<String>()
    };
    (format!("…{}", cut(a)), format!("…{}", cut(b)))
}

/// A live target against one running server (`--live-url`): it serves one deployment,
/// so only the demo vectors run; vectors that need the test control channel run only
/// when the server has it.
pub fn live_column(name: &str, url: &str, vectors: &[LoadedVector]) -> anyhow::Result<Column> {
    let t0 = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let target = rt.block_on(crate::live::Target::connect(url))?;
    let cells = vectors
        .iter()
        .map(|l| {
            let Some(live) = &l.vector.live else {
                return Outcome::NotApplicable;
            };
            if live.deployment != "demo" {
                return Outcome::Skipped(format!(
                    "has its own config; {url} serves one deployment (the matrix starts a server per config)"
                ));
            }
            if let Some(reason) = live.not_on.get(name) {
                return Outcome::Skipped(reason.clone());
            }
            if target.control.is_none() {
                if let Some(why) = crate::control::needs_control(&l.vector) {
                    return Outcome::Skipped(format!(
                        "{why}: needs the test control channel, which {url} does not enable"
                    ));
                }
            }
            let problems = rt.block_on(crate::live::run_vector(&target, &l.vector));
            if problems.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(problems)
            }
        })
        .collect();
    Ok(Column {
        target: format!("live:{name}"),
        cells,
        elapsed: t0.elapsed(),
    })
}

/// Totals over a matrix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Cells that passed.
    pub passed: usize,
    /// Cells that failed.
    pub failed: usize,
    /// Cells not applicable.
    pub skipped: usize,
    /// Cells that failed as listed in `known-failures.json`.
    pub known: usize,
}

/// Render the matrix (all rows, or only failing rows when `failures_only`), the failure
/// details, per-target totals and the summary line `N passed, N failed`.
pub fn render(
    vectors: &[LoadedVector],
    columns: &[Column],
    failures_only: bool,
) -> (String, Totals) {
    let mut s = String::new();
    let width = vectors
        .iter()
        .map(|l| l.vector.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    // Each column is as wide as its name (at least 11); the totals' labels line up too.
    let cell_widths: Vec<usize> = columns.iter().map(|c| c.target.len().max(11)).collect();
    let label_width = columns
        .iter()
        .map(|c| c.target.len())
        .max()
        .unwrap_or(0)
        .max(12);
    let _ = write!(s, "{:width$}", "vector");
    for c in columns {
        let _ = write!(s, "  {:>11}", c.target);
    }
    s.push('\n');
    let mut totals = Totals::default();
    let mut details = String::new();
    let mut skipped: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for (i, l) in vectors.iter().enumerate() {
        let mut line = format!("{:width$}", l.vector.name);
        let mut row_failed = false;
        for (c, cell_width) in columns.iter().zip(&cell_widths) {
            let cell = match &c.cells[i] {
                Outcome::Pass => {
                    totals.passed += 1;
                    "pass"
                }
                Outcome::NotApplicable => {
                    totals.skipped += 1;
                    "-"
                }
                Outcome::Skipped(reason) => {
                    totals.skipped += 1;
                    skipped
                        .entry((c.target.clone(), reason.clone()))
                        .or_default()
                        .push(l.vector.name.clone());
                    "n/a"
                }
                Outcome::KnownFailure(reason) => {
                    totals.known += 1;
                    let _ = writeln!(details, "xfail {} on {}: {reason}", l.vector.name, c.target);
                    "xfail"
                }
                Outcome::Fail(problems) => {
                    totals.failed += 1;
                    row_failed = true;
                    let _ = writeln!(details, "FAIL {} on {}:", l.vector.name, c.target);
                    for p in problems.iter().take(8) {
                        let _ = writeln!(details, "    {}", p.replace('\n', "\n    "));
                    }
                    if problems.len() > 8 {
                        let _ = writeln!(details, "    ... and {} more", problems.len() - 8);
                    }
                    "FAIL"
                }
            };
            let _ = write!(line, "  {cell:>cell_width$}");
        }
        if row_failed || !failures_only {
            s.push_str(&line);
            s.push('\n');
        }
    }
    if !details.is_empty() {
        s.push('\n');
        s.push_str(&details);
    }
    for ((target, reason), names) in &skipped {
        let _ = writeln!(
            s,
            "n/a on {target} ({} vectors: {}): {reason}",
            names.len(),
            names.join(", ")
        );
    }
    s.push('\n');
    for c in columns {
        let (p, f, n, k) = c
            .cells
            .iter()
            .fold((0, 0, 0, 0), |(p, f, n, k), o| match o {
                Outcome::Pass => (p + 1, f, n, k),
                Outcome::Fail(_) => (p, f + 1, n, k),
                Outcome::NotApplicable | Outcome::Skipped(_) => (p, f, n + 1, k),
                Outcome::KnownFailure(_) => (p, f, n, k + 1),
            });
        let _ = writeln!(
            s,
            "{:>label_width$}: {p} passed, {f} failed, {k} known failures, {n} not applicable ({:.2} s)",
            c.target,
            c.elapsed.as_secs_f64()
        );
    }
    let live: Vec<String> = columns
        .iter()
        .filter(|c| c.target.starts_with("live:"))
        .map(|c| live_summary(c, vectors.len()))
        .collect();
    if !live.is_empty() {
        let _ = writeln!(s, "live coverage: {}", live.join(" · "));
    }
    if totals.known > 0 {
        let _ = writeln!(
            s,
            "{} cells fail as listed in conformance/known-failures.json (reported engine bugs)",
            totals.known
        );
    }
    let _ = writeln!(s, "{} passed, {} failed", totals.passed, totals.failed);
    (s, totals)
}

/// `live:node 209/209`, or `live:deno 203/209, 6 n/a` (passes over all vectors; `n/a`
/// counts the vectors the host cannot run live, never as passes).
pub fn live_summary(c: &Column, total: usize) -> String {
    let passed = c.cells.iter().filter(|o| **o == Outcome::Pass).count();
    let na = c
        .cells
        .iter()
        .filter(|o| matches!(o, Outcome::Skipped(_) | Outcome::NotApplicable))
        .count();
    let failed = c
        .cells
        .iter()
        .filter(|o| matches!(o, Outcome::Fail(_)))
        .count();
    let mut out = format!("{} {passed}/{total}", c.target);
    if na > 0 {
        out.push_str(&format!(", {na} n/a"));
    }
    if failed > 0 {
        out.push_str(&format!(", {failed} failed"));
    }
    out
}
