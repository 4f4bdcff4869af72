//! Hostile clients at the WebSocket layer: raw frames that break RFC 6455 get the close
//! code the RFC names (1007 for a text frame that is not UTF-8, 1002 for framing
//! violations), never an empty close frame or a silent drop.

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw upgraded connection: the 101 has been read, the welcome frame too.
async fn raw_upgrade(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(upgrade_request(addr).as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (opcode, payload) = read_frame(&mut tcp).await.expect("welcome frame");
    assert_eq!(opcode, 1);
    let welcome: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(welcome["type"], "connected");
    tcp
}

/// A WebSocket upgrade request for `/`.
fn upgrade_request(addr: std::net::SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// The response head, byte by byte up to the blank line (frames follow it).
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tokio::time::timeout(WAIT, tcp.read_exact(&mut b))
            .await
            .expect("response in time")
            .unwrap();
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// One server frame (servers never mask): (opcode, payload); `None` at end of stream.
async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut h))
        .await
        .expect("a frame in time")
        .ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        tcp.read_exact(&mut b).await.ok()?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        tcp.read_exact(&mut b).await.ok()?;
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// A client frame: `first` is the first byte (FIN, RSV, opcode) as sent; masked unless
/// `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    if payload.len() < 126 {
        out.push(mask_bit | payload.len() as u8);
    } else {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Send `bytes` on a fresh connection; return the close frame's code and reason.
async fn close_after(addr: std::net::SocketAddr, bytes: &[u8]) -> (u16, String) {
    let mut tcp = raw_upgrade(addr).await;
    tcp.write_all(bytes).await.unwrap();
    loop {
        match read_frame(&mut tcp).await {
            Some((8, payload)) => {
                assert!(payload.len() >= 2, "close frame without a code");
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
            }
            Some(_) => continue,
            None => panic!("connection ended without a close frame"),
        }
    }
}

#[tokio::test]
async fn frames_sent_in_the_same_write_as_the_upgrade_request_are_answered() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut bytes = upgrade_request(addr).into_bytes();
    bytes.extend(frame(0x81, br#"{"type":"ping","requestId":7}"#, true));
    bytes.extend(frame(0x89, b"hi", true));
    tcp.write_all(&bytes).await.unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut texts = Vec::new();
    let mut pong = None;
    while texts.len() < 2 || pong.is_none() {
        match read_frame(&mut tcp).await.expect("a frame") {
            (1, payload) => {
                texts.push(serde_json::from_slice::<serde_json::Value>(&payload).unwrap())
            }
            (10, payload) => pong = Some(payload),
            (op, _) => panic!("unexpected opcode {op}"),
        }
    }
    assert_eq!(texts[0]["type"], "connected");
    assert_eq!(
        (texts[1]["type"].as_str(), texts[1]["requestId"].as_i64()),
        (Some("pong"), Some(7))
    );
    assert_eq!(pong.as_deref(), Some(&b"hi"[..]));
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (code, reason) = close_after(addr, &frame(0x81, b"{\"a\":\"\xff\xfe\"}", true)).await;
    assert_eq!(code, 1007, "{reason}");
    // The same split across fragments: the message as a whole is checked.
    let mut bytes = frame(0x01, b"{\"a\":\"\xe2\x82", true);
    bytes.extend(frame(0x80, b"\x28\"}", true));
    assert_eq!(close_after(addr, &bytes).await.0, 1007);
    server.shutdown().await;
}

#[tokio::test]
async fn framing_violations_close_with_1002() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let ping = br#"{"type":"ping"}"#;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "RSV1 without an extension",
            frame(0x80 | 0x40 | 0x1, ping, true),
        ),
        ("unmasked client frame", frame(0x81, ping, false)),
        ("unknown data opcode", frame(0x83, ping, true)),
        ("unknown control opcode", frame(0x8b, b"", true)),
        (
            "control frame over 125 bytes",
            frame(0x89, &[b'x'; 126], true),
        ),
        ("fragmented ping", frame(0x09, b"x", true)),
        ("continuation without a start", frame(0x80, ping, true)),
    ];
    for (what, bytes) in cases {
        let (code, reason) = close_after(addr, &bytes).await;
        assert_eq!(code, 1002, "{what}: {reason}");
        assert!(!reason.is_empty(), "{what}: the reason says what was wrong");
    }
    // The connections that stayed well-behaved are unaffected.
    let (mut ws, _) = connect(addr, "/").await;
    send(&mut ws, json!({"type": "ping", "requestId": 1})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    server.shutdown().await;
}

