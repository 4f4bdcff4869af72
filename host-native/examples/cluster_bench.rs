//! What a Redis broker adds to a channel publication on the native host (numbers in
//! BENCHMARKS.md, "Cluster (Redis)"): closed-loop publish → delivery latency, one
//! publication in flight, over real sockets on loopback.
//!
//! - `single node`: publisher and subscriber on one node, no broker;
//! - `one node, --broker`: the same node in a cluster (the publication is also handed to
//!   Redis; local delivery does not wait for it);
//! - `cross-node`: publisher on node A, subscriber on node B, both on one redis-server.
//!
//! For each mode it also counts Redis `PUBLISH` calls per publication (`INFO
//! commandstats`, heartbeats included).
//!
//! `cargo run --release -p switchboard --example cluster_bench -- [MESSAGES]` (default
//! 2000 per mode). Needs `redis-server` on PATH; starts it on a free 127.0.0.1 port with
//! a temp dir and kills it at the end.
//!
//! `cluster_bench fanout [SUBSCRIBERS] [PUBLICATIONS] [RATE]` (defaults 60, 2000, 0)
//! compares one node with three under the same load: SUBSCRIBERS subscribers of one
//! channel (spread round-robin over the nodes), one publisher on the first node sending
//! PUBLICATIONS publications, RATE per second (0: as fast as the `published` answers
//! allow, 64 unanswered at most). It reports deliveries/s (every subscriber's messages
//! over the time from the first publication to the last delivery), the publish →
//! delivery latency p50/p99 of the subscribers on the publisher's node and on the other
//! nodes, and Redis `PUBLISH` calls per publication (heartbeats included).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn node(broker: Option<&str>) -> switchboard::RunningServer {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo.toml");
    let mut d = switchboard::config::load_file(&config).expect("demo config");
    d.server.listen = "127.0.0.1:0".into();
    d.server.store = switchboard::store::StoreKind::Memory;
    d.server.log_level = "warn".into();
    d.server.broker = broker.map(str::to_string);
    d.engine.rate_limit.enabled = false;
    switchboard::start(d).await.expect("node starts")
}

async fn ws(addr: SocketAddr) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    next(&mut ws).await;
    ws
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("open")
            .expect("read");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).expect("JSON");
        }
    }
}

async fn next_type(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// Redis `PUBLISH` calls so far.
async fn publish_calls(port: u16) -> u64 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("redis");
    s.write_all(b"INFO commandstats\r\n").await.unwrap();
    // A bulk string: `$LEN\r\n`, LEN bytes, `\r\n`.
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        raw.push(byte[0]);
    }
    let len: usize = String::from_utf8_lossy(&raw[1..raw.len() - 2])
        .parse()
        .expect("bulk length");
    let mut body = vec![0u8; len + 2];
    s.read_exact(&mut body).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find(|l| l.starts_with("cmdstat_publish:"))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Latencies (µs) of `n` publications from `publisher` seen by `subscriber`.
async fn measure(
    publisher: SocketAddr,
    subscriber: SocketAddr,
    n: usize,
    channel: &str,
) -> Vec<u64> {
    let mut sub = ws(subscriber).await;
    let mut publ = ws(publisher).await;
    sub.send(Message::text(
        json!({"type":"subscribe","channel":channel,"requestId":0}).to_string(),
    ))
    .await
    .unwrap();
    next_type(&mut sub, "subscribed").await;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        publ.send(Message::text(
            json!({"type":"publish","channel":channel,"message":i}).to_string(),
        ))
        .await
        .unwrap();
        let m = next_type(&mut sub, "message").await;
        assert_eq!(m["data"], i);
        lat.push(started.elapsed().as_micros() as u64);
        next_type(&mut publ, "published").await;
    }
    lat
}

fn report(mode: &str, mut lat: Vec<u64>, publishes: Option<f64>) {
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let total: u64 = lat.iter().sum();
    println!(
        "{mode:<20} n={:<6} p50={:>5} µs  p99={:>6} µs  mean={:>5} µs  publications/s (closed loop, 1 in flight)={:>6.0}  PUBLISH/publication={}",
        lat.len(),
        pct(0.50),
        pct(0.99),
        total / lat.len() as u64,
        lat.len() as f64 / (total as f64 / 1e6),
        publishes.map_or_else(|| "-".to_string(), |p| format!("{p:.2}")),
    );
}

