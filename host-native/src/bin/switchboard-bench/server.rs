//! The server under test: a `switchboard serve` child process with the benchmark
//! config, and what /proc says about it (RSS, CPU seconds, run-queue wait).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::Args;

/// The server under test.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const CONFIG: &str = r#"
name = "bench"
heartbeatInterval = 30000
heartbeatTimeout = 10000

[server]
listen = "LISTEN"
store = "memory"
adminKey = "bench-admin"
logLevel = "warn"
outboundQueue = 16384
readBufferSize = READ_BUFFER
shutdownTimeoutMs = 5000

[limits]
maxConnections = 1000000
maxConnectionsPerIp = 0
maxBufferedBytes = 16777216
slowConsumer = "drop"
maxPendingCalls = 100000

[[routes]]
path = "/"

[auth.apiKeys.bench_key]
id = "bench"
role = "user"

[resources.messages]
"#;

pub async fn start_server(args: &Args) -> anyhow::Result<Server> {
    let bin = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no parent dir"))?
            .join("switchboard"),
    };
    // Pick a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        CONFIG
            .replace("LISTEN", &addr.to_string())
            .replace("READ_BUFFER", &args.read_buffer_size.to_string()),
    )?;
    let mut cmd = match &args.server_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&bin);
            if !cpus.contains(',') && !cpus.contains('-') {
                c.env("TOKIO_WORKER_THREADS", "1");
            }
            c
        }
        None => Command::new(&bin),
    };
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().ok_or_else(|| anyhow!("server exited"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("server did not start listening on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // With taskset the direct child is the server itself (taskset execs).
    Ok(Server {
        child,
        addr,
        pid,
        _dir: tempdir::Dir(dir),
    })
}

impl Server {
    pub fn rss_kib(&self) -> u64 {
        proc_status(self.pid, "VmRSS:").unwrap_or(0)
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid.to_string())
    }
}

/// Seconds a process's threads spent runnable but waiting for a CPU (all threads).
pub fn runqueue_wait_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// User + system CPU seconds of a process (`self` or a pid) from /proc.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`: utime and stime are the 14th and 15th overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

impl Server {
    pub async fn stop(mut self) {
        // SIGTERM for a graceful exit, then make sure it is gone.
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

pub fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
