//! `switchboard-bench`: the load generator behind BENCHMARKS.md.
//!
//! It starts a `switchboard` server (the sibling binary, optionally pinned to CPUs with
//! `taskset`) with a benchmark config, drives it over real sockets on loopback, and
//! prints the numbers. Three scenarios:
//!
//! - `idle`: N connections, each authenticated (API key) and subscribed; server RSS
//!   per connection from `/proc/<pid>/status`.
//! - `fanout`: S channel subscribers, one publisher at a fixed rate (or as fast as the
//!   server acknowledges); deliveries/s and end-to-end latency percentiles.
//! - `roundtrip`: C connections doing closed-loop `ping` → `pong`; latency and rate.
//! - `soak`: mixed traffic for a long time (connect/disconnect churn, subscribe, CRUD,
//!   publish, slow consumers that stop reading); server RSS every 10 s and every error.
//!
//! Everything stays on 127.0.0.0/8; every loop is bounded in count and time. The
//! server child process is `server.rs`, the raw subscriber client `raw.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

mod raw;
mod server;

use server::{cpu_seconds, proc_status, runqueue_wait_seconds, start_server};

/// Load generator for the switchboard server.
#[derive(Debug, Parser)]
#[command(name = "switchboard-bench", version)]
struct Args {
    /// Server binary (default: `switchboard` next to this binary).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Pin the server to these CPUs with `taskset -c` (e.g. `0`); with one CPU the
    /// server also gets one tokio worker thread.
    #[arg(long)]
    server_cpus: Option<String>,
    /// The server's read buffer, shared per worker thread (`server.readBufferSize`).
    #[arg(long, default_value_t = 16 * 1024)]
    read_buffer_size: usize,
    /// Scenario.
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Idle connections, each authenticated and subscribed; server RSS per connection.
    Idle {
        /// Connections to open.
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        /// Connections opened concurrently.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
    /// One publisher, many channel subscribers.
    Fanout {
        /// Subscribers.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Messages per second from the publisher (0: as fast as acknowledged, 64 in flight).
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds to publish.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Payload bytes per message (besides the timestamp).
        #[arg(long, default_value_t = 64)]
        payload: usize,
    },
    /// Mixed traffic for `duration` seconds; RSS over time and errors (BENCHMARKS.md).
    Soak {
        /// Seconds (default ten minutes).
        #[arg(long, default_value_t = 600)]
        duration: u64,
        /// Concurrent client loops (every eighth one is a slow consumer).
        #[arg(long, default_value_t = 32)]
        workers: usize,
    },
    /// Closed-loop app-level ping/pong.
    Roundtrip {
        /// Connections.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
    },
}

type Ws = WebSocketStream<TcpStream>;

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// A TCP connection from a source address in 127.0.0.0/8 (spreads ephemeral ports
/// past 28k connections).
async fn tcp_from(addr: SocketAddr, i: usize) -> anyhow::Result<TcpStream> {
    let src = Ipv4Addr::new(
        127,
        0,
        ((i / 20_000) % 250) as u8,
        1 + (i % 20_000 / 10_000) as u8,
    );
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
    let tcp = sock.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// A tungstenite client connection.
async fn connect(addr: SocketAddr, i: usize, path: &str) -> anyhow::Result<Ws> {
    let tcp = tcp_from(addr, i).await?;
    let url = format!("ws://{addr}{path}");
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, tcp, Some(client_config())).await?;
    Ok(ws)
}

async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => bail!("closed: {f:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("{e}"),
            Ok(None) => bail!("stream ended"),
            Err(_) => bail!("timed out"),
        }
    }
}

