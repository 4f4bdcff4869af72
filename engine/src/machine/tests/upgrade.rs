//! Upgrades and authentication: routes, origins, tokens, subprotocols, connection limits.

use super::*;

#[test]
fn welcome_frame_shape() {
    let mut h = H::std();
    let w = h.open(1, "token=key_user");
    assert_eq!(
        w,
        json!({"type":"connected","clientId":"c1",
               "user":{"id":"u1","role":"user","scopes":["read"]},
               "timestamp":"2023-11-14T22:13:20.000Z","protocolVersion":1})
    );
    let w = h.open(2, "");
    assert_eq!(w["user"], Value::Null);
}

#[test]
fn unknown_path_is_404_and_disallowed_origin_is_403() {
    let mut h = H::new(json!({"routes":[{"path":"/ws","origins":["https://app.example"]}]}));
    let (s, b) = rejection(&h.open_req(1, req("/nope", "", &[], "a")));
    assert_eq!((s, b["code"].as_str()), (404, Some("NOT_FOUND")));
    let (s, b) = rejection(&h.open_req(
        2,
        req("/ws", "", &[("Origin", "https://evil.example")], "b"),
    ));
    assert_eq!((s, b["reason"].as_str()), (403, Some("origin_not_allowed")));
    let acts = h.open_req(
        3,
        req("/ws/", "", &[("Origin", "https://app.example")], "c"),
    );
    assert!(matches!(acts[0], Action::Accept { .. }));
}

#[test]
fn auth_required_route_refuses_missing_token_with_reason() {
    let mut cfg = H::default_cfg();
    cfg["auth"]["required"] = json!(true);
    let mut h = H::new(cfg);
    let (s, b) = rejection(&h.open_req(1, req("/", "", &[], "a")));
    assert_eq!(s, 401);
    assert_eq!(b["code"], "UNAUTHORIZED");
    assert_eq!(b["reason"], "missing_token");
}

#[test]
fn invalid_token_is_refused_even_where_auth_is_optional() {
    let mut h = H::std();
    let (s, b) = rejection(&h.open_req(1, req("/", "token=nope", &[], "a")));
    assert_eq!(s, 401);
    assert_eq!(b["code"], "UNAUTHORIZED");
    assert_ne!(b["reason"], "missing_token");
}

#[test]
fn tokens_are_read_from_every_source() {
    let mut h = H::std();
    for (i, r) in [
        req("/", "token=key_admin", &[], "a"),
        req("/", "", &[("Authorization", "Bearer key_admin")], "b"),
        req("/", "", &[("X-API-Key", "key_admin")], "c"),
        req(
            "/",
            "",
            &[("Sec-WebSocket-Protocol", "switchboard.v1, bearer.key_admin")],
            "d",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let acts = h.open_req(i as u64, r);
        let w = &frames(&acts, i as u64)[0];
        assert_eq!(w["user"]["id"], "admin1", "source {i}");
    }
}

#[test]
fn subprotocol_is_echoed_only_when_offered() {
    let mut h = H::std();
    let acts = h.open_req(
        1,
        req(
            "/",
            "",
            &[("Sec-WebSocket-Protocol", "switchboard.v1")],
            "a",
        ),
    );
    assert_eq!(
        acts[0],
        Action::Accept {
            conn: ConnId(1),
            protocol: Some("switchboard.v1".into())
        }
    );
    let acts = h.open_req(2, req("/", "", &[("Sec-WebSocket-Protocol", "other")], "b"));
    assert_eq!(
        acts[0],
        Action::Accept {
            conn: ConnId(2),
            protocol: None
        }
    );
}

#[test]
fn route_scopes_and_hosts() {
    let mut cfg = H::default_cfg();
    cfg["routes"] = json!([
        {"path":"/","host":"tenant-a.example"},
        {"path":"/"},
        {"path":"/read","scopes":["read"]},
        {"path":"/write","scopes":["write"]}
    ]);
    let mut h = H::new(cfg);
    // Scoped route without token → 401; with token lacking scope → 403.
    assert_eq!(
        rejection(&h.open_req(1, req("/write", "", &[], "a"))).0,
        401
    );
    let (s, b) = rejection(&h.open_req(2, req("/write", "token=key_user", &[], "b")));
    assert_eq!((s, b["reason"].as_str()), (403, Some("missing_scope")));
    assert!(matches!(
        h.open_req(3, req("/read", "token=key_user", &[], "c"))[0],
        Action::Accept { .. }
    ));
    // Host-specific route is matched by Host header.
    assert!(matches!(
        h.open_req(4, req("/", "", &[("Host", "TENANT-A.example:443")], "d"))[0],
        Action::Accept { .. }
    ));
    let info = h.cmd(Command::Clients).0.unwrap();
    assert_eq!(info.as_array().unwrap().len(), 2);
}

#[test]
fn connection_limits_total_per_ip_per_user() {
    let mut cfg = H::default_cfg();
    cfg["limits"] =
        json!({"maxConnections": 3, "maxConnectionsPerIp": 2, "maxConnectionsPerUser": 1});
    let mut h = H::new(cfg);
    h.open(1, "token=key_user");
    let (s, b) = rejection(&h.open_req(2, req("/", "token=key_user", &[], "x")));
    assert_eq!(
        (s, b["reason"].as_str()),
        (429, Some("too_many_connections_for_user"))
    );
    h.open(3, "");
    let (s, b) = rejection(&h.open_req(4, req("/", "", &[], "y")));
    assert_eq!(
        (s, b["reason"].as_str()),
        (429, Some("too_many_connections_from_ip"))
    );
    let mut other_ip = req("/", "", &[], "z");
    other_ip.peer = "10.0.0.2".into();
    h.open_req(5, other_ip.clone());
    other_ip.peer = "10.0.0.3".into();
    other_ip.client_id = "zz".into();
    let (s, b) = rejection(&h.open_req(6, other_ip));
    assert_eq!((s, b["code"].as_str()), (503, Some("LIMIT_EXCEEDED")));
    // Closing frees the slot.
    h.input(Input::Closed {
        conn: ConnId(1),
        code: Some(1000),
    });
    h.open(7, "token=key_user");
}

#[test]
fn duplicate_conn_id_is_api_misuse_and_empty_client_id_is_generated() {
    let mut h = H::std();
    let acts = h.open_req(1, req("/", "", &[], ""));
    let w = &frames(&acts, 1)[0];
    assert_eq!(w["clientId"].as_str().unwrap().len(), 22);
    let err =
        h.e.handle(
            Millis(T0),
            Input::Open {
                conn: ConnId(1),
                request: req("/", "", &[], "q"),
            },
        )
        .unwrap_err();
    assert_eq!(err, ApiMisuse::DuplicateConnection(1));
    let (s, _) = rejection(&h.open_req(2, req("/", "", &[], w["clientId"].as_str().unwrap())));
    assert_eq!(s, 500);
}
