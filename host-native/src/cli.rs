//! The command line: `serve`, `check-config` and `token`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Deployment, StoreKind};

/// Switchboard: a real-time WebSocket server.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server (without --config: the demo deployment on 127.0.0.1:3001).
    Serve {
        /// Config file (TOML, or JSON when it ends in .json).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address, e.g. 127.0.0.1:8080 (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Keep records in memory instead of the SQLite file (wins over --store).
        #[arg(long)]
        memory: bool,
        /// Record store: sqlite, memory or postgres://USER@HOST:PORT/DB (overrides
        /// server.store).
        #[arg(long, env = "SWITCHBOARD_STORE")]
        store: Option<String>,
        /// Join a cluster through Redis: redis://HOST:PORT[/DB] (overrides server.broker).
        #[arg(long, env = "SWITCHBOARD_BROKER")]
        broker: Option<String>,
    },
    /// Check a config file; print every problem with its field path (exit 1 if any).
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Mint an HS256 JWT for development.
    Token {
        /// HMAC secret (the server's auth.jwt.secret).
        #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
        secret: String,
        /// User id (`sub`).
        #[arg(long)]
        sub: String,
        /// Role claim.
        #[arg(long)]
        role: Option<String>,
        /// Scopes (repeat the flag for several).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Cmd::Serve {
            config,
            listen,
            memory,
            store,
            broker,
        } => serve(config, listen, memory, store, broker),
        Cmd::CheckConfig { file } => check_config(&file),
        Cmd::Token {
            secret,
            sub,
            role,
            scopes,
            ttl,
        } => token(&secret, sub, role, scopes, &ttl),
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match config::load_file(file) {
        Ok(d) => {
            println!(
                "{}: ok ({} route(s), {} resource(s), listen {})",
                file.display(),
                d.engine.routes.len(),
                d.engine.resources.len(),
                d.server.listen
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: {} problem(s)", file.display(), problems.0.len());
            for p in &problems.0 {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}

fn token(
    secret: &str,
    sub: String,
    role: Option<String>,
    scopes: Vec<String>,
    ttl: &str,
) -> ExitCode {
    let ttl_secs = match crate::token::parse_ttl(ttl) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("--ttl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = crate::clock::wall_now().0 / 1000;
    let spec = crate::token::TokenSpec {
        sub,
        role,
        scopes,
        ttl_secs,
    };
    match crate::token::mint(secret, &spec, now) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn load(
    config: Option<PathBuf>,
    listen: Option<String>,
    memory: bool,
    store: Option<String>,
    broker: Option<String>,
) -> Result<Deployment, String> {
    let mut d = match &config {
        Some(path) => config::load_file(path).map_err(|p| format!("{}:\n{p}", path.display()))?,
        None => config::demo().map_err(|p| format!("demo config:\n{p}"))?,
    };
    if let Some(l) = listen {
        d.server.listen = l;
        d.server
            .listen_addr()
            .map_err(|e| format!("--listen: {e}"))?;
    }
    if let Some(s) = store.filter(|s| !s.is_empty()) {
        d.server.store = s
            .parse()
            .map_err(|e| format!("--store / SWITCHBOARD_STORE: {e}"))?;
    }
    if memory {
        d.server.store = StoreKind::Memory;
    }
    if let Some(b) = broker.filter(|b| !b.is_empty()) {
        d.server.broker = Some(b);
    }
    if let Some(b) = &d.server.broker {
        crate::cluster::parse_url(b).map_err(|e| format!("--broker / server.broker: {e}"))?;
    }
    Ok(d)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The async runtime for `settings`: tokio's single-threaded scheduler when it gets one
/// thread (a pinned server, `workerThreads = 1`), the multi-threaded one otherwise. With
/// one thread, a client frame goes from its connection task to the engine's task and its
/// answer back without the multi-threaded scheduler's cross-thread bookkeeping (round
/// trips +13–21 % on one pinned core, BENCHMARKS.md "Issue 18: one runtime thread").
fn runtime(settings: &crate::config::ServerSettings) -> std::io::Result<tokio::runtime::Runtime> {
    let default = default_threads()?;
    let threads = settings.runtime_threads(default);
    tracing::debug!(threads, default, "runtime threads");
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build()
}

/// Runtime threads when `workerThreads` is 0: tokio's own `TOKIO_WORKER_THREADS` when
/// set, else one per CPU the process may use.
fn default_threads() -> std::io::Result<usize> {
    match std::env::var("TOKIO_WORKER_THREADS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("TOKIO_WORKER_THREADS=`{v}` is not a number of threads (1 or more)"),
                )
            }),
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<String>,
    memory: bool,
    store: Option<String>,
    broker: Option<String>,
) -> ExitCode {
    let deployment = match load(config.clone(), listen, memory, store, broker) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&deployment.server.log_level);
    // Each connection is a file descriptor: use the whole hard limit.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(nofile = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
    let runtime = match runtime(&deployment.server) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let test_control = crate::testctl::enabled_by_env();
    runtime.block_on(async move {
        let flavor = tokio::runtime::Handle::current().runtime_flavor();
        tracing::debug!(?flavor, "runtime started");
        let server = match crate::server::ServerBuilder::new(deployment.clone())
            .test_control(test_control)
            .start()
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        let addr = server.local_addr();
        let banner = crate::banner::Banner {
            deployment: &deployment,
            config: config.as_deref(),
            addr,
            tls: server.is_tls(),
            test_control,
        };
        print!("{}", banner.render());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tracing::info!(
            "switchboard {} ({}) listening on {addr}",
            env!("CARGO_PKG_VERSION"),
            config.as_deref().map_or_else(
                || "built-in demo config".to_string(),
                |p| p.display().to_string()
            )
        );
        // The banner shows the warnings; log them too unless both go to one terminal.
        use std::io::IsTerminal as _;
        if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
            for w in banner.warnings() {
                tracing::warn!("{w}");
            }
        }
        let signal = crate::shutdown::signal().await;
        tracing::info!(signal, "signal received");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}
