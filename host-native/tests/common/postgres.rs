//! A PostgreSQL server of a test's own: `initdb` into a temp dir, `postgres` on
//! 127.0.0.1 and a random port (as the `postgres` user when the tests run as root:
//! PostgreSQL refuses to run as root), stopped when dropped.
//!
//! The binaries come from `$SWITCHBOARD_PG_BIN`, the newest `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package, `scripts/setup.sh` installs it) or `PATH`. Without
//! them [`Postgres::start`] returns `None` and the test prints why it is skipped — except
//! in CI (`CI=true`), where a missing PostgreSQL fails the test.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user the test databases belong to.
pub const USER: &str = "switchboard";

/// A running test server; stopped (and its files removed) when dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The user and group it runs as (root's tests run it as `postgres`).
    owner: Option<(u32, u32)>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, p)) = versions.pop() {
        return Some(p);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    path.parent()
        .filter(|_| out.status.success())
        .map(Path::to_path_buf)
}

/// The uid and gid of `user` (`id -u`, `id -g`).
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// Initialise and start a server, or `None` (with a message) when PostgreSQL is not
    /// installed outside CI. Panics on any other failure.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir().filter(|b| b.join("postgres").exists()) else {
            let msg = "PostgreSQL (initdb, postgres) not found: install Debian's `postgresql` \
                       (scripts/setup.sh does) or set SWITCHBOARD_PG_BIN";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg")
            .tempdir()
            .expect("temp dir");
        let owner = if is_root() {
            let ids = ids_of("postgres").expect(
                "running as root: PostgreSQL must run as the `postgres` user, which is missing",
            );
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1)).expect("chown");
            Some(ids)
        } else {
            None
        };
        let mut pg = Postgres {
            bin,
            dir,
            owner,
            port: free_port(),
            child: None,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data())
            .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--no-locale"])
            .stdin(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.resume();
        Some(pg)
    }

    fn command(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `postgres://switchboard@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Start the server (again, after [`Postgres::stop`]) and wait until it accepts
    /// connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("log file");
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(self.dir.path().join("postgres.log"), Some(uid), Some(gid))
                .expect("chown log");
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("postgres exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Stop the server (fast shutdown: open connections are closed), keeping its files.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Create database `db` (empty), run on a thread of its own (the sync client must not
    /// run inside an async runtime).
    pub fn create_db(&self, db: &str) {
        self.sql("postgres", &format!("CREATE DATABASE \"{db}\""));
    }

    /// Run `sql` (one or more statements) in `db`.
    pub fn sql(&self, db: &str, sql: &str) {
        let (url, sql) = (self.url(db), sql.to_string());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            c.batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
        .join()
        .expect("SQL ran");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
