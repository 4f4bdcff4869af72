//! `switchboard serve` prints its startup banner on stdout: the real listen address and
//! URLs, the config, the storage, and the dev-secret warnings (checked against the
//! actual binary; the exact layout is pinned by `banner.rs`'s unit tests).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `switchboard serve` and the banner lines it printed.
struct Served {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the binary in `cwd` with `args` and `env`, and read `n` banner lines (10 s at most).
fn serve(cwd: &Path, args: &[&str], env: &[(&str, &str)], n: usize) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("serve")
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("SWITCHBOARD_JWT_SECRET")
        .env_remove("SWITCHBOARD_ADMIN_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn switchboard");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        lines: Vec::new(),
    };
    while served.lines.len() < n {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => served.lines.push(line),
            Err(e) => panic!("banner incomplete after {:?}: {e}", served.lines),
        }
    }
    // Nothing more on stdout: the banner is all it prints.
    if let Ok(extra) = rx.recv_timeout(Duration::from_millis(300)) {
        panic!("unexpected stdout line after the banner: {extra}");
    }
    served
}

fn port_of(first_line: &str) -> u16 {
    let addr = first_line
        .rsplit("listening on ")
        .next()
        .expect("listening on ADDR");
    addr.parse::<std::net::SocketAddr>()
        .unwrap_or_else(|e| panic!("`{first_line}`: {e}"))
        .port()
}

#[test]
fn demo_banner_shows_urls_storage_and_dev_secret_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--listen", "127.0.0.1:0"], &[], 11);
    let port = port_of(&s.lines[0]);
    assert_ne!(port, 0);
    let base = format!("127.0.0.1:{port}");
    assert_eq!(
        s.lines[0],
        format!(
            "switchboard {} listening on {base}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        s.lines[1..9],
        [
            format!("  websocket  ws://{base}/  ws://{base}/ws  ws://{base}/events  ws://{base}/socket.io"),
            format!("  health     http://{base}/healthz  http://{base}/readyz"),
            format!("  metrics    http://{base}/metrics"),
            format!("  admin      http://{base}/admin/  (Authorization: Bearer <admin key>)"),
            format!("  console    http://{base}/console  (sign in with the admin key)"),
            "  config     examples/demo.toml (built in; --config FILE serves another)".into(),
            "  storage    SQLite ./data/switchboard.db".into(),
            "  resources  messages, users".into(),
        ]
    );
    assert!(
        s.lines[9].starts_with(
            "warning: JWTs are verified with the public development secret \"dev-secret\""
        ) && s.lines[9].ends_with("Set SWITCHBOARD_JWT_SECRET."),
        "{}",
        s.lines[9]
    );
    assert!(
        s.lines[10].starts_with("warning: the admin API accepts the development key \"dev-admin\"")
            && s.lines[10].ends_with("Set SWITCHBOARD_ADMIN_KEY."),
        "{}",
        s.lines[10]
    );
    // The storage line is true: the SQLite file is where it says.
    assert!(dir.path().join("data/switchboard.db").exists());
}

#[test]
fn config_file_memory_store_and_real_secrets_give_a_banner_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.toml");
    let config = config.to_str().unwrap();
    let s = serve(
        dir.path(),
        &["--config", config, "--listen", "127.0.0.1:0", "--memory"],
        &[
            ("SWITCHBOARD_JWT_SECRET", "a-real-secret"),
            ("SWITCHBOARD_ADMIN_KEY", "a-real-key"),
        ],
        9,
    );
    assert_eq!(s.lines[6], format!("  config     {config}"));
    assert_eq!(s.lines[7], "  storage    memory (records are lost on exit)");
    assert!(!dir.path().join("data").exists(), "--memory writes no file");
}
