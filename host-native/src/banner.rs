//! The startup banner `switchboard serve` prints on stdout once it listens: where to
//! connect (WebSocket routes, health, metrics, admin API, web console), which config it serves,
//! where records go, and the warnings that matter before the server is exposed.
//!
//! ```text
//! switchboard 0.1.0 listening on 127.0.0.1:3001
//!   websocket  ws://127.0.0.1:3001/  ws://127.0.0.1:3001/ws  ws://127.0.0.1:3001/events  ws://127.0.0.1:3001/socket.io
//!   health     http://127.0.0.1:3001/healthz  http://127.0.0.1:3001/readyz
//!   metrics    http://127.0.0.1:3001/metrics
//!   admin      http://127.0.0.1:3001/admin/  (Authorization: Bearer <admin key>)
//!   console    http://127.0.0.1:3001/console  (sign in with the admin key)
//!   config     examples/demo.toml (built in; --config FILE serves another)
//!   storage    SQLite ./data/switchboard.db
//!   resources  messages, users
//! warning: JWTs are verified with the public development secret "dev-secret": ...
//! ```
//!
//! Logs go to stderr; the banner is for the person who started the server.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path};

use crate::config::{Deployment, StoreKind};

/// What the banner describes: the deployment, where it came from, and the bound address.
#[derive(Debug, Clone, Copy)]
pub struct Banner<'a> {
    /// The deployment being served.
    pub deployment: &'a Deployment,
    /// The `--config` file, or `None` for the built-in demo.
    pub config: Option<&'a Path>,
    /// The address the listener is bound to (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Whether it serves `wss://`/`https://`.
    pub tls: bool,
    /// Whether the test control channel is on (`SWITCHBOARD_TEST_CONTROL=1`).
    pub test_control: bool,
}

impl Banner<'_> {
    /// The banner text, one line per item, ending with a newline.
    pub fn render(&self) -> String {
        let d = self.deployment;
        let (ws, http) = if self.tls {
            ("wss", "https")
        } else {
            ("ws", "http")
        };
        let host = url_host(self.addr);
        let base = |scheme: &str| format!("{scheme}://{host}");
        let mut s = String::new();
        let _ = writeln!(
            s,
            "switchboard {} listening on {}{}",
            env!("CARGO_PKG_VERSION"),
            self.addr,
            if self.addr.ip().is_unspecified() {
                " (every interface)"
            } else {
                ""
            }
        );
        let routes: Vec<String> = d
            .engine
            .routes
            .iter()
            .map(|r| format!("{}{}", base(ws), r.path))
            .collect();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(s, "  {label:<10} {value}");
        };
        // The engine config requires at least one route.
        line("websocket", routes.join("  "));
        line("health", format!("{0}/healthz  {0}/readyz", base(http)));
        line("metrics", format!("{}/metrics", base(http)));
        line(
            "admin",
            format!("{}/admin/  (Authorization: Bearer <admin key>)", base(http)),
        );
        line(
            "console",
            format!("{}/console  (sign in with the admin key)", base(http)),
        );
        line(
            "config",
            match self.config {
                Some(p) => p.display().to_string(),
                None => "examples/demo.toml (built in; --config FILE serves another)".into(),
            },
        );
        line(
            "storage",
            match &d.server.store {
                StoreKind::Sqlite => format!(
                    "SQLite {}",
                    shown_path(&d.server.data_dir.join(crate::store::DB_FILE))
                ),
                StoreKind::Memory => "memory (records are lost on exit)".into(),
                StoreKind::Postgres(url) => {
                    format!("PostgreSQL {}", crate::store::postgres::redact(url))
                }
            },
        );
        if let Some(url) = &d.server.broker {
            line(
                "cluster",
                format!(
                    "{} (channels, DMs, presence and change events shared)",
                    crate::cluster::redact(url)
                ),
            );
        }
        let resources: Vec<&str> = d.engine.resources.keys().map(String::as_str).collect();
        line(
            "resources",
            if resources.is_empty() {
                "none".into()
            } else {
                resources.join(", ")
            },
        );
        for w in self.warnings() {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }

    /// The warnings that matter before the server is exposed: development secrets in
    /// use, the test control channel, and plain-text traffic on an address other hosts
    /// can reach.
    pub fn warnings(&self) -> Vec<String> {
        let (d, addr, tls) = (self.deployment, self.addr, self.tls);
        let mut w = engine::deployment::dev_warnings(&d.engine, Some(&d.server.admin_key));
        if !tls && !addr.ip().is_loopback() {
            w.push(format!(
                "serving plain ws:// and http:// on {}, reachable from other hosts: configure \
                 server.tls or put a TLS proxy in front.",
                addr.ip()
            ));
        }
        if self.test_control {
            w.push(format!(
                "the test control channel is on ({}=1): anyone reaching {}/ can reset the \
                 engine. Tests only.",
                crate::testctl::ENV,
                crate::testctl::PREFIX
            ));
        }
        w
    }
}

