//! Rooms in cluster mode: membership, member lists, capacity, `room:message` and the
//! room-control commands reach the members of every node.

use super::*;

fn join(n: &mut Node, conn: u64, room: &str) -> Value {
    n.ask(conn, json!({"type":"join","room":room}))
}

fn command(n: &mut Node, command: Command) -> Result<Value, CommandError> {
    command_result(&n.input(Input::Command { tag: 1, command }))
}

fn create_room(n: &mut Node, room: &str, capacity: usize) -> Result<Value, CommandError> {
    command(
        n,
        Command::CreateRoom {
            room: room.into(),
            description: None,
            capacity: Some(capacity),
            metadata: None,
            tenant: None,
        },
    )
}

/// `a` holds c1 (conn 1), `b` holds c2 (conn 2); both joined room `r`.
fn room_on_both() -> (Node, Node) {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    join(&mut a, 1, "r");
    carry(&mut a, &mut b);
    let joined = join(&mut b, 2, "r");
    assert_eq!(joined["members"], 2, "{joined}");
    carry(&mut b, &mut a);
    (a, b)
}

#[test]
fn a_member_joining_on_another_node_is_announced_with_room_joined() {
    let (mut a, mut b) = pair();
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    join(&mut a, 1, "r");
    carry(&mut a, &mut b);
    join(&mut b, 2, "r");
    let got = carry(&mut b, &mut a);
    let f = &frames(&got, 1)[0];
    assert_eq!(f["type"], "room:joined");
    assert_eq!(f["room"], "r");
    assert_eq!(f["member"]["clientId"], "c2");
}

#[test]
fn a_room_message_reaches_the_members_of_the_other_node() {
    let (mut a, mut b) = room_on_both();
    let sent = a.ask(
        1,
        json!({"type":"room:message","room":"r","data":{"n":1},"event":"e","ack":true}),
    );
    assert_eq!(
        sent["delivered"], 0,
        "counts this node's recipients: {sent}"
    );
    let got = carry(&mut a, &mut b);
    let m = &frames(&got, 2)[0];
    assert_eq!(m["type"], "room:message");
    assert_eq!(
        (m["from"].as_str(), m["event"].as_str()),
        (Some("c1"), Some("e"))
    );
    assert_eq!(m["data"], json!({"n":1}));
}

#[test]
fn a_room_message_is_not_sent_to_the_broker_when_no_other_node_has_members() {
    let (mut a, _b) = pair();
    a.open(1, "c1", "key_u1");
    a.open(3, "c3", "key_u1");
    join(&mut a, 1, "r");
    join(&mut a, 3, "r");
    a.outbox.clear();
    let acts = a.send(1, json!({"type":"room:message","room":"r","data":1}));
    assert_eq!(frames(&acts, 3)[0]["type"], "room:message");
    assert!(a.outbox.is_empty(), "{:?}", a.outbox);
}

#[test]
fn room_members_lists_the_members_of_every_node() {
    let (mut a, _b) = room_on_both();
    let m = a.ask(1, json!({"type":"room:members","room":"r"}));
    let ids: Vec<&str> = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c1", "c2"]);
    let info = command(
        &mut a,
        Command::RoomInfo {
            room: "r".into(),
            tenant: None,
        },
    )
    .unwrap();
    assert_eq!(info["count"], 2);
    let rooms = command(&mut a, Command::Rooms).unwrap();
    assert_eq!(rooms[0]["members"], 2, "{rooms}");
}

#[test]
fn room_capacity_counts_the_members_of_every_node() {
    let (mut a, mut b) = pair();
    create_room(&mut a, "r", 2).unwrap();
    carry(&mut a, &mut b);
    a.open(1, "c1", "key_u1");
    b.open(2, "c2", "key_u2");
    b.open(4, "c4", "key_u2");
    join(&mut a, 1, "r");
    carry(&mut a, &mut b);
    assert_eq!(join(&mut b, 2, "r")["type"], "joined");
    carry(&mut b, &mut a);
    let full = join(&mut b, 4, "r");
    assert_eq!(full["code"], "ROOM_FULL", "{full}");
    a.open(3, "c3", "key_u1");
    let full = join(&mut a, 3, "r");
    assert_eq!(full["code"], "ROOM_FULL", "{full}");
    // A leave on the other node frees a place.
    b.ask(2, json!({"type":"leave","room":"r"}));
    let got = carry(&mut b, &mut a);
    assert_eq!(
        frames(&got, 1)[0],
        json!({"type":"room:left","room":"r","clientId":"c2"})
    );
    assert_eq!(join(&mut a, 3, "r")["type"], "joined");
}

