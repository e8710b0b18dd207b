//! Decoder and encoder behaviour: snapshots of decoded ops and encoded frames,
//! every split point, round trips and arbitrary input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rill_protocol::encode::{encode_client, encode_server};
use rill_protocol::{
    ClientDecoder, ClientOp, DecoderLimits, ProtocolError, Publish, ServerDecoder, ServerOp,
};

fn decode_all(input: &[u8]) -> (Vec<ClientOp>, Option<ProtocolError>, usize) {
    let mut dec = ClientDecoder::default();
    let mut buf = BytesMut::from(input);
    let mut ops = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(op)) => ops.push(op),
            Ok(None) => return (ops, None, buf.len()),
            Err(e) => return (ops, Some(e), buf.len()),
        }
    }
}

/// Feeds `input` one chunk boundary at `split`, as a socket might deliver it.
fn decode_split(input: &[u8], split: usize) -> Vec<ClientOp> {
    let mut dec = ClientDecoder::default();
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for chunk in [&input[..split], &input[split..]] {
        buf.extend_from_slice(chunk);
        while let Some(op) = dec.decode(&mut buf).expect("valid input") {
            ops.push(op);
        }
    }
    assert!(buf.is_empty(), "left over bytes at split {split}");
    ops
}

const MIXED: &[u8] = b"CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\n\
SUB foo.* 1\r\nsub  bar\tq  2\r\nPUB foo.a 5\r\nhello\r\npub foo.b _INBOX.x 0\r\n\r\n\
HPUB foo.c 24 29\r\nNATS/1.0\r\nA: 1\r\nB: 2\r\n\r\nworld\r\nUNSUB 1 10\r\nPING\r\nPONG\r\n";

#[test]
fn decodes_every_client_op() {
    let (ops, err, left) = decode_all(MIXED);
    assert_eq!(err, None);
    assert_eq!(left, 0);
    insta::assert_debug_snapshot!(ops);
}

#[test]
fn every_split_point_decodes_the_same() {
    let (whole, _, _) = decode_all(MIXED);
    for split in 0..=MIXED.len() {
        assert_eq!(decode_split(MIXED, split), whole, "split at {split}");
    }
}