/// The host part of URLs for `addr`: an unspecified address (0.0.0.0, ::) is shown as
/// the loopback address, which is where a local client connects.
fn url_host(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

/// A path as configured; relative ones start with `./` so it is clear they are relative
/// to the directory the server was started in.
fn shown_path(p: &Path) -> String {
    match p.components().next() {
        Some(Component::Normal(_)) => format!("./{}", p.display()),
        _ => p.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use serde_json::json;

    fn demo_without_env() -> Deployment {
        let mut doc = config::toml_to_json(config::DEMO_TOML).unwrap();
        config::apply_env(&mut doc, |_| None);
        config::from_document(doc).unwrap()
    }

    fn render(d: &Deployment, config: Option<&Path>, addr: &str, tls: bool) -> String {
        Banner {
            deployment: d,
            config,
            addr: addr.parse().unwrap(),
            tls,
            test_control: false,
        }
        .render()
    }

    #[test]
    fn demo_banner_lists_urls_config_storage_and_dev_secret_warnings() {
        let d = demo_without_env();
        let text = render(&d, None, "127.0.0.1:3001", false);
        let version = env!("CARGO_PKG_VERSION");
        let expected = format!(
            "switchboard {version} listening on 127.0.0.1:3001
  websocket  ws://127.0.0.1:3001/  ws://127.0.0.1:3001/ws  ws://127.0.0.1:3001/events  ws://127.0.0.1:3001/socket.io
  health     http://127.0.0.1:3001/healthz  http://127.0.0.1:3001/readyz
  metrics    http://127.0.0.1:3001/metrics
  admin      http://127.0.0.1:3001/admin/  (Authorization: Bearer <admin key>)
  console    http://127.0.0.1:3001/console  (sign in with the admin key)
  config     examples/demo.toml (built in; --config FILE serves another)
  storage    SQLite ./data/switchboard.db
  resources  messages, users
warning: JWTs are verified with the public development secret \"dev-secret\": anyone can mint tokens for this server. Set SWITCHBOARD_JWT_SECRET.
warning: the admin API accepts the development key \"dev-admin\". Set SWITCHBOARD_ADMIN_KEY.
"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn real_secrets_memory_store_and_config_file_leave_no_warnings() {
        let mut doc = config::toml_to_json(config::DEMO_TOML).unwrap();
        config::apply_env(&mut doc, |k| match k {
            config::ENV_JWT_SECRET => Some("a-real-secret".into()),
            config::ENV_ADMIN_KEY => Some("a-real-key".into()),
            _ => None,
        });
        let mut d = config::from_document(doc).unwrap();
        d.server.store = StoreKind::Memory;
        let text = render(&d, Some(Path::new("prod.toml")), "127.0.0.1:9000", false);
        assert!(!text.contains("warning"), "{text}");
        assert!(
            text.contains("  config     prod.toml\n"),
            "config file shown: {text}"
        );
        assert!(
            text.contains("  storage    memory (records are lost on exit)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_postgresql_store_is_shown_with_its_password_hidden() {
        let mut d = demo_without_env();
        d.server.store = StoreKind::Postgres("postgres://sb:pw@127.0.0.1:5432/records".into());
        let text = render(&d, None, "127.0.0.1:3001", false);
        assert!(
            text.contains("  storage    PostgreSQL postgres://sb:***@127.0.0.1:5432/records\n"),
            "{text}"
        );
        assert!(!text.contains(":pw@"), "{text}");
    }

    #[test]
    fn test_control_channel_is_a_warning() {
        let d = demo_without_env();
        let text = Banner {
            deployment: &d,
            config: None,
            addr: "127.0.0.1:3001".parse().unwrap(),
            tls: false,
            test_control: true,
        }
        .render();
        assert!(
            text.contains("warning: the test control channel is on (SWITCHBOARD_TEST_CONTROL=1)"),
            "{text}"
        );
    }

    #[test]
    fn tls_uses_secure_schemes() {
        let d = demo_without_env();
        let text = render(&d, None, "127.0.0.1:8443", true);
        assert!(text.contains("wss://127.0.0.1:8443/ws"), "{text}");
        assert!(text.contains("https://127.0.0.1:8443/metrics"), "{text}");
        assert!(!text.contains("ws://127.0.0.1"), "{text}");
        assert!(!text.contains("plain ws://"), "{text}");
    }

    #[test]
    fn every_interface_shows_loopback_urls_and_warns_about_plain_text() {
        let d = demo_without_env();
        let text = render(&d, None, "0.0.0.0:3001", false);
        assert!(
            text.starts_with(&format!(
                "switchboard {} listening on 0.0.0.0:3001 (every interface)\n",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(text.contains("ws://127.0.0.1:3001/ws"), "{text}");
        assert!(
            text.contains("warning: serving plain ws:// and http:// on 0.0.0.0"),
            "{text}"
        );
        let v6 = render(&d, None, "[::]:3001", false);
        assert!(v6.contains("ws://[::1]:3001/ws"), "{v6}");
    }

    #[test]
    fn absolute_data_dir_and_a_bare_config_are_shown_as_they_are() {
        let mut d = demo_without_env();
        d.server.data_dir = "/var/lib/switchboard".into();
        let text = render(&d, None, "127.0.0.1:3001", false);
        assert!(
            text.contains("  storage    SQLite /var/lib/switchboard/switchboard.db\n"),
            "{text}"
        );
        let mut d = demo_without_env();
        d.engine = engine::Config::from_value(json!({})).unwrap();
        let text = render(&d, None, "127.0.0.1:3001", false);
        assert!(
            text.contains("  websocket  ws://127.0.0.1:3001/\n"),
            "{text}"
        );
        assert!(text.contains("  resources  none\n"), "{text}");
    }
}
