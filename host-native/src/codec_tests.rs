use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: `b0` is FIN/RSV/opcode; masked with MASK when `masked`.
fn client(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.insert(0, b0);
    if masked {
        out.extend_from_slice(&MASK);
        let mut p = payload.to_vec();
        unmask(&mut p, MASK);
        out.extend_from_slice(&p);
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn decode(max: usize, bytes: &[u8]) -> (Vec<Event>, Result<(), DecodeError>) {
    let mut d = Decoder::new(max);
    let mut events = Vec::new();
    let r = d.feed(bytes, &mut events);
    (events, r)
}

#[test]
fn header_encoding_uses_the_shortest_length_form_for_every_size() {
    for (len, header) in [
        (0usize, vec![0x81, 0]),
        (125, vec![0x81, 125]),
        (126, vec![0x81, 126, 0, 126]),
        (65535, vec![0x81, 126, 0xff, 0xff]),
        (65536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let payload = vec![b'a'; len];
        let frame = encode(OP_TEXT, &payload);
        assert_eq!(&frame[..header.len()], &header[..], "len {len}");
        assert_eq!(frame.len(), header.len() + len, "len {len}");
        assert_eq!(&frame[header.len()..], &payload[..]);
    }
}

#[test]
fn encoded_frames_round_trip_through_tungstenite_headers() {
    use std::io::Cursor;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
        let frame = encode(OP_BINARY, &vec![7u8; len]);
        let (header, parsed_len) = FrameHeader::parse(&mut Cursor::new(&frame[..]))
            .unwrap()
            .unwrap();
        assert!(header.is_final && header.mask.is_none());
        assert_eq!(parsed_len, len as u64);
    }
}

#[test]
fn engine_frames_are_encoded_as_text_or_binary() {
    let t = encode_frame(&engine::Frame::Text("hi".into()));
    assert_eq!(&t[..], &[0x81, 2, b'h', b'i']);
    let b = encode_frame(&engine::Frame::Binary(vec![1u8, 2].into()));
    assert_eq!(&b[..], &[0x82, 2, 1, 2]);
    assert_eq!(&ping()[..], &[0x89, 0]);
}

#[test]
fn close_frames_carry_the_code_and_a_reason_cut_to_fit_a_control_frame() {
    let c = encode_close(1009, "message too big");
    assert_eq!(c[0], 0x88);
    assert_eq!(&c[2..4], &1009u16.to_be_bytes());
    assert_eq!(&c[4..], b"message too big");
    let long = "é".repeat(100);
    let c = encode_close(1000, &long);
    assert!(c[1] <= 125);
    assert!(std::str::from_utf8(&c[4..]).is_ok());
}

#[test]
fn masked_client_frames_are_unmasked_for_every_length_form() {
    for len in [0usize, 3, 125, 126, 1000, 70_000] {
        let text: String = "abcdefg".chars().cycle().take(len).collect();
        let (events, r) = decode(1 << 20, &client(0x81, text.as_bytes(), true));
        assert_eq!(r, Ok(()));
        assert_eq!(events, vec![Event::Text(text)], "len {len}");
    }
}

#[test]
fn frames_split_across_reads_are_reassembled_and_idle_decoders_hold_no_buffer() {
    let mut bytes = client(0x82, &[9u8; 300], true);
    bytes.extend(client(0x81, b"next", true));
    let mut d = Decoder::new(1024);
    let mut events = Vec::new();
    for piece in bytes.chunks(7) {
        d.feed(piece, &mut events).unwrap();
    }
    assert_eq!(
        events,
        vec![Event::Binary(vec![9u8; 300]), Event::Text("next".into())]
    );
    assert!(d.is_idle());
    assert_eq!(d.pending.capacity(), 0);
}

#[test]
fn fragmented_messages_are_joined_with_control_frames_in_between() {
    let mut bytes = client(0x01, b"hel", true);
    bytes.extend(client(0x89, b"p", true));
    bytes.extend(client(0x00, b"lo ", true));
    bytes.extend(client(0x80, b"world", true));
    let (events, r) = decode(1024, &bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        events,
        vec![
            Event::Ping(b"p".to_vec()),
            Event::Text("hello world".into())
        ]
    );
}

#[test]
fn control_frames_become_ping_pong_and_close_events() {
    let mut bytes = client(0x89, b"abc", true);
    bytes.extend(client(0x8a, b"", true));
    bytes.extend(client(0x88, b"", true));
    let mut close = 4000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    bytes.extend(client(0x88, &close, true));
    let (events, r) = decode(1024, &bytes);
    assert_eq!(r, Ok(()));
    assert_eq!(
        events,
        vec![
            Event::Ping(b"abc".to_vec()),
            Event::Pong,
            Event::Close(None),
            Event::Close(Some((4000, "bye".into()))),
        ]
    );
}

#[test]
fn invalid_close_frames_are_protocol_errors_or_invalid_payloads() {
    let one = decode(1024, &client(0x88, &[3], true)).1;
    assert_eq!(one.unwrap_err().close_code(), 1002);
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
        let r = decode(1024, &client(0x88, &code.to_be_bytes(), true)).1;
        assert_eq!(r.unwrap_err().close_code(), 1002, "code {code}");
    }
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.push(0xff);
    let r = decode(1024, &client(0x88, &bad_reason, true)).1;
    assert_eq!(r, Err(DecodeError::InvalidUtf8));
    for code in [1000u16, 1001, 1003, 1007, 1011, 1013, 3000, 4999] {
        assert!(close_code_allowed(code), "{code}");
    }
}

#[test]
fn framing_violations_are_protocol_errors_with_a_reason() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("rsv1", client(0xc1, b"x", true)),
        ("unmasked", client(0x81, b"x", false)),
        ("data opcode 3", client(0x83, b"x", true)),
        ("control opcode 0xb", client(0x8b, b"", true)),
        ("long control", client(0x89, &[0u8; 126], true)),
        ("fragmented ping", client(0x09, b"x", true)),
        ("lone continuation", client(0x80, b"x", true)),
        ("text inside a fragmented message", {
            let mut b = client(0x01, b"a", true);
            b.extend(client(0x81, b"b", true));
            b
        }),
    ];
    for (what, bytes) in cases {
        let (events, r) = decode(1024, &bytes);
        let e = r.unwrap_err();
        assert_eq!(e.close_code(), 1002, "{what}");
        assert!(!e.reason().is_empty(), "{what}");
        assert!(events.is_empty(), "{what}");
    }
}

