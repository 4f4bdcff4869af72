//! The debug log names each connection when it opens and closes (client id, route, user),
//! read from the engine at that moment.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

/// Log lines, shared with the subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn opening_and_closing_are_logged_with_the_client_route_and_user() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test runtime: the server's tasks run on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = start(json!({})).await;
    let (mut ws, welcome) = connect(server.local_addr(), "/ws?token=key_user").await;
    let client = welcome["clientId"].as_str().unwrap().to_string();
    send(&mut ws, json!({"type":"ping","requestId":1})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    drop(ws);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !lines.text().contains("connection closed") {
        assert!(tokio::time::Instant::now() < deadline, "{}", lines.text());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let text = lines.text();
    for event in ["connection opened", "connection closed"] {
        let line = text.lines().find(|l| l.contains(event)).unwrap();
        assert!(line.contains(&format!("client={client}")), "{line}");
        assert!(
            line.contains("route=/ws") && line.contains("user=u1"),
            "{line}"
        );
    }
    server.shutdown().await;
}
