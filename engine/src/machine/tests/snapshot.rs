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

#[test]
fn a_restored_connection_with_a_tenant_is_not_sent_an_untenanted_resource_publication() {
    // No route has a tenant, but a snapshot can carry one (made under an older config).
    let mut cfg = H::default_cfg();
    cfg["resources"]["messages"] = json!({"publish": true});
    let mut h = H::new(cfg);
    for conn in [1, 2] {
        h.open(conn, "token=key_user");
        h.ask(conn, json!({"type":"subscribe","resource":"messages"}));
    }
    let mut snap = h.e.snapshot(ConnId(2)).unwrap();
    h.closed(2);
    snap.tenant = Some("acme".into());
    h.input(Input::Restore {
        conn: ConnId(3),
        snapshot: Box::new(snap),
    });
    let publish = |h: &mut H, tenant: Option<&str>| {
        h.cmd(Command::Publish {
            channel: "messages".into(),
            data: None,
            tenant: tenant.map(Into::into),
        })
        .0
        .unwrap()["delivered"]
            .clone()
    };
    assert_eq!(publish(&mut h, None), 1, "only the untenanted subscriber");
    assert_eq!(
        publish(&mut h, Some("acme")),
        1,
        "only the tenant's subscriber"
    );
    assert_eq!(h.e.tenanted, 1);
    h.closed(3);
    assert_eq!(h.e.tenanted, 0, "the count goes down with the connection");
    assert_eq!(publish(&mut h, None), 1);
}
