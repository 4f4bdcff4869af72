//! Channels, rooms and direct messages.

use super::*;

#[test]
fn publish_reaches_channel_subscribers_once_with_shared_bytes() {
    let mut h = H::std();
    for c in 1..=3 {
        h.open(c, "");
    }
    assert_eq!(
        h.ask(2, json!({"type":"subscribe","channel":"news"}))[0]["channel"],
        "news"
    );
    h.ask(3, json!({"type":"subscribe","channel":"news"}));
    h.ask(1, json!({"type":"subscribe","channel":"news"}));
    let acts = h.send(
        1,
        json!({"type":"publish","channel":"news","message":{"t":1},"requestId":5}),
    );
    let many = acts
        .iter()
        .find_map(|a| match a {
            Action::SendMany { conns, frame } => Some((conns.clone(), frame.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        many.0,
        vec![ConnId(2), ConnId(3)],
        "sender excluded, order kept"
    );
    let m: Value = serde_json::from_str(many.1.as_text().unwrap()).unwrap();
    assert_eq!(
        m,
        json!({"type":"message","channel":"news","from":"c1","data":{"t":1},"timestamp":"2023-11-14T22:13:20.000Z"})
    );
    let f = frames(&acts, 1);
    assert_eq!(
        f[0],
        json!({"type":"published","channel":"news","delivered":2,"requestId":5})
    );
}

#[test]
fn publish_to_a_resource_name_reaches_its_subscribers_only_with_the_opt_in() {
    let mut cfg = H::default_cfg();
    cfg["resources"]["messages"] = json!({"publish": true});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "");
    h.ask(
        2,
        json!({"type":"subscribe","resource":"messages","filter":{"x":1}}),
    );
    let f = h.ask(1, json!({"type":"publish","channel":"messages"}));
    assert_eq!(f.last().unwrap()["delivered"], 1);
    let f = h.ask(1, json!({"type":"publish","channel":"lobby"}));
    assert_eq!(f[0]["delivered"], 0);
    // Without the opt-in (the default), the resource's subscribers get nothing.
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    h.ask(2, json!({"type":"subscribe","resource":"messages"}));
    let f = h.ask(1, json!({"type":"publish","channel":"messages"}));
    assert_eq!(
        f,
        vec![json!({"type":"published","channel":"messages","delivered":0})]
    );
}

/// With the opt-in, publishing to a resource's subscribers needs the resource's roles:
/// an anonymous client must not reach the subscribers of a resource it cannot use.
#[test]
fn publish_to_an_opted_in_resource_needs_its_roles() {
    let mut cfg = H::default_cfg();
    cfg["resources"]["users"]["publish"] = json!(true);
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "token=key_admin");
    h.open(3, "token=key_user");
    h.ask(2, json!({"type":"subscribe","resource":"users"}));
    let f = h.ask(
        1,
        json!({"type":"publish","channel":"users","message":{"type":"event"}}),
    );
    assert_eq!(
        (f.len(), &f[0]["code"]),
        (1, &json!("UNAUTHORIZED")),
        "{f:?}"
    );
    let f = h.ask(3, json!({"type":"publish","channel":"users","message":1}));
    assert_eq!(f.last().unwrap()["delivered"], 1, "{f:?}");
}

#[test]
fn publish_roles() {
    let mut cfg = H::default_cfg();
    cfg["channels"] = json!({"publishRoles":["admin"]});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "token=key_user");
    h.open(3, "token=key_admin");
    assert_eq!(
        h.ask(1, json!({"type":"publish","channel":"c"}))[0]["code"],
        "UNAUTHORIZED"
    );
    assert_eq!(
        h.ask(2, json!({"type":"publish","channel":"c"}))[0]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        h.ask(3, json!({"type":"publish","channel":"c"}))[0]["type"],
        "published"
    );
}