#[test]
fn partial_frames_need_more_bytes_and_consume_nothing() {
    let mut dec = ClientDecoder::default();
    let mut buf = BytesMut::from(&b"PUB foo 5\r\nhel"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(dec.bytes_needed(buf.len()), Some(4));
    buf.extend_from_slice(b"lo\r\n");
    assert!(matches!(dec.decode(&mut buf), Ok(Some(ClientOp::Pub(_)))));
}

#[test]
fn payload_is_a_slice_of_the_read_buffer() {
    let mut buf = BytesMut::from(&b"PUB foo 5\r\nhello\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let Ok(Some(ClientOp::Pub(publish))) = ClientDecoder::default().decode(&mut buf) else {
        panic!("expected PUB");
    };
    let payload = publish.payload();
    assert_eq!(payload.as_ptr() as usize, base + 11, "payload was copied");
    assert_eq!(
        publish.subject().as_ptr() as usize,
        base + 4,
        "subject was copied"
    );
    let shared = publish.frame().slice_ref(payload);
    assert_eq!(
        shared.as_ptr(),
        payload.as_ptr(),
        "sharing the payload copied it"
    );
}

#[test]
fn error_lines_match_nats_server() {
    let cases: &[(&str, &[u8])] = &[
        ("unknown op", b"FOO bar\r\n"),
        ("pub without args", b"PUB\r\n"),
        ("sub without args", b"SUB\r\n"),
        ("pub bad size", b"PUB foo abc\r\n"),
        ("pub negative size", b"PUB foo -1\r\n"),
        ("pub too many args", b"PUB foo a b 3\r\n"),
        ("hpub header larger than total", b"HPUB foo 12 3\r\n"),
        ("payload without CRLF", b"PUB foo 3\r\nabcXY\r\n"),
        ("max payload", b"PUB foo 2000000\r\n"),
        ("bad connect json", b"CONNECT {bad\r\n"),
        ("client -ERR", b"-ERR 'x'\r\n"),
    ];
    let mut out = String::new();
    for (name, input) in cases {
        let (_, err, _) = decode_all(input);
        let err = err.expect("an error");
        let line = err
            .err_text()
            .map_or_else(|| "(closed without -ERR)".into(), |t| format!("-ERR '{t}'"));
        out.push_str(&format!(
            "{name}: {line} close={}\n",
            err.closes_connection()
        ));
    }
    let long = [b"PUB ".as_slice(), &[b'a'; 5000], b" 1\r\n"].concat();
    let (_, err, _) = decode_all(&long);
    out.push_str(&format!(
        "long control line: {:?}\n",
        err.map(|e| e.err_text())
    ));
    let (_, err, _) = decode_all(&[b'x'; 5000]);
    out.push_str(&format!(
        "no line ending: {:?}\n",
        err.map(|e| e.err_text())
    ));
    insta::assert_snapshot!(out);
}

/// A PUB whose subject or reply is not UTF-8 is refused with 'Invalid Publish Subject'
/// once its whole frame is in (the connection stays: the error does not close it), and
/// the next op decodes as usual, whether the frame came in one read or in pieces.
#[test]
fn a_publish_subject_that_is_not_text_is_refused_and_decoding_goes_on() {
    let input: &[u8] = b"PUB a.\xff 2\r\nhi\r\nHPUB a _INBOX.\xc3 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB a.\xc3\xa9 2\r\nok\r\nPING\r\n";
    for split in 0..=input.len() {
        let mut dec = ClientDecoder::default();
        let mut buf = BytesMut::new();
        let (mut ops, mut errors) = (Vec::new(), Vec::new());
        for chunk in [&input[..split], &input[split..]] {
            buf.extend_from_slice(chunk);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(op)) => ops.push(op),
                    Ok(None) => break,
                    Err(e) => {
                        assert!(!e.closes_connection(), "{e}");
                        errors.push(e);
                    }
                }
            }
        }
        assert_eq!(
            errors,
            [const { ProtocolError::InvalidPublishSubject }; 2],
            "split {split}"
        );
        assert!(buf.is_empty(), "split {split}");
        match ops.as_slice() {
            [ClientOp::Pub(p), ClientOp::Ping] => {
                assert_eq!(p.subject(), "a.é");
                assert_eq!(p.payload(), b"ok");
            }
            other => panic!("split {split}: {other:?}"),
        }
    }
}

#[test]
fn ping_pong_prefix_and_case() {
    let (ops, err, _) = decode_all(b"PINGXYZ\r\nping\r\nPoNg\r\nINFO {}\r\n+OK\r\n");
    assert_eq!(err, None);
    assert_eq!(
        ops,
        vec![
            ClientOp::Ping,
            ClientOp::Ping,
            ClientOp::Pong,
            ClientOp::Info,
            ClientOp::Ok
        ]
    );
}

#[test]
fn limits_come_from_the_caller() {
    let limits = DecoderLimits {
        max_control_line: 16,
        max_payload: 4,
    };
    let mut dec = ClientDecoder::new(limits);
    assert_eq!(
        dec.decode(&mut BytesMut::from(&b"PUB foo 5\r\n"[..])),
        Err(ProtocolError::MaxPayload)
    );
    let mut dec = ClientDecoder::new(limits);
    let line = b"SUB a.very.long.subject 1\r\n";
    assert_eq!(
        dec.decode(&mut BytesMut::from(&line[..])),
        Err(ProtocolError::MaxControlLine)
    );
}

