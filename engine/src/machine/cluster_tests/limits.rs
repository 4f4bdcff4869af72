//! Connection limits in cluster mode: `limits.maxConnections` and
//! `limits.maxConnectionsPerIp` count the connections of every node, as last announced.

use super::*;

fn node_with(limits: Value, name: &str, seed: u64) -> Node {
    let mut config = cfg();
    config["limits"] = limits;
    let mut e = Engine::with_seed(Config::from_value(config).unwrap(), seed).unwrap();
    e.enable_cluster(name);
    Node {
        e,
        outbox: Vec::new(),
    }
}

fn pair_with(limits: Value) -> (Node, Node) {
    let (mut a, mut b) = (
        node_with(limits.clone(), "node-a", 1),
        node_with(limits, "node-b", 2),
    );
    for n in [&mut a, &mut b] {
        n.event(ClusterEvent::Connected);
        n.outbox.clear();
    }
    (a, b)
}

/// Open `conn` from `peer`; returns the first action (accept or reject).
fn open_from(n: &mut Node, conn: u64, client_id: &str, peer: &str) -> Action {
    let request = UpgradeRequest {
        path: "/".into(),
        query: "token=key_u1".into(),
        peer: peer.into(),
        client_id: client_id.into(),
        ..Default::default()
    };
    n.input(Input::Open {
        conn: ConnId(conn),
        request,
    })
    .remove(0)
}

fn rejected(action: &Action) -> (u16, String) {
    let Action::Reject { status, body, .. } = action else {
        panic!("{action:?}")
    };
    (*status, body.to_string())
}

#[test]
fn the_per_ip_connection_limit_counts_the_connections_of_every_node() {
    let (mut a, mut b) = pair_with(json!({"maxConnectionsPerIp": 1}));
    assert!(matches!(
        open_from(&mut a, 1, "c1", "10.0.0.7"),
        Action::Accept { .. }
    ));
    carry(&mut a, &mut b);
    let (status, body) = rejected(&open_from(&mut b, 2, "c2", "10.0.0.7"));
    assert_eq!(status, 429);
    assert!(body.contains("too_many_connections_from_ip"), "{body}");
    assert!(matches!(
        open_from(&mut b, 3, "c3", "10.0.0.8"),
        Action::Accept { .. }
    ));
    // Once the address leaves node a, node b admits it.
    a.input(Input::Closed {
        conn: ConnId(1),
        code: None,
    });
    carry(&mut a, &mut b);
    assert!(matches!(
        open_from(&mut b, 4, "c4", "10.0.0.7"),
        Action::Accept { .. }
    ));
}

#[test]
fn the_connection_limit_counts_the_connections_of_every_node() {
    let (mut a, mut b) = pair_with(json!({"maxConnections": 2}));
    open_from(&mut a, 1, "c1", "10.0.0.1");
    open_from(&mut a, 2, "c2", "10.0.0.2");
    carry(&mut a, &mut b);
    let (status, body) = rejected(&open_from(&mut b, 3, "c3", "10.0.0.3"));
    assert_eq!(status, 503);
    assert!(body.contains("too_many_connections"), "{body}");
}

#[test]
fn a_node_keeps_its_own_lower_limit_under_a_larger_cluster_limit() {
    let (mut a, mut b) = pair_with(json!({"maxConnections": 1}));
    a.e.set_cluster_max_connections(3);
    b.e.set_cluster_max_connections(3);
    open_from(&mut a, 1, "c1", "10.0.0.1");
    carry(&mut a, &mut b);
    assert!(matches!(
        open_from(&mut b, 2, "c2", "10.0.0.2"),
        Action::Accept { .. }
    ));
    let (status, _) = rejected(&open_from(&mut a, 3, "c3", "10.0.0.3"));
    assert_eq!(status, 503, "node a holds its own limit of 1");
}