#[test]
fn invalid_utf8_is_refused_whole_and_across_fragments() {
    let (_, r) = decode(1024, &client(0x81, b"\xff\xfe", true));
    assert_eq!(r.unwrap_err().close_code(), 1007);
    let mut bytes = client(0x01, b"\xe2\x82", true);
    bytes.extend(client(0x80, b"\x28", true));
    assert_eq!(decode(1024, &bytes).1.unwrap_err().close_code(), 1007);
    // A character split across fragments is fine.
    let mut bytes = client(0x01, b"\xe2\x82", true);
    bytes.extend(client(0x80, b"\xac", true));
    assert_eq!(decode(1024, &bytes).0, vec![Event::Text("€".into())]);
}

#[test]
fn oversize_frames_are_refused_from_the_header_with_1009() {
    // Only the header has arrived: the payload is never waited for.
    let bytes = client(0x82, &[0u8; 2000], true);
    let (_, r) = decode(1000, &bytes[..8]);
    assert_eq!(r, Err(DecodeError::TooBig(2000)));
    assert_eq!(r.unwrap_err().close_code(), 1009);
    // Exactly at the limit is fine.
    assert_eq!(decode(2000, &bytes).1, Ok(()));
    // A 64-bit length is refused without overflow.
    let mut huge = vec![0x82, 0xff];
    huge.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    assert!(matches!(decode(1000, &huge).1, Err(DecodeError::TooBig(_))));
    let mut top = vec![0x82, 0xff];
    top.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(decode(1000, &top).1.unwrap_err().close_code(), 1002);
}

#[test]
fn fragmented_messages_over_the_limit_are_refused_with_1009() {
    let mut bytes = client(0x02, &[0u8; 600], true);
    bytes.extend(client(0x80, &[0u8; 600], true));
    let (events, r) = decode(1000, &bytes);
    assert!(events.is_empty());
    assert_eq!(r, Err(DecodeError::TooBig(1200)));
}

#[test]
fn events_before_an_error_are_kept() {
    let mut bytes = client(0x81, b"ok", true);
    bytes.extend(client(0x81, b"x", false));
    let (events, r) = decode(1024, &bytes);
    assert_eq!(events, vec![Event::Text("ok".into())]);
    assert_eq!(r.unwrap_err().close_code(), 1002);
}
