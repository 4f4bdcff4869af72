//! The server API: broadcast, send, disconnect, queries, shutdown, slow consumers.

use super::*;

#[test]
fn broadcast_send_to_disconnect_and_queries() {
    let mut h = H::std();
    h.open(1, "token=key_admin");
    h.open(2, "token=key_user");
    h.open(3, "");
    let (r, acts) = h.cmd(Command::Broadcast {
        message: json!({"type":"announcement"}),
        filter: Some(json!({"role":"admin"})),
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 1);
    assert_eq!(frames(&acts, 1)[0], json!({"type":"announcement"}));
    let (r, _) = h.cmd(Command::Broadcast {
        message: json!("all"),
        filter: None,
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 3);
    let (r, acts) = h.cmd(Command::SendTo {
        client_id: "c3".into(),
        message: json!({"x":1}),
    });
    assert_eq!(r.unwrap()["delivered"], 1);
    assert_eq!(frames(&acts, 3)[0], json!({"x":1}));
    assert_eq!(
        h.cmd(Command::SendTo {
            client_id: "zz".into(),
            message: json!(1)
        })
        .0
        .unwrap_err()
        .code,
        ErrorCode::NotFound
    );
    let (r, acts) = h.cmd(Command::Disconnect {
        client_id: "c2".into(),
        reason: None,
    });
    assert!(r.is_ok());
    assert_eq!(close_of(&acts, 2).unwrap().0, close::DISCONNECTED_BY_SERVER);
    let clients = h.cmd(Command::Clients).0.unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 2);
    assert_eq!(clients[0]["connectedAt"], "2023-11-14T22:13:20.000Z");
    let info = h.cmd(Command::ServerInfo).0.unwrap();
    assert_eq!(info["protocolVersion"], 1);
    let m = h.cmd(Command::Metrics).0.unwrap();
    assert_eq!(m["connections"], 3);
    assert_eq!(
        h.cmd(Command::Publish {
            channel: "n".into(),
            data: None,
            tenant: None,
        })
        .0
        .unwrap()["delivered"],
        0
    );
    assert_eq!(
        h.cmd(insert_cmd("nope", json!({}))).0.unwrap_err().code,
        ErrorCode::ResourceNotFound
    );
}

#[test]
fn shutdown_closes_everyone_with_1001_and_refuses_new_upgrades() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    let (r, acts) = h.cmd(Command::Shutdown { reason: None });
    assert_eq!(r.unwrap()["closing"], 2);
    assert_eq!(
        close_of(&acts, 1).unwrap(),
        (1001, "server shutting down".into())
    );
    assert_eq!(close_of(&acts, 2).unwrap().0, 1001);
    let (s, b) = rejection(&h.open_req(3, req("/", "", &[], "n")));
    assert_eq!((s, b["code"].as_str()), (503, Some("UNAVAILABLE")));
    assert!(h.e.is_draining());
}

#[test]
fn slow_consumer_close_and_drop_policies() {
    let mut h = H::new(json!({"limits":{"maxBufferedBytes": 1000}}));
    h.open(1, "");
    assert!(h
        .input(Input::Backpressure {
            conn: ConnId(1),
            buffered: 1000
        })
        .is_empty());
    let acts = h.input(Input::Backpressure {
        conn: ConnId(1),
        buffered: 1001,
    });
    assert_eq!(close_of(&acts, 1).unwrap().0, close::TRY_AGAIN_LATER);

    let mut h = H::new(json!({"limits":{"maxBufferedBytes": 1000, "slowConsumer": "drop"}}));
    h.open(1, "");
    h.open(2, "");
    for c in [1, 2] {
        h.ask(c, json!({"type":"subscribe","channel":"x"}));
    }
    h.input(Input::Backpressure {
        conn: ConnId(1),
        buffered: 5000,
    });
    let (r, acts) = h.cmd(Command::Publish {
        channel: "x".into(),
        data: None,
        tenant: None,
    });
    assert_eq!(r.unwrap()["delivered"], 1);
    assert!(frames(&acts, 1).is_empty());
    assert_eq!(h.e.metrics().dropped_slow_consumer, 1);
    // Replies still go out to the slow client.
    assert_eq!(h.ask(1, json!({"type":"ping"}))[0]["type"], "pong");
}

#[test]
fn close_reasons_fit_a_close_frame() {
    let mut h = H::std();
    h.open(1, "");
    let (_, acts) = h.cmd(Command::Disconnect {
        client_id: "c1".into(),
        reason: Some("é".repeat(200)),
    });
    let (_, reason) = close_of(&acts, 1).unwrap();
    assert!(reason.len() <= 123 && reason.starts_with('é'));
}