/// A client still writing a frame the server refused (over `maxPayloadSize`, refused
/// from its header) gets the error and the close frame, and can finish writing: the
/// server reads and drops the rest before it closes the socket. Closing with unread
/// input makes the kernel answer with a reset, and the client's next write or read would
/// fail with "connection reset by peer".
#[tokio::test]
async fn a_frame_refused_while_it_is_still_arriving_gets_its_close_not_a_reset() {
    let server = start(json!({"maxPayloadSize": 1024})).await;
    let mut tcp = raw_upgrade(server.local_addr()).await;
    // The header of a 64 KiB masked text frame, then its first KiB.
    let len: u64 = 64 * 1024;
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&len.to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&head).await.unwrap();
    let chunk = [b'x'; 1024];
    tcp.write_all(&chunk).await.unwrap();
    // The server refuses the frame from its header and answers at once.
    let mut error = None;
    let close = loop {
        match read_frame(&mut tcp).await {
            Some((1, payload)) => {
                error = Some(serde_json::from_slice::<serde_json::Value>(&payload).unwrap())
            }
            Some((8, payload)) => break u16::from_be_bytes([payload[0], payload[1]]),
            Some(_) => continue,
            None => panic!("the stream ended without a close frame (error so far: {error:?})"),
        }
    };
    assert_eq!(close, 1009);
    assert_eq!(error.expect("the error frame")["code"], "PAYLOAD_TOO_LARGE");
    // The rest of the refused frame still goes out, and the server then closes cleanly.
    for i in 1..64 {
        tcp.write_all(&chunk)
            .await
            .unwrap_or_else(|e| panic!("chunk {i} of the refused frame: {e}"));
    }
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .expect("the server closes within its linger time")
        .expect("a clean end of stream, not a reset");
    assert!(rest.is_empty(), "nothing after the close frame: {rest:?}");
    server.shutdown().await;
}

/// `GET /` shows live counts, routes and resource names only to the operator (the admin
/// key, any case of the `Bearer` scheme) or where `server.publicInfo` opts in.
#[tokio::test]
async fn server_info_counts_need_the_admin_key_and_the_bearer_scheme_is_case_insensitive() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (_ws, _) = connect(addr, "/").await;
    let anonymous = http(addr, "GET", "/", &[], None).await;
    assert_eq!(anonymous.status, 200);
    let v = anonymous.json();
    assert_eq!(v["protocolVersion"], 1);
    assert_eq!(v["draining"], false);
    for hidden in ["clients", "subscriptions", "rooms", "resources", "routes"] {
        assert!(
            v.get(hidden).is_none(),
            "{hidden} shown without the key: {v}"
        );
    }
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let key = format!("{scheme} {ADMIN}");
        let r = http(addr, "GET", "/", &[("Authorization", &key)], None).await;
        assert_eq!(r.json()["clients"], 1, "{scheme}");
        let r = http(
            addr,
            "GET",
            "/admin/clients",
            &[("Authorization", &key)],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    let wrong = format!("Basic {ADMIN}");
    let r = http(
        addr,
        "GET",
        "/admin/clients",
        &[("Authorization", &wrong)],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    server.shutdown().await;

    let server = start(json!({"server": {"publicInfo": true}})).await;
    let r = http(server.local_addr(), "GET", "/", &[], None).await;
    assert_eq!(r.json()["clients"], 0);
    server.shutdown().await;
}
