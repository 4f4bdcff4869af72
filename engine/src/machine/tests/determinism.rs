//! Determinism: the same inputs give byte-identical outputs.

use super::*;

#[test]
fn same_inputs_give_byte_identical_outputs() {
    fn run() -> Vec<String> {
        let mut h = H::std();
        let mut out = vec![];
        let mut record = |acts: Vec<Action>| {
            for a in acts {
                out.push(serde_json::to_string(&a).unwrap());
            }
        };
        record(h.open_req(1, req("/", "", &[], "")));
        record(h.open_req(2, req("/", "token=key_admin", &[], "")));
        record(h.send(1, json!({"type":"subscribe","resource":"messages"})));
        record(h.send(
            2,
            json!({"type":"insert","resource":"messages","data":{"a":1}}),
        ));
        record(h.send(1, json!({"type":"join","room":"x"})));
        record(h.advance_to(T0 + 30_000));
        record(h.advance_to(T0 + 40_000));
        out
    }
    assert_eq!(run(), run());
}