#[test]
fn rooms_join_presence_message_members_leave() {
    let mut h = H::std();
    h.open(1, "token=key_user");
    h.open(2, "");
    h.open(3, "");
    let f = h.ask(1, json!({"type":"join","room":"duo","requestId":"j"}));
    assert_eq!(
        f[0],
        json!({"type":"joined","room":"duo","members":1,"requestId":"j"})
    );
    let acts = h.send(2, json!({"type":"join","channel":"duo"}));
    assert_eq!(frames(&acts, 2)[0]["members"], 2);
    assert_eq!(
        frames(&acts, 1)[0],
        json!({"type":"room:joined","room":"duo","member":{"clientId":"c2","user":null}})
    );
    assert_eq!(
        h.ask(3, json!({"type":"join","room":"duo"}))[0]["code"],
        "ROOM_FULL"
    );
    assert_eq!(
        h.ask(3, json!({"type":"room:message","room":"duo","data":1}))[0]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        h.ask(3, json!({"type":"room:members","room":"duo"}))[0]["code"],
        "FORBIDDEN"
    );
    let acts = h.send(1, json!({"type":"room:message","room":"duo","event":"typing","data":{"x":1},"ack":true,"requestId":2}));
    assert_eq!(frames(&acts, 2)[0]["type"], "room:message");
    assert_eq!(frames(&acts, 2)[0]["event"], "typing");
    assert_eq!(
        frames(&acts, 1)[0],
        json!({"type":"sent","delivered":1,"requestId":2})
    );
    let f = h.ask(2, json!({"type":"room:members","room":"duo"}));
    assert_eq!(f[0]["members"][0]["clientId"], "c1");
    assert_eq!(f[0]["members"][0]["user"]["id"], "u1");
    let acts = h.send(1, json!({"type":"leave","room":"duo"}));
    assert_eq!(frames(&acts, 1)[0]["type"], "left");
    assert_eq!(
        frames(&acts, 2)[0],
        json!({"type":"room:left","room":"duo","clientId":"c1"})
    );
    assert_eq!(
        h.ask(1, json!({"type":"leave","room":"duo"}))[0]["code"],
        "NOT_FOUND"
    );
    // Disconnecting announces the leave too.
    h.ask(3, json!({"type":"join","room":"duo"}));
    let acts = h.input(Input::Closed {
        conn: ConnId(2),
        code: Some(1000),
    });
    assert_eq!(frames(&acts, 3)[0]["type"], "room:left");
    let (rooms, _) = h.cmd(Command::Rooms);
    assert_eq!(
        rooms.unwrap(),
        json!([{"room":"duo","members":1,"maxConnections":2}])
    );
}

#[test]
fn room_limits() {
    let mut cfg = H::default_cfg();
    cfg["limits"] = json!({"maxRoomsPerConnection": 1});
    cfg["rooms"] = json!({"maxRooms": 2});
    let mut h = H::new(cfg);
    h.open(1, "");
    h.open(2, "");
    h.open(3, "");
    h.ask(1, json!({"type":"join","room":"a"}));
    assert_eq!(
        h.ask(1, json!({"type":"join","room":"b"}))[0]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        h.ask(1, json!({"type":"join","room":"a"}))[0]["type"],
        "joined"
    );
    h.ask(2, json!({"type":"join","room":"b"}));
    assert_eq!(
        h.ask(3, json!({"type":"join","room":"c"}))[0]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        h.ask(3, json!({"type":"join","room":""}))[0]["code"],
        "INVALID_MESSAGE"
    );
}

#[test]
fn direct_messages() {
    let mut h = H::std();
    h.open(1, "");
    h.open(2, "");
    let acts = h.send(
        1,
        json!({"type":"direct","to":"c2","data":"hi","ack":true,"requestId":1}),
    );
    assert_eq!(
        frames(&acts, 2)[0],
        json!({"type":"direct","from":"c1","data":"hi","timestamp":"2023-11-14T22:13:20.000Z"})
    );
    assert_eq!(frames(&acts, 1)[0]["delivered"], 1);
    assert_eq!(
        h.ask(1, json!({"type":"direct","to":"ghost"}))[0]["code"],
        "NOT_FOUND"
    );
}