#[test]
fn encodes_server_frames() {
    let ops = [
        ServerOp::Info(Bytes::from_static(b"{\"server_id\":\"X\"}")),
        ServerOp::Msg {
            subject: "foo".into(),
            sid: "1".into(),
            reply: None,
            payload: "hi".into(),
        },
        ServerOp::Msg {
            subject: "foo".into(),
            sid: "1".into(),
            reply: Some("_INBOX.a".into()),
            payload: "".into(),
        },
        ServerOp::HMsg {
            subject: "foo".into(),
            sid: "9".into(),
            reply: None,
            headers: "NATS/1.0 503\r\n\r\n".into(),
            payload: "".into(),
        },
        ServerOp::Ok,
        ServerOp::Err("Invalid Subject".into()),
        ServerOp::Ping,
        ServerOp::Pong,
    ];
    let mut buf = BytesMut::new();
    for op in &ops {
        encode_server(op, &mut buf);
    }
    insta::assert_snapshot!(String::from_utf8_lossy(&buf).replace("\r\n", "\\r\\n\n"));
    let mut dec = ServerDecoder::default();
    let mut back = Vec::new();
    while let Some(op) = dec.decode(&mut buf).expect("decodes") {
        back.push(op);
    }
    assert_eq!(back, ops);
}

fn token() -> impl Strategy<Value = String> + Clone {
    "[a-zA-Z0-9_$-]{1,8}"
}

fn subject() -> impl Strategy<Value = Bytes> + Clone {
    prop::collection::vec(token(), 1..5).prop_map(|t| Bytes::from(t.join(".")))
}

/// A generated subject (ASCII tokens) as text.
fn text(subject: &Bytes) -> String {
    String::from_utf8(subject.to_vec()).expect("generated subjects are ASCII")
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    let payload = prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    let reply = prop::option::of(subject());
    prop_oneof![
        (subject(), reply.clone(), payload.clone()).prop_map(|(subject, reply, payload)| {
            ClientOp::Pub(Publish::new(
                &text(&subject),
                reply.as_ref().map(text).as_deref(),
                None,
                &payload,
            ))
        }),
        (
            subject(),
            reply,
            prop::collection::vec(("[A-Za-z-]{1,10}", "[a-z0-9 ]{0,10}"), 0..4),
            payload
        )
            .prop_map(|(subject, reply, hdrs, payload)| {
                let mut h = rill_protocol::HeaderMap::new();
                for (k, v) in hdrs {
                    h.append(k, v.trim().to_string());
                }
                let headers = h.to_bytes();
                ClientOp::Pub(Publish::new(
                    &text(&subject),
                    reply.as_ref().map(text).as_deref(),
                    Some(&headers),
                    &payload,
                ))
            }),
        (subject(), prop::option::of(token()), "[0-9]{1,5}").prop_map(|(subject, queue, sid)| {
            ClientOp::Sub {
                subject,
                queue: queue.map(Bytes::from),
                sid: Bytes::from(sid),
            }
        }),
        ("[0-9]{1,5}", prop::option::of(0u64..1000)).prop_map(|(sid, max)| ClientOp::Unsub {
            sid: Bytes::from(sid),
            max
        }),
        Just(ClientOp::Ping),
        Just(ClientOp::Pong),
    ]
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(ops in prop::collection::vec(client_op(), 1..20), split in any::<prop::sample::Index>()) {
        let mut encoded = BytesMut::new();
        for op in &ops {
            encode_client(op, &mut encoded);
        }
        let split = split.index(encoded.len() + 1);
        prop_assert_eq!(decode_split(&encoded, split), ops);
    }

    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut dec = ClientDecoder::new(DecoderLimits { max_control_line: 128, max_payload: 256 });
        let mut buf = BytesMut::new();
        'outer: for chunk in chunks {
            buf.extend_from_slice(&chunk);
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    // The server goes on after a non-closing error: so does this.
                    Err(e) if !e.closes_connection() => {}
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn arbitrary_op_lines_never_panic(line in "[A-Za-z+ -]{0,8}[ \t]{0,3}[ -~\t]{0,40}\r\n[ -~]{0,20}") {
        let (_, _, _) = decode_all(line.as_bytes());
        let mut dec = ServerDecoder::default();
        let mut buf = BytesMut::from(line.as_bytes());
        while let Ok(Some(_)) = dec.decode(&mut buf) {}
    }
}
