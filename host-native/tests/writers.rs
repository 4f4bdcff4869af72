//! Large fan-outs: one shared between the engine's thread and the write threads
//! (`server.writeThreads`), and a burst whose frames fill more than one actor turn
//! ([`switchboard::actor::TURN_FRAMES`]), each reach every subscriber whole and in order.

mod common;

use common::*;
use serde_json::{json, Value};

/// Enough subscribers for every turn of the fan-out to be shared
/// (`switchboard::writers::SPLIT_MIN` connections at least).
const SUBSCRIBERS: usize = 3 * switchboard::writers::SPLIT_MIN;
const MESSAGES: i64 = 60;

#[tokio::test]
async fn a_fan_out_shared_with_write_threads_reaches_every_subscriber_complete_and_in_order() {
    let server = start(json!({
        "server": {"writeThreads": 2},
    }))
    .await;
    let addr = server.local_addr();
    let mut subs = subscribe_news(addr, SUBSCRIBERS).await;
    let (mut publisher, _) = connect(addr, "/").await;
    for n in 0..MESSAGES {
        send(
            &mut publisher,
            json!({"type":"publish","channel":"news","message":{"n":n},"requestId":n}),
        )
        .await;
    }
    for n in 0..MESSAGES {
        let ack = recv(&mut publisher).await;
        assert_eq!(
            (
                ack["type"].as_str(),
                ack["requestId"].as_i64(),
                ack["delivered"].as_u64()
            ),
            (Some("published"), Some(n), Some(SUBSCRIBERS as u64)),
            "{ack}"
        );
    }
    expect_in_order(&mut subs, MESSAGES).await;
    server.shutdown().await;
}

/// `n` connections subscribed to channel `news`.
async fn subscribe_news(addr: std::net::SocketAddr, n: usize) -> Vec<Ws> {
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let (mut ws, _) = connect(addr, "/").await;
        send(
            &mut ws,
            json!({"type":"subscribe","channel":"news","requestId":i}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["type"], "subscribed");
        subs.push(ws);
    }
    subs
}

/// Receive `messages` frames on every subscriber and check they are `message`s with
/// `data.n` = 0, 1, 2, … in order.
async fn expect_in_order(subs: &mut [Ws], messages: i64) {
    for (i, ws) in subs.iter_mut().enumerate() {
        for n in 0..messages {
            let m = recv(ws).await;
            assert_eq!(
                (m["type"].as_str(), m["data"]["n"].as_i64()),
                (Some("message"), Some(n)),
                "subscriber {i}: {m}"
            );
        }
    }
}

#[tokio::test]
async fn a_burst_larger_than_one_turn_reaches_every_subscriber_complete_and_in_order() {
    // Enough subscribers for a turn's messages to queue more than TURN_FRAMES frames.
    const BURST_SUBSCRIBERS: usize =
        2 * switchboard::actor::TURN_FRAMES / switchboard::actor::TURN_MESSAGES;
    // Frames for more than two turns, so turns end early at TURN_FRAMES.
    let messages = (2 * switchboard::actor::TURN_FRAMES / BURST_SUBSCRIBERS + 50) as i64;
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let mut subs = subscribe_news(addr, BURST_SUBSCRIBERS).await;
    let (mut publisher, _) = connect(addr, "/").await;
    // One write: the server reads the burst in as few reads as it can.
    let burst: Vec<Value> = (0..messages)
        .map(|n| json!({"type":"publish","channel":"news","message":{"n":n}}))
        .collect();
    send_all(&mut publisher, &burst).await;
    expect_in_order(&mut subs, messages).await;
    // The burst was written out in parts: turns ended early.
    let metrics = http(addr, "GET", "/metrics", &[], None).await.body;
    let split = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_turns_split_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(split.is_some_and(|n| n > 0), "{metrics}");
    for n in 0..messages {
        let ack = recv(&mut publisher).await;
        assert_eq!(
            (ack["type"].as_str(), ack["delivered"].as_u64()),
            (Some("published"), Some(BURST_SUBSCRIBERS as u64)),
            "publish {n}: {ack}"
        );
    }
    server.shutdown().await;
}