#[test]
fn a_node_gone_silent_loses_its_room_members_with_room_left() {
    let (_a, mut b) = room_on_both();
    let acts = b.event(ClusterEvent::NodeGone {
        node: "node-a".into(),
    });
    assert_eq!(
        frames(&acts, 2)[0],
        json!({"type":"room:left","room":"r","clientId":"c1"})
    );
    let m = b.ask(2, json!({"type":"room:members","room":"r"}));
    assert_eq!(m["members"].as_array().unwrap().len(), 1);
}

#[test]
fn a_disconnect_on_one_node_is_a_room_left_on_the_other() {
    let (mut a, mut b) = room_on_both();
    a.input(Input::Closed {
        conn: ConnId(1),
        code: Some(1000),
    });
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0]["type"], "room:left");
}

#[test]
fn a_snapshot_carries_room_members_to_a_node_that_reconnects() {
    let (mut a, mut b) = room_on_both();
    b.event(ClusterEvent::NodeGone {
        node: "node-a".into(),
    });
    a.outbox.clear();
    b.event(ClusterEvent::Disconnected);
    b.event(ClusterEvent::Connected);
    carry(&mut b, &mut a);
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0]["type"], "room:joined");
    let m = b.ask(2, json!({"type":"room:members","room":"r"}));
    assert_eq!(m["members"].as_array().unwrap().len(), 2);
}

#[test]
fn while_the_broker_is_down_a_room_message_with_remote_members_is_unavailable() {
    let (mut a, _b) = room_on_both();
    a.event(ClusterEvent::Disconnected);
    let e = a.ask(1, json!({"type":"room:message","room":"r","data":1}));
    assert_eq!(e["code"], "UNAVAILABLE");
}

#[test]
fn send_to_room_reaches_the_members_of_every_node() {
    let (mut a, mut b) = room_on_both();
    let r = command(
        &mut a,
        Command::SendToRoom {
            room: "r".into(),
            message: json!({"hi":1}),
            except_client_id: Some("c1".into()),
            tenant: None,
        },
    );
    assert_eq!(r.unwrap()["delivered"], 0);
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0], json!({"hi":1}));
    let r = command(
        &mut a,
        Command::SendToRoom {
            room: "nowhere".into(),
            message: json!(1),
            except_client_id: None,
            tenant: None,
        },
    );
    assert_eq!(r.unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn join_room_and_leave_room_of_a_client_of_another_node_run_there() {
    let (mut a, mut b) = pair();
    b.open(2, "c2", "key_u2");
    carry(&mut b, &mut a);
    let r = command(
        &mut a,
        Command::JoinRoom {
            client_id: "c2".into(),
            room: "r".into(),
        },
    );
    assert_eq!(r.unwrap(), json!({"clientId":"c2","room":"r"}));
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0]["type"], "joined");
    carry(&mut b, &mut a);
    let r = command(
        &mut a,
        Command::LeaveRoom {
            client_id: "c2".into(),
            room: "r".into(),
        },
    );
    assert!(r.is_ok());
    let got = carry(&mut a, &mut b);
    assert_eq!(frames(&got, 2)[0]["type"], "left");
}

#[test]
fn delete_room_removes_the_members_of_every_node_without_room_left() {
    let (mut a, mut b) = room_on_both();
    let r = command(
        &mut a,
        Command::DeleteRoom {
            room: "r".into(),
            tenant: None,
        },
    );
    assert_eq!(r.unwrap()["removed"], 1);
    let got = carry(&mut a, &mut b);
    let to_2 = frames(&got, 2);
    assert_eq!(to_2.len(), 1, "{to_2:?}");
    assert_eq!(to_2[0]["type"], "left");
    let back = carry(&mut b, &mut a);
    assert!(frames(&back, 1).is_empty());
    let info = command(
        &mut a,
        Command::RoomInfo {
            room: "r".into(),
            tenant: None,
        },
    );
    assert_eq!(info.unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn room_messages_round_trip_through_json() {
    let (mut a, _b) = room_on_both();
    a.outbox.clear();
    a.send(1, json!({"type":"room:message","room":"r","data":[1]}));
    a.ask(1, json!({"type":"leave","room":"r"}));
    a.event(ClusterEvent::Disconnected);
    a.event(ClusterEvent::Connected);
    assert!(a.outbox.len() >= 3);
    for m in &a.outbox {
        let text = serde_json::to_string(m).unwrap();
        let back: ClusterMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, m, "{text}");
    }
}
