//! `conformance`: run the conformance vectors on every target and print the
//! vector × target matrix with the summary line `N passed, N failed`.
//!
//! ```text
//! cargo run -p switchboard-conformance --bin conformance -- [OPTIONS]
//!   --all                 vector checks + engine + wasm + live:native
//!   --engine              vector checks + in-process engine (the default)
//!   --wasm [PATH]         also the wasm guest under wasmtime (default: target-wasm/...)
//!   --live-native [BIN]   also play every live vector against native servers: one
//!                         `switchboard serve --config <vector config> --memory` per
//!                         distinct config, test control channel on
//!   --live-js RUNTIMES    also the JS hosts (comma-separated: node,deno,bun,workerd,
//!                         workerd-lean), started by the server factory at --live-factory
//!   --live-factory URL    the server factory of host-js/test/live-servers.mjs
//!   --live-url [NAME=]URL also play the demo vectors against a running demo deployment,
//!                         as column `live:NAME` (default `live:url`); repeatable
//!   --filter TEXT         only vectors whose name contains TEXT
//!   --failures-only       print only failing rows of the matrix
//!   --write-coverage      regenerate conformance/COVERAGE.md and exit
//! ```
//! Exit status 1 when any cell fails (a vector failing on any target fails the run).

use std::path::PathBuf;
use std::process::ExitCode;

use conformance::matrix::{self, Column};
use conformance::{coverage, load_vectors, servers, vectors_dir, wasm};

#[derive(Debug, Default)]
struct Args {
    wasm: Option<Option<PathBuf>>,
    live_native: Option<Option<PathBuf>>,
    live_urls: Vec<(String, String)>,
    live_js: Vec<String>,
    live_factory: Option<String>,
    filter: Option<String>,
    failures_only: bool,
    write_coverage: bool,
    all: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1).peekable();
    let optional_value =
        |it: &mut std::iter::Peekable<std::iter::Skip<std::env::Args>>| match it.peek() {
            Some(v) if !v.starts_with("--") => it.next().map(PathBuf::from),
            _ => None,
        };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--all" => a.all = true,
            "--engine" => {}
            "--wasm" => a.wasm = Some(optional_value(&mut it)),
            "--live-native" => a.live_native = Some(optional_value(&mut it)),
            "--live-url" => {
                let v = it.next().ok_or("--live-url needs a URL")?;
                let (name, url) = match v.split_once('=') {
                    Some((name, url)) if !name.contains("://") => {
                        (name.to_string(), url.to_string())
                    }
                    _ => ("url".to_string(), v),
                };
                if a.live_urls.iter().any(|(n, _)| *n == name) {
                    return Err(format!(
                        "--live-url: the column name `{name}` is given twice"
                    ));
                }
                a.live_urls.push((name, url));
            }
            "--live-js" => {
                let v = it
                    .next()
                    .ok_or("--live-js needs runtimes (node,deno,...)")?;
                a.live_js
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string));
            }
            "--live-factory" => {
                a.live_factory = Some(it.next().ok_or("--live-factory needs a URL")?)
            }
            "--filter" => a.filter = Some(it.next().ok_or("--filter needs a value")?),
            "--failures-only" => a.failures_only = true,
            "--write-coverage" => a.write_coverage = true,
            "-h" | "--help" => {
                println!("{}", HELP);
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    if a.all {
        a.wasm.get_or_insert(None);
        a.live_native.get_or_insert(None);
    }
    Ok(a)
}

const HELP: &str = "conformance [--all] [--engine] [--wasm [PATH]] [--live-native [BIN]] \
[--live-js RUNTIMES --live-factory URL] [--live-url [NAME=]URL]... [--filter TEXT] [--failures-only] [--write-coverage]";

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let args = parse().map_err(anyhow::Error::msg)?;
    let mut vectors = load_vectors(&vectors_dir())?;
    if args.write_coverage {
        let cov = coverage::build(&vectors)?;
        let text = coverage::render(&cov, &vectors);
        std::fs::write(conformance::suite_dir().join("COVERAGE.md"), text)?;
        println!("wrote conformance/COVERAGE.md");
        let uncovered = cov.uncovered();
        if !uncovered.is_empty() {
            eprintln!("uncovered spec items: {}", uncovered.join("; "));
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(f) = &args.filter {
        vectors.retain(|l| l.vector.name.contains(f.as_str()));
    }
    println!("{} vectors from {}", vectors.len(), vectors_dir().display());

    let mut columns: Vec<Column> = vec![matrix::static_column(&vectors)?];
    let (engine_col, reference) = matrix::engine_column(&vectors);
    columns.push(engine_col);

    if let Some(path) = &args.wasm {
        let path = path.clone().unwrap_or_else(wasm::default_module_path);
        let guest = wasm::Guest::load(&path)?;
        println!(
            "wasm guest {} ({} bytes, imports: {}), compiled by wasmtime in {:.1} ms",
            path.display(),
            guest.size,
            if guest.imports.is_empty() {
                "none".to_string()
            } else {
                guest.imports.join(", ")
            },
            guest.compile_time.as_secs_f64() * 1e3
        );
        columns.push(matrix::wasm_column(&guest, &vectors, &reference));
    }

    let mut hosts = Vec::new();
    if let Some(bin) = &args.live_native {
        if !servers::native_host_present() {
            println!("live:native skipped: the host-native package is absent from this checkout");
        } else {
            let bin = bin.clone().unwrap_or_else(servers::native_binary);
            anyhow::ensure!(
                bin.exists(),
                "{} not found: build it with `cargo build -p switchboard` (scripts/conformance.sh does)",
                bin.display()
            );
            hosts.push(servers::Host {
                name: "native".into(),
                kind: servers::HostKind::Native(bin),
            });
        }
    }
    if !args.live_js.is_empty() {
        let factory = args.live_factory.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "--live-js needs --live-factory (host-js/test/live-servers.mjs passes both)"
            )
        })?;
        let addr: std::net::SocketAddr = factory
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| anyhow::anyhow!("--live-factory {factory}: {e}"))?;
        for r in &args.live_js {
            hosts.push(servers::Host {
                name: r.clone(),
                kind: servers::HostKind::Js(addr),
            });
        }
    }
    if !hosts.is_empty() {
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        println!(
            "live: {} in parallel, one server per host and distinct vector config",
            names.join(", ")
        );
        columns.extend(servers::live_columns(&hosts, &vectors)?);
    }
    for (name, url) in &args.live_urls {
        columns.push(matrix::live_column(name, url, &vectors)?);
    }

    matrix::apply_known_failures(&vectors, &mut columns, &conformance::known_failures()?);
    let (text, totals) = matrix::render(&vectors, &columns, args.failures_only);
    print!("{text}");
    Ok(if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
