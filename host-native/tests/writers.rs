//! Write threads (`server.writeThreads`): a fan-out large enough to be shared between
//! the engine's thread and the write threads reaches every subscriber whole and in order.

mod common;

use common::*;
use serde_json::json;

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
    let mut subs = Vec::with_capacity(SUBSCRIBERS);
    for i in 0..SUBSCRIBERS {
        let (mut ws, _) = connect(addr, "/").await;
        send(
            &mut ws,
            json!({"type":"subscribe","channel":"news","requestId":i}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["type"], "subscribed");
        subs.push(ws);
    }
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
    for (i, ws) in subs.iter_mut().enumerate() {
        for n in 0..MESSAGES {
            let m = recv(ws).await;
            assert_eq!(
                (m["type"].as_str(), m["data"]["n"].as_i64()),
                (Some("message"), Some(n)),
                "subscriber {i}: {m}"
            );
        }
    }
    server.shutdown().await;
}
