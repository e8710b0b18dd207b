//! Encoders for both directions, into a caller-owned `BytesMut`.
//!
//! The server's hot path uses [`msg_head`] to write only the `MSG`/`HMSG`
//! control line, so a payload shared by many subscribers can follow it without
//! being copied; [`encode_server`] writes whole frames.

use bytes::{BufMut, BytesMut};

use crate::connect::Connect;
use crate::info::Info;
use crate::op::{ClientOp, ServerOp};

fn put_usize(buf: &mut BytesMut, n: usize) {
    buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes the control line of a `MSG` (no headers) or `HMSG` (with `hdr_len`) frame.
///
/// `total_len` is the payload length, headers included. The caller appends the
/// header block, the payload and `\r\n`.
pub fn msg_head(
    buf: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    total_len: usize,
) {
    buf.reserve(subject.len() + sid.len() + reply.map_or(0, <[u8]>::len) + 32);
    buf.put_slice(if hdr_len.is_some() { b"HMSG " } else { b"MSG " });
    buf.put_slice(subject);
    buf.put_u8(b' ');
    buf.put_slice(sid);
    buf.put_u8(b' ');
    if let Some(reply) = reply {
        buf.put_slice(reply);
        buf.put_u8(b' ');
    }
    if let Some(h) = hdr_len {
        put_usize(buf, h);
        buf.put_u8(b' ');
    }
    put_usize(buf, total_len);
    buf.put_slice(b"\r\n");
}

/// Writes `INFO {json} \r\n` (nats-server puts a space before the line ending).
pub fn info(buf: &mut BytesMut, info: &Info) {
    info_json(buf, info);
}

/// Writes `INFO {json} \r\n` for any INFO body (client, route, leaf).
pub fn info_json<T: serde::Serialize>(buf: &mut BytesMut, info: &T) {
    buf.put_slice(b"INFO ");
    // Serialising a struct of strings, numbers and bools cannot fail.
    buf.put_slice(&serde_json::to_vec(info).unwrap_or_default());
    buf.put_slice(b" \r\n");
}

/// Writes `-ERR '<text>'\r\n`.
pub fn err(buf: &mut BytesMut, text: &str) {
    buf.reserve(text.len() + 9);
    buf.put_slice(b"-ERR '");
    buf.put_slice(text.as_bytes());
    buf.put_slice(b"'\r\n");
}

/// Encodes a whole server op.
pub fn encode_server(op: &ServerOp, buf: &mut BytesMut) {
    match op {
        ServerOp::Info(json) => {
            buf.put_slice(b"INFO ");
            buf.put_slice(json);
            buf.put_slice(b" \r\n");
        }
        ServerOp::Msg {
            subject,
            sid,
            reply,
            payload,
        } => {
            msg_head(buf, subject, sid, reply.as_deref(), None, payload.len());
            buf.put_slice(payload);
            buf.put_slice(b"\r\n");
        }
        ServerOp::HMsg {
            subject,
            sid,
            reply,
            headers,
            payload,
        } => {
            let total = headers.len() + payload.len();
            msg_head(
                buf,
                subject,
                sid,
                reply.as_deref(),
                Some(headers.len()),
                total,
            );
            buf.put_slice(headers);
            buf.put_slice(payload);
            buf.put_slice(b"\r\n");
        }
        ServerOp::Ok => buf.put_slice(b"+OK\r\n"),
        ServerOp::Err(text) => err(buf, text),
        ServerOp::Ping => buf.put_slice(b"PING\r\n"),
        ServerOp::Pong => buf.put_slice(b"PONG\r\n"),
    }
}

/// Writes `CONNECT {json}\r\n`.
pub fn connect(buf: &mut BytesMut, connect: &Connect) {
    connect_json(buf, connect);
}

/// Writes `CONNECT {json}\r\n` for any CONNECT body (client, route, leaf).
pub fn connect_json<T: serde::Serialize>(buf: &mut BytesMut, connect: &T) {
    buf.put_slice(b"CONNECT ");
    buf.put_slice(&serde_json::to_vec(connect).unwrap_or_default());
    buf.put_slice(b"\r\n");
}

/// Writes `<op><subject> [reply] ` (the shared start of PUB and HPUB).
fn put_op_subject_reply(buf: &mut BytesMut, op: &[u8], subject: &[u8], reply: Option<&[u8]>) {
    buf.put_slice(op);
    buf.put_slice(subject);
    buf.put_u8(b' ');
    if let Some(reply) = reply {
        buf.put_slice(reply);
        buf.put_u8(b' ');
    }
}

/// Encodes a whole client op.
pub fn encode_client(op: &ClientOp, buf: &mut BytesMut) {
    match op {
        ClientOp::Connect(c) => connect(buf, c),
        ClientOp::Pub(p) => match p.headers() {
            None => {
                put_op_subject_reply(
                    buf,
                    b"PUB ",
                    p.subject().as_bytes(),
                    p.reply().map(str::as_bytes),
                );
                put_usize(buf, p.payload().len());
                buf.put_slice(b"\r\n");
                buf.put_slice(p.payload());
                buf.put_slice(b"\r\n");
            }
            Some(headers) => {
                put_op_subject_reply(
                    buf,
                    b"HPUB ",
                    p.subject().as_bytes(),
                    p.reply().map(str::as_bytes),
                );
                put_usize(buf, headers.len());
                buf.put_u8(b' ');
                put_usize(buf, headers.len() + p.payload().len());
                buf.put_slice(b"\r\n");
                buf.put_slice(headers);
                buf.put_slice(p.payload());
                buf.put_slice(b"\r\n");
            }
        },
        ClientOp::Sub {
            subject,
            queue,
            sid,
        } => {
            buf.put_slice(b"SUB ");
            buf.put_slice(subject);
            buf.put_u8(b' ');
            if let Some(queue) = queue {
                buf.put_slice(queue);
                buf.put_u8(b' ');
            }
            buf.put_slice(sid);
            buf.put_slice(b"\r\n");
        }
        ClientOp::Unsub { sid, max } => {
            buf.put_slice(b"UNSUB ");
            buf.put_slice(sid);
            if let Some(max) = max {
                buf.put_u8(b' ');
                buf.put_slice(itoa::Buffer::new().format(*max).as_bytes());
            }
            buf.put_slice(b"\r\n");
        }
        ClientOp::Ping => buf.put_slice(b"PING\r\n"),
        ClientOp::Pong => buf.put_slice(b"PONG\r\n"),
        ClientOp::Info => buf.put_slice(b"INFO {}\r\n"),
        ClientOp::Ok => buf.put_slice(b"+OK\r\n"),
    }
}
