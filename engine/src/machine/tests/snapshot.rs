//! Snapshot and restore of connections.

use super::*;

#[test]
fn snapshot_restore_round_trip_keeps_subscriptions_and_rooms() {
    let mut h = H::std();
    h.open(1, "token=key_user");
    h.ask(
        1,
        json!({"type":"subscribe","resource":"messages","filter":{"c":"a"}}),
    );
    h.ask(1, json!({"type":"subscribe","channel":"news"}));
    h.ask(1, json!({"type":"join","room":"r"}));
    let snap = h.e.snapshot(ConnId(1)).unwrap();
    let text = serde_json::to_string(&snap).unwrap();
    assert!(text.len() < 2048, "snapshot is {} bytes", text.len());
    // Hibernation: the engine is rebuilt from scratch and the connection restored.
    let mut h2 = H::std();
    let restored: ConnectionSnapshot = serde_json::from_str(&text).unwrap();
    h2.input(Input::Restore {
        conn: ConnId(1),
        snapshot: Box::new(restored),
    });
    let (r, _) = h2.cmd(insert_cmd("messages", json!({"c":"a"})));
    assert_eq!(r.unwrap()["delivered"], 1);
    assert_eq!(
        h2.cmd(Command::Publish {
            channel: "news".into(),
            data: None,
            tenant: None,
        })
        .0
        .unwrap()["delivered"],
        1
    );
    assert_eq!(
        h2.ask(1, json!({"type":"room:members","room":"r"}))[0]["members"][0]["clientId"],
        "c1"
    );
    assert_eq!(
        h2.ask(1, json!({"type":"subscribe","resource":"messages"}))[0]["subscriptionId"],
        "sub-3"
    );
    let mut bad = snap.clone();
    bad.version = 99;
    let err = h2.e.handle(
        Millis(T0),
        Input::Restore {
            conn: ConnId(5),
            snapshot: Box::new(bad),
        },
    );
    assert_eq!(err, Err(ApiMisuse::SnapshotVersion(99)));
}
