//! Bursts of publications over real sockets: the frames a turn sends to the same
//! subscribers back to back are queued together (`actor/batch.rs`); what each client
//! receives, in which order, and what a full queue does must not change.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Subscribe `ws` to `channel`.
async fn subscribe(ws: &mut Ws, channel: &str) {
    send(
        ws,
        json!({"type":"subscribe","channel":channel,"requestId":1}),
    )
    .await;
    assert_eq!(recv_type(ws, "subscribed").await["channel"], channel);
}

/// The `i` of the next `n` message or direct frames of `ws`, with their type.
async fn numbers(ws: &mut Ws, n: usize) -> Vec<(String, u64)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let v = recv(ws).await;
        let ty = v["type"].as_str().unwrap_or_default().to_string();
        if ty == "message" || ty == "direct" {
            out.push((ty, v["data"]["i"].as_u64().expect("numbered")));
        }
    }
    out
}

#[tokio::test]
async fn a_burst_arrives_in_order_with_the_frames_sent_between_its_publications() {
    let server = start(json!({})).await;
    let addr = server.local_addr();
    let (mut a, wa) = connect(addr, "/").await;
    let (mut b, _) = connect(addr, "/").await;
    let (mut p, _) = connect(addr, "/").await;
    subscribe(&mut a, "one").await;
    subscribe(&mut b, "one").await;
    subscribe(&mut a, "two").await;
    // One flush from the publisher: the server reads them together, so publications
    // to "one" follow each other within a turn; a publication to "two" (A alone) and a
    // direct message to A come between some of them.
    let mut frames = Vec::new();
    let mut to_a = Vec::new();
    let mut to_b = Vec::new();
    for i in 0..600u64 {
        let (frame, both) = match i % 50 {
            25 => (
                json!({"type":"direct","to":wa["clientId"],"data":{"i":i}}),
                false,
            ),
            13 | 14 => (
                json!({"type":"publish","channel":"two","message":{"i":i}}),
                false,
            ),
            _ => (
                json!({"type":"publish","channel":"one","message":{"i":i,"pad":"x".repeat(200)}}),
                true,
            ),
        };
        let ty = if i % 50 == 25 { "direct" } else { "message" };
        to_a.push((ty.to_string(), i));
        if both {
            to_b.push((ty.to_string(), i));
        }
        frames.push(frame);
    }
    send_all(&mut p, &frames).await;
    assert_eq!(numbers(&mut a, to_a.len()).await, to_a);
    assert_eq!(numbers(&mut b, to_b.len()).await, to_b);
    assert_silent(&mut a, 100).await;
    assert_silent(&mut b, 100).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_a_burst_is_closed_and_the_others_get_all_of_it() {
    // A small queue: a turn's batch for the subscriber that does not read finds less
    // room than it has frames, once its socket is full.
    let server = start(json!({
        "limits": {"maxBufferedBytes": 1 << 30, "slowConsumer": "close"},
        "server": {"outboundQueue": 16},
    }))
    .await;
    let addr = server.local_addr();
    let (mut slow, _) = connect(addr, "/").await;
    let (mut fast, _) = connect(addr, "/").await;
    let (mut p, _) = connect(addr, "/").await;
    subscribe(&mut slow, "firehose").await;
    subscribe(&mut fast, "firehose").await;
    let payload = "p".repeat(2048);
    // 24 MB for each subscriber: more than loopback buffers hold for one that never
    // reads. Sent 12 at a time (two batches in a turn, fewer frames than the queue
    // holds), each 12 read by the subscriber that reads before the next are sent, so
    // that it keeps up.
    let total = 12_000u64;
    let mut got = Vec::new();
    for chunk in (0..total).collect::<Vec<_>>().chunks(12) {
        let frames: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"type":"publish","channel":"firehose","message":{"i":i,"p":payload}}))
            .collect();
        send_all(&mut p, &frames).await;
        got.extend(numbers(&mut fast, chunk.len()).await);
    }
    let want: Vec<(String, u64)> = (0..total).map(|i| ("message".to_string(), i)).collect();
    assert!(
        got == want,
        "the fast subscriber's frames are all there, in order"
    );
    let metrics = admin(addr, "GET", "/admin/metrics", None).await.json();
    assert_eq!(metrics["closedSlowConsumer"], 1, "{metrics}");
    let text = http(addr, "GET", "/metrics", &[], None).await.body;
    let overflows = text
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_outbound_queue_overflows_total "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("the overflow counter is exported");
    assert!(overflows >= 1, "the slow queue was found full");
    // The slow subscriber reads what was queued for it: the first frames of the burst
    // with no gap (its batches were cut at the first frame refused), then 1013 (or its
    // socket was dropped).
    let (seen, end) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        loop {
            match slow.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("frame is JSON");
                    if v["type"] == "message" {
                        seen.push(v["data"]["i"].as_u64().expect("numbered"));
                    }
                }
                Some(Ok(Message::Close(f))) => return (seen, f.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                _ => return (seen, None),
            }
        }
    })
    .await
    .expect("the slow subscriber's socket closes in time");
    assert!(matches!(end, Some(1013) | None), "{end:?}");
    assert!(!seen.is_empty() && (seen.len() as u64) < total);
    assert!(
        seen.iter().copied().eq(0..seen.len() as u64),
        "the slow subscriber's frames are the burst's first, with no gap: {} frames",
        seen.len()
    );
    server.shutdown().await;
}