/// Start redis-server on a free port; returns it with its port.
async fn redis(dir: &std::path::Path) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server on PATH (bash scripts/setup.sh)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    (child, port)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One fan-out run: `subs` subscribers spread over `nodes`, the publisher on the first.
async fn fanout_run(label: &str, nodes: &[SocketAddr], subs: usize, pubs: usize, rate: u64) {
    let t0 = Instant::now();
    let mut readers = Vec::new();
    for k in 0..subs {
        let local = k % nodes.len() == 0;
        let mut s = ws(nodes[k % nodes.len()]).await;
        s.send(Message::text(
            json!({"type":"subscribe","channel":"fanout","requestId":0}).to_string(),
        ))
        .await
        .unwrap();
        next_type(&mut s, "subscribed").await;
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(pubs);
            while lat.len() < pubs {
                let m = next_type(&mut s, "message").await;
                let sent = m["data"]["t"].as_u64().unwrap();
                lat.push(t0.elapsed().as_micros() as u64 - sent);
            }
            (local, lat, t0.elapsed())
        }));
    }
    // What a subscribe announces travels through Redis: let it settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut publ = ws(nodes[0]).await;
    let started = t0.elapsed();
    let mut unanswered = 0usize;
    for i in 0..pubs {
        if let Some(offset) = (i as u64 * 1_000_000).checked_div(rate) {
            let due = started + Duration::from_micros(offset);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        while unanswered >= 64 {
            next_type(&mut publ, "published").await;
            unanswered -= 1;
        }
        let t = t0.elapsed().as_micros() as u64;
        publ.send(Message::text(
            json!({"type":"publish","channel":"fanout","message":{"i":i,"t":t},"requestId":i})
                .to_string(),
        ))
        .await
        .unwrap();
        unanswered += 1;
    }
    let (mut here, mut there, mut last) = (Vec::new(), Vec::new(), started);
    for r in readers {
        let (local, lat, done) = r.await.expect("subscriber");
        last = last.max(done);
        if local { &mut here } else { &mut there }.extend(lat);
    }
    here.sort_unstable();
    there.sort_unstable();
    let secs = (last - started).as_secs_f64();
    println!(
        "{label:<8} subs={subs} pubs={pubs} rate={} deliveries={} in {secs:.2} s = {:.0} deliveries/s; latency µs: publisher's node p50={} p99={} (n={}); other nodes p50={} p99={} (n={})",
        if rate == 0 { "max".to_string() } else { format!("{rate}/s") },
        here.len() + there.len(),
        (here.len() + there.len()) as f64 / secs,
        pct(&here, 0.5),
        pct(&here, 0.99),
        here.len(),
        pct(&there, 0.5),
        pct(&there, 0.99),
        there.len(),
    );
}

/// `fanout [SUBSCRIBERS] [PUBLICATIONS] [RATE]`: one node, then three on one Redis.
async fn fanout(args: &[String]) {
    let arg = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (subs, pubs, rate) = (arg(0, 60) as usize, arg(1, 2000) as usize, arg(2, 0));
    let dir = tempfile::tempdir().unwrap();
    let (mut redis, port) = redis(dir.path()).await;
    let broker = format!("redis://127.0.0.1:{port}");

    let single = node(None).await;
    fanout_run("1 node", &[single.local_addr()], subs, pubs, rate).await;
    single.shutdown().await;

    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(Some(&broker)).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.local_addr()).collect();
    let before = publish_calls(port).await;
    fanout_run("3 nodes", &addrs, subs, pubs, rate).await;
    let calls = publish_calls(port).await - before;
    println!(
        "3 nodes: Redis PUBLISH calls {calls} for {pubs} publications = {:.3} per publication (heartbeats and subscription announcements included)",
        calls as f64 / pubs as f64
    );
    for n in nodes {
        n.shutdown().await;
    }
    let _ = redis.kill().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("fanout") {
        return fanout(&args[1..]).await;
    }
    let n: usize = args
        .first()
        .map_or(2000, |a| a.parse().expect("MESSAGES is a number"));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server on PATH (bash scripts/setup.sh)");
    let broker = format!("redis://127.0.0.1:{port}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let single = node(None).await;
    let a = node(Some(&broker)).await;
    let b = node(Some(&broker)).await;
    // Both nodes connected (their /readyz would say so): give the link a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    report(
        "single node",
        measure(single.local_addr(), single.local_addr(), n, "bench1").await,
        None,
    );
    let before = publish_calls(port).await;
    let lat = measure(a.local_addr(), a.local_addr(), n, "bench2").await;
    let calls = publish_calls(port).await - before;
    report("one node, --broker", lat, Some(calls as f64 / n as f64));
    let before = publish_calls(port).await;
    let lat = measure(a.local_addr(), b.local_addr(), n, "bench3").await;
    let calls = publish_calls(port).await - before;
    report("cross-node (A → B)", lat, Some(calls as f64 / n as f64));

    for s in [single, a, b] {
        s.shutdown().await;
    }
    let _ = redis.kill().await;
}
