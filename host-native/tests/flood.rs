//! A connection flood against `switchboard serve` with a small file descriptor limit:
//! the connection limit follows `RLIMIT_NOFILE` (minus a reserve, said at startup), so
//! upgrades beyond it get the documented 503 while `/healthz`, `/readyz` and the admin
//! API keep answering; one IP is held to `maxConnectionsPerIp`.

mod common;

use std::process::Stdio;

use common::*;

/// `switchboard serve` under `ulimit -n nofile` with `config` (TOML), on a free port.
struct Child {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
    /// The server's stderr, complete once it exits.
    log: tokio::task::JoinHandle<String>,
    _dir: tempfile::TempDir,
}

async fn serve_with_nofile(nofile: u32, limits: &str) -> Child {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flood.toml");
    std::fs::write(
        &config,
        format!(
            "heartbeatInterval = 0\n[server]\nlisten = \"127.0.0.1:0\"\nstore = \"memory\"\nadminKey = \"{ADMIN}\"\nlogLevel = \"info\"\nshutdownTimeoutMs = 300\n[limits]\n{limits}\n[[routes]]\npath = \"/\"\n"
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");
    // `ulimit -n` sets the soft and the hard limit, so the server cannot raise it.
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" serve --config \"$1\""
        ))
        .arg(bin)
        .arg(&config)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let (addr, log) = listen_addr_from_stderr(&mut child).await;
    Child {
        child,
        addr,
        log,
        _dir: dir,
    }
}

/// Open upgrades until `n` are attempted; count accepted and refused (HTTP status).
async fn flood(addr: std::net::SocketAddr, n: usize) -> (Vec<Ws>, Vec<u16>) {
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..n {
        match try_connect(addr, "/", &[]).await {
            Ok((ws, _)) => open.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                refused.push(r.status().as_u16())
            }
            Err(e) => panic!("an upgrade failed without an HTTP answer: {e}"),
        }
    }
    (open, refused)
}

#[tokio::test]
async fn the_connection_limit_follows_the_descriptor_limit_and_health_stays_answerable() {
    // 200 descriptors: 32 reserved, at most 168 WebSockets (100000 configured).
    let mut server = serve_with_nofile(200, "maxConnectionsPerIp = 0").await;
    let addr = server.addr;
    let (open, refused) = flood(addr, 200).await;
    assert_eq!(open.len(), 168, "WebSockets held");
    assert_eq!(refused.len(), 32);
    assert!(refused.iter().all(|&s| s == 503), "{refused:?}");
    // At the limit, plain HTTP still answers.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            http(addr, "GET", path, &[], None).await.status,
            200,
            "{path}"
        );
    }
    let clients = admin(addr, "GET", "/admin/clients", None).await;
    assert_eq!(clients.status, 200);
    assert_eq!(clients.json().as_array().map(Vec::len), Some(168));
    drop(open);
    server.child.start_kill().unwrap();
    let _ = server.child.wait().await;
    let log = tokio::time::timeout(WAIT, server.log)
        .await
        .expect("stderr closes after exit")
        .unwrap();
    assert!(
        log.contains("connection limit 168") && log.contains("file descriptor limit 200"),
        "the startup log says the limit:\n{log}"
    );
    assert!(
        !log.contains("connection opened"),
        "connections are not logged at info:\n{log}"
    );
}

#[tokio::test]
async fn one_ip_is_held_to_the_per_ip_default() {
    // No per-IP setting: the default (1000) applies, under a limit that would allow more.
    // This process holds the 1010 client sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut server = serve_with_nofile(4096, "").await;
    let (open, refused) = flood(server.addr, 1010).await;
    assert_eq!(open.len(), 1000);
    assert!(refused.iter().all(|&s| s == 429), "{refused:?}");
    assert_eq!(
        http(server.addr, "GET", "/healthz", &[], None).await.status,
        200
    );
    drop(open);
    server.child.start_kill().unwrap();
    let _ = server.child.wait().await;
}