/// Connect with the API key, read the welcome, subscribe, wait for `subscribed`.
async fn subscribed(addr: SocketAddr, i: usize, target: &str) -> anyhow::Result<Ws> {
    let mut ws = connect(addr, i, "/?token=bench_key").await?;
    next_text(&mut ws).await?;
    ws.send(Message::Text(
        format!(r#"{{"type":"subscribe",{target},"requestId":1}}"#).into(),
    ))
    .await?;
    let reply = next_text(&mut ws).await?;
    if !reply.contains("\"subscribed\"") {
        bail!("subscribe failed: {reply}");
    }
    Ok(ws)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

async fn idle(args: &Args, n: usize, concurrency: usize) -> anyhow::Result<()> {
    let server = start_server(args).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = server.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (addr, stop, opened) = (server.addr, stop.clone(), opened.clone());
        tasks.push(tokio::spawn(async move {
            let ws = subscribed(addr, i, r#""resource":"messages""#).await;
            drop(permit);
            let mut ws = ws?;
            opened.fetch_add(1, Ordering::Relaxed);
            // Stay connected, answering heartbeat pings, until told to stop.
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                    Ok(Some(Ok(_))) | Err(_) => {}
                    _ => bail!("connection {i} ended"),
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok(())
        }));
    }
    while (opened.load(Ordering::Relaxed) as usize) < n {
        if started.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {n} connections opened",
                opened.load(Ordering::Relaxed)
            );
        }
        if tasks.iter().any(|t| t.is_finished()) {
            for t in tasks.iter_mut().filter(|t| t.is_finished()) {
                t.await??;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = server.rss_kib();
    let per_conn = (rss.saturating_sub(base)) as f64 * 1024.0 / n as f64;
    println!(
        "idle: {n} connections (authenticated + subscribed) opened in {:.1}s",
        open_time.as_secs_f64()
    );
    println!(
        "idle: server RSS {base} KiB before, {rss} KiB after → {per_conn:.0} bytes per connection"
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    server.stop().await;
    Ok(())
}

/// Microseconds since `epoch`, embedded in each published message.
fn micros(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

fn parse_t(text: &str) -> Option<u64> {
    let i = text.find("\"t\":")? + 4;
    let digits: &str = &text[i..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

async fn fanout(
    args: &Args,
    subs: usize,
    rate: u64,
    secs: u64,
    payload: usize,
) -> anyhow::Result<()> {
    let server = start_server(args).await?;
    let addr = server.addr;
    let epoch = Instant::now();
    let mut readers = Vec::with_capacity(subs);
    let measuring = Arc::new(AtomicBool::new(true));
    let received = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::with_capacity(subs);
    for i in 0..subs {
        conns.push(raw::subscribe(addr, i, "bench").await?);
    }
    for mut sub in conns {
        let measuring = measuring.clone();
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut count = 0u64;
            while measuring.load(Ordering::Relaxed) {
                let frames =
                    match tokio::time::timeout(Duration::from_millis(200), sub.read_frames()).await
                    {
                        Ok(Ok(f)) => f,
                        Ok(Err(_)) => break,
                        Err(_) => continue,
                    };
                let now = micros(epoch);
                let mut batch = 0;
                for text in frames {
                    if let Some(sent) = parse_t(&text) {
                        lat.push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                        batch += 1;
                    }
                }
                count += batch;
                received.fetch_add(batch, Ordering::Relaxed);
            }
            (count, lat)
        }));
    }
    let mut publisher = connect(addr, subs + 1, "/?token=bench_key").await?;
    next_text(&mut publisher).await?;
    let (mut ptx, mut prx) = publisher.split();
    let acked = Arc::new(AtomicU64::new(0));
    let ack_task = {
        let acked = acked.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = prx.next().await {
                if matches!(m, Message::Text(_)) {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let pad = "x".repeat(payload);
    let cpu0 = server.cpu_seconds();
    let wait0 = runqueue_wait_seconds(server.pid);
    let client0 = cpu_seconds("self");
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut sent = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while Instant::now() < end {
        if rate > 0 {
            ticker.tick().await;
        } else {
            while sent.saturating_sub(acked.load(Ordering::Relaxed)) >= 64 {
                tokio::task::yield_now().await;
                if Instant::now() >= end {
                    break;
                }
            }
        }
        let frame = format!(
            r#"{{"type":"publish","channel":"bench","message":{{"t":{},"p":"{pad}"}}}}"#,
            micros(epoch)
        );
        ptx.send(Message::Text(frame.into())).await?;
        sent += 1;
    }
    let publish_time = start.elapsed();
    // Let in-flight deliveries land (until the count stops moving, at most 30 s).
    let mut last = u64::MAX;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = received.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let drain_time = start.elapsed();
    let cpu = server.cpu_seconds() - cpu0;
    let client_cpu = cpu_seconds("self") - client0;
    let waited = runqueue_wait_seconds(server.pid) - wait0;
    let m = admin_metrics(addr).await.unwrap_or_default();
    measuring.store(false, Ordering::Relaxed);
    let mut total = 0u64;
    let mut all: Vec<u32> = Vec::new();
    for r in readers {
        let (c, lat) = r.await?;
        total += c;
        all.extend(lat);
    }
    ack_task.abort();
    all.sort_unstable();
    let expected = sent * subs as u64;
    println!(
        "fanout: {subs} subscribers, {sent} messages in {:.1}s ({:.0} msg/s offered{}), payload {payload} B",
        publish_time.as_secs_f64(),
        sent as f64 / publish_time.as_secs_f64(),
        if rate == 0 { ", closed loop 64 in flight" } else { "" }
    );
    println!(
        "fanout: {total} of {expected} deliveries received in {:.1}s → {:.0} deliveries/s end to end",
        drain_time.as_secs_f64(),
        total as f64 / drain_time.as_secs_f64(),
    );
    println!(
        "fanout: server CPU {cpu:.1}s ({:.0}% of one core) → {:.2} µs CPU per delivery ≈ {:.2}M deliveries/s per core; engine counted {} fan-out deliveries, {} dropped (slow consumer)",
        100.0 * cpu / drain_time.as_secs_f64(),
        cpu * 1e6 / total.max(1) as f64,
        total as f64 / cpu.max(1e-9) / 1e6,
        m["fanoutDeliveries"],
        m["droppedSlowConsumer"],
    );
    println!(
        "fanout: load generator CPU {client_cpu:.1}s ({:.0}% of one core); server threads waited {waited:.1}s for a CPU (other processes)",
        100.0 * client_cpu / drain_time.as_secs_f64()
    );
    println!(
        "fanout: latency ms p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0)
    );
    server.stop().await;
    Ok(())
}

async fn roundtrip(args: &Args, n: usize, secs: u64) -> anyhow::Result<()> {
    let server = start_server(args).await?;
    let addr = server.addr;
    let end = Instant::now() + Duration::from_secs(secs);
    let cpu0 = server.cpu_seconds();
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut ws = connect(addr, i, "/").await?;
        next_text(&mut ws).await?;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut id = 0u64;
            while Instant::now() < end {
                let t0 = Instant::now();
                ws.send(Message::Text(
                    format!(r#"{{"type":"ping","requestId":{id}}}"#).into(),
                ))
                .await?;
                let reply = next_text(&mut ws).await?;
                if !reply.contains("\"pong\"") {
                    bail!("unexpected reply {reply}");
                }
                lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                id += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let cpu = server.cpu_seconds() - cpu0;
    all.sort_unstable();
    println!(
        "roundtrip: {n} connections, {} ping/pong in {secs}s → {:.0} round trips/s; server CPU {:.1}s",
        all.len(),
        all.len() as f64 / secs as f64,
        cpu
    );
    println!(
        "roundtrip: latency ms p50 {:.3}  p99 {:.3}  p99.9 {:.3}",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 0.999)
    );
    server.stop().await;
    Ok(())
}

/// Send `msg` (with `requestId` = `rid`) and read until its answer; whether it was an
/// error. Pushes (events, messages) arriving meanwhile are skipped.
async fn ask(ws: &mut Ws, msg: serde_json::Value, rid: u64) -> anyhow::Result<bool> {
    let mut msg = msg;
    msg["requestId"] = rid.into();
    ws.send(Message::Text(msg.to_string().into())).await?;
    let needle = format!("\"requestId\":{rid}");
    loop {
        let text = next_text(ws).await?;
        if text.contains(&needle) {
            return Ok(text.starts_with("{\"type\":\"error\""));
        }
    }
}

/// One soak client loop: connect, subscribe, CRUD, list, publish, disconnect; again.
/// Slow consumers subscribe to the busy channel and stop reading for a while.
async fn soak_worker(
    addr: SocketAddr,
    w: usize,
    end: Instant,
    errors: Arc<AtomicU64>,
    rounds: Arc<AtomicU64>,
) {
    use serde_json::json;
    let mut round = 0u64;
    while Instant::now() < end {
        round += 1;
        let result: anyhow::Result<()> = async {
            let mut ws = connect(addr, w, "/?token=bench_key").await?;
            next_text(&mut ws).await?;
            if w % 8 == 7 {
                // Slow consumer: subscribed, not reading for 20 s, then gone.
                ask(&mut ws, json!({"type": "subscribe", "channel": "soak"}), 1).await?;
                tokio::time::sleep(Duration::from_secs(20)).await;
                return Ok(());
            }
            let id = format!("w{w}-{round}");
            let steps = [
                json!({"type": "subscribe", "resource": "messages", "filter": {"w": w}}),
                json!({"type": "subscribe", "channel": "soak"}),
                json!({"type": "insert", "resource": "messages", "data": {"id": id, "w": w, "text": "x".repeat(200)}}),
                json!({"type": "update", "resource": "messages", "id": id, "data": {"n": round}}),
                json!({"type": "get", "resource": "messages", "id": id}),
                json!({"type": "list", "resource": "messages", "filter": {"w": w}, "limit": 10}),
                json!({"type": "publish", "channel": "soak", "message": {"from": w}}),
                json!({"type": "delete", "resource": "messages", "id": id}),
            ];
            for (i, step) in steps.into_iter().enumerate() {
                if ask(&mut ws, step, i as u64 + 1).await? {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            ws.close(None).await.ok();
            Ok(())
        }
        .await;
        if let Err(e) = result {
            errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: worker {w}: {e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

async fn soak(args: &Args, secs: u64, workers: usize) -> anyhow::Result<()> {
    let server = start_server(args).await?;
    let addr = server.addr;
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let errors = Arc::new(AtomicU64::new(0));
    let rounds = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(soak_worker(addr, w, end, errors.clone(), rounds.clone())))
        .collect();
    let mut samples = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(
            Duration::from_secs(10).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        let rss = proc_status(server.pid, "VmRSS:").unwrap_or(0);
        let t = started.elapsed().as_secs();
        println!(
            "soak: t={t:>4}s  rss={rss} kB  rounds={}  errors={}",
            rounds.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed)
        );
        samples.push((t, rss));
    }
    for t in tasks {
        t.await?;
    }
    // Warm-up: the first minute (or the first third of a short run).
    let warm = (secs / 3).min(60);
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= warm)
        .map(|(_, r)| *r)
        .collect();
    if let (Some(first), Some(max)) = (after.first(), after.iter().max()) {
        println!(
            "soak: {secs}s, {workers} workers, {} rounds, {} errors; RSS after warm-up {first} kB, max {max} kB ({:+.1} %)",
            rounds.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            (*max as f64 / *first as f64 - 1.0) * 100.0
        );
    }
    server.stop().await;
    Ok(())
}

/// The engine counters from the admin API (a raw HTTP/1.1 GET).
async fn admin_metrics(addr: SocketAddr) -> anyhow::Result<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /admin/metrics HTTP/1.1\r\nHost: {addr}\r\nX-Admin-Key: bench-admin\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await?;
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(serde_json::from_str(body)?)
}

fn raise_fd_limit() {
    // Root may raise the hard limit too; the spawned server inherits it.
    let want = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, want, want).is_err() {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        eprintln!("file descriptor limit: soft {soft}, hard {hard}");
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match &args.scenario {
            Scenario::Idle {
                connections,
                concurrency,
            } => idle(&args, *connections, *concurrency).await,
            Scenario::Fanout {
                subscribers,
                rate,
                duration,
                payload,
            } => fanout(&args, *subscribers, *rate, *duration, *payload).await,
            Scenario::Roundtrip {
                connections,
                duration,
            } => roundtrip(&args, *connections, *duration).await,
            Scenario::Soak { duration, workers } => soak(&args, *duration, *workers).await,
        }
    })
}
