//! The route protocol: what two servers of one cluster send each other on the cluster
//! port, decoded and encoded without I/O.
//!
//! # Grammar (both directions; recorded from nats-server 2.15.1 on a route port)
//! ```text
//! INFO <json>\r\n                       route INFO (see route_info), also gossip
//! CONNECT <json>\r\n                    sent by the server that dialled
//! RS+ <account> <subject>\r\n           interest in subject
//! RS+ <account> <subject> <queue> <weight>\r\n
//!                                       queue interest; re-sent with the new weight
//!                                       (the number of members) whenever it changes
//! RS- <account> <subject> [<queue>]\r\n interest gone (queue: weight fell to 0)
//! RMSG <account> <subject> [reply] <#bytes>\r\n<payload>\r\n
//! RMSG <account> <subject> + <reply> <queue>... <#bytes>\r\n<payload>\r\n
//! RMSG <account> <subject> | <queue>... <#bytes>\r\n<payload>\r\n
//! HMSG <account> <subject> [reply] <#hdr> <#total>\r\n<headers><payload>\r\n
//! HMSG <account> <subject> + <reply> <queue>... <#hdr> <#total>\r\n...
//! HMSG <account> <subject> | <queue>... <#hdr> <#total>\r\n...
//! PING\r\n  PONG\r\n  +OK\r\n  -ERR '<text>'\r\n
//! ```
//! The queue names of an `RMSG` are the queue groups the receiver delivers it to (one
//! local member each), besides its plain subscriptions; `+` says a reply subject
//! follows, `|` that there is none. On a route pinned to one account (pooling, which
//! rill does not use) the account field is left out; rill never negotiates one, so its
//! decoder always expects it.
//!
//! # Leaf nodes
//! A leaf-node link speaks the same grammar without the account field (one link carries
//! one account on each side) and with its own op names: `LS+ <subject>[ <queue>
//! <weight>]`, `LS- <subject>[ <queue>]`, `LMSG <subject> [reply | + reply queues… |
//! | queues…] <#bytes>`, and `HMSG` with headers (recorded between two nats-server 2.15.1
//! through a proxy). [`RouteDecoder::leaf`] decodes it (the account of each op is
//! empty); the encoders write it when given an empty account.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::{field, is_text, next_line, op_is, parse_size, range_in, split_op};
use crate::error::ProtocolError;
use crate::limits::DecoderLimits;
use crate::op::Publish;

/// Most queue names one routed message may carry.
pub const MAX_QUEUES: usize = 256;

/// One route op.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteOp {
    /// `INFO {json}`: the JSON text.
    Info(Bytes),
    /// `CONNECT {json}`: the JSON text.
    Connect(Bytes),
    /// `RS+`: interest added, or a queue group's new weight.
    Sub(RouteSub),
    /// `RS-`: interest removed.
    Unsub(RouteSub),
    /// `RMSG`/`HMSG`: a message for the receiver's subscriptions.
    Msg(RouteMsg),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR '<text>'`: the text without quotes.
    Err(String),
}

/// The arguments of `RS+` / `RS-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSub {
    /// Account name.
    pub account: Bytes,
    /// Subject filter.
    pub subject: Bytes,
    /// Queue group, if any.
    pub queue: Option<Bytes>,
    /// Queue weight (members on the sending server); 1 for plain interest and `RS-`.
    pub weight: u32,
}

/// A routed message.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMsg {
    /// Account name.
    pub account: Bytes,
    /// Subject, reply, headers and payload, sharing one buffer.
    pub publish: Publish,
    /// Queue groups the receiver delivers it to (one member each).
    pub queues: Vec<Bytes>,
}

/// A message whose control line is parsed while its body may still be in flight.
#[derive(Debug, Clone)]
struct Pending {
    line_len: usize,
    /// Empty for the leaf dialect.
    account: Range<usize>,
    subject: Range<usize>,
    reply: Option<Range<usize>>,
    queues: Vec<Range<usize>>,
    hdr_len: Option<usize>,
    total_len: usize,
    /// The subject and reply are UTF-8 (see [`RouteDecoder::decode`]).
    text: bool,
}

impl Pending {
    fn frame_len(&self) -> usize {
        self.line_len + self.total_len + 2
    }

    /// The whole message, once it is in `buf`.
    fn take(&self, buf: &mut BytesMut) -> Result<Option<RouteMsg>, ProtocolError> {
        let frame_len = self.frame_len();
        if buf.len() < frame_len {
            return Ok(None);
        }
        if &buf[frame_len - 2..frame_len] != b"\r\n" {
            return Err(ProtocolError::UnknownOp);
        }
        let mut frame = buf.split_to(frame_len).freeze();
        if !self.text {
            return Err(ProtocolError::InvalidPublishSubject);
        }
        frame.truncate(frame_len - 2);
        let account = frame.slice(self.account.clone());
        let queues = self.queues.iter().map(|q| frame.slice(q.clone())).collect();
        let publish = Publish::from_frame(
            frame,
            self.subject.clone(),
            self.reply.clone(),
            self.line_len,
            self.hdr_len,
        );
        Ok(Some(RouteMsg {
            account,
            publish,
            queues,
        }))
    }
}

/// Decodes what a peer sends on a route.
#[derive(Debug, Clone, Default)]
pub struct RouteDecoder {
    limits: DecoderLimits,
    pending: Option<Pending>,
    /// The leaf-node dialect: no account field, `LS+`/`LS-`/`LMSG`.
    leaf: bool,
}

impl RouteDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: DecoderLimits) -> Self {
        Self {
            limits,
            pending: None,
            leaf: false,
        }
    }

    /// A decoder of the leaf-node dialect (see the module docs), enforcing `limits`.
    pub fn leaf(limits: DecoderLimits) -> Self {
        Self {
            leaf: true,
            ..Self::new(limits)
        }
    }

    /// Bytes still needed to finish the message in flight, when known.
    pub fn bytes_needed(&self, buffered: usize) -> Option<usize> {
        self.pending
            .as_ref()
            .map(|p| p.frame_len().saturating_sub(buffered))
    }

    /// Decodes one op from the front of `buf`; `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// A [`ProtocolError`] when the bytes break the route protocol; the caller closes
    /// the link and the decoder's state is unspecified afterwards. Two errors do not
    /// close ([`ProtocolError::closes_connection`]): [`ProtocolError::InvalidPublishSubject`]
    /// for a message whose subject or reply is not UTF-8 and [`ProtocolError::InvalidSubject`]
    /// for interest in such a subject or queue. The op has been consumed whole and decoding
    /// goes on with the next: nats-server routes such subjects byte by byte, rill's
    /// subjects are text from every wire inward, so the link drops them and says so.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RouteOp>, ProtocolError> {
        if self.pending.is_none() {
            let Some((line, line_len)) = next_line(buf, self.limits.max_control_line)? else {
                return Ok(None);
            };
            let (name, args) = split_op(line);
            let headers = op_is(name, b"HMSG");
            let msg_op: &[u8] = if self.leaf { b"LMSG" } else { b"RMSG" };
            if headers || op_is(name, msg_op) {
                let args = args.ok_or(ProtocolError::UnknownOp)?;
                let pending = parse_msg(buf, args, line_len, headers, !self.leaf)?;
                if pending.total_len > self.limits.max_payload {
                    return Err(ProtocolError::MaxPayload);
                }
                self.pending = Some(pending);
            } else {
                let args = args.map(|a| range_in(buf, a));
                let line = buf.split_to(line_len).freeze();
                return parse_simple(&line, args, self.leaf).map(Some);
            }
        }
        let Some(pending) = &self.pending else {
            return Ok(None);
        };
        let taken = pending.take(buf);
        if !matches!(taken, Ok(None)) {
            self.pending = None;
        }
        taken.map(|msg| msg.map(RouteOp::Msg))
    }
}

/// The fields of `line`, up to `max` of them.
fn fields(line: &[u8], max: usize) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Ok((after, Some(f))) = field(rest) {
        if out.len() == max {
            return None;
        }
        out.push(f);
        rest = after;
    }
    Some(out)
}

fn bad(op: &'static str, detail: &'static str) -> ProtocolError {
    ProtocolError::BadArgs { op, detail }
}

/// Parses `<account> <subject> [reply | + reply queues… | | queues…] [hdr] <total>`
/// (without `<account>` when `with_account` is false).
fn parse_msg(
    buf: &[u8],
    args: &[u8],
    line_len: usize,
    headers: bool,
    with_account: bool,
) -> Result<Pending, ProtocolError> {
    let op = match (headers, with_account) {
        (true, _) => "HMSG",
        (false, true) => "RMSG",
        (false, false) => "LMSG",
    };
    let sizes = 1 + usize::from(headers);
    let named = 1 + usize::from(with_account);
    let f = fields(args, MAX_QUEUES + 4 + sizes).ok_or_else(|| bad(op, "too many arguments"))?;
    if f.len() < named + sizes {
        return Err(bad(op, "wrong number of arguments"));
    }
    let (account, subject) = match with_account {
        true => (f[0], f[1]),
        false => (&f[0][..0], f[0]),
    };
    let middle = &f[named..f.len() - sizes];
    let (reply, queues): (Option<&[u8]>, &[&[u8]]) = match middle {
        [] => (None, &[]),
        [reply] => (Some(reply), &[]),
        [b"+", reply, queues @ ..] => (Some(reply), queues),
        [b"|", queues @ ..] => (None, queues),
        _ => return Err(bad(op, "wrong number of arguments")),
    };
    let size_fields = &f[f.len() - sizes..];
    let total_len = parse_size(size_fields[sizes - 1]).ok_or_else(|| bad(op, "bad size"))?;
    let hdr_len = match headers {
        true => {
            let h = parse_size(size_fields[0]).ok_or_else(|| bad(op, "bad header size"))?;
            if h > total_len {
                return Err(bad(op, "header size larger than total size"));
            }
            Some(h)
        }
        false => None,
    };
    Ok(Pending {
        text: is_text(subject) && reply.is_none_or(is_text),
        line_len,
        account: range_in(buf, account),
        subject: range_in(buf, subject),
        reply: reply.map(|r| range_in(buf, r)),
        queues: queues.iter().map(|q| range_in(buf, q)).collect(),
        hdr_len,
        total_len,
    })
}

/// Parses an op without a body from its frozen control line.
fn parse_simple(
    line: &Bytes,
    args: Option<Range<usize>>,
    leaf: bool,
) -> Result<RouteOp, ProtocolError> {
    let text = line.trim_ascii_end();
    let (name, _) = split_op(text);
    let args = args.map(|r| line.slice(r));
    let json = |args: Option<Bytes>| -> Result<Bytes, ProtocolError> {
        let args = args.ok_or(ProtocolError::UnknownOp)?;
        Ok(args.slice_ref(args.trim_ascii()))
    };
    match () {
        () if op_is(name, b"PING") => Ok(RouteOp::Ping),
        () if op_is(name, b"PONG") => Ok(RouteOp::Pong),
        () if op_is(name, b"+OK") => Ok(RouteOp::Ok),
        () if op_is(name, b"INFO") => Ok(RouteOp::Info(json(args)?)),
        () if op_is(name, b"CONNECT") => Ok(RouteOp::Connect(json(args)?)),
        () if !leaf && op_is(name, b"RS+") => parse_sub(args, true, true).map(RouteOp::Sub),
        () if !leaf && op_is(name, b"RS-") => parse_sub(args, false, true).map(RouteOp::Unsub),
        () if leaf && op_is(name, b"LS+") => parse_sub(args, true, false).map(RouteOp::Sub),
        () if leaf && op_is(name, b"LS-") => parse_sub(args, false, false).map(RouteOp::Unsub),
        () if op_is(name, b"-ERR") => {
            let args = args.unwrap_or_default();
            let text = args.trim_ascii();
            let text = text
                .strip_prefix(b"'")
                .and_then(|t| t.strip_suffix(b"'"))
                .unwrap_or(text);
            Ok(RouteOp::Err(String::from_utf8_lossy(text).into_owned()))
        }
        () => Err(ProtocolError::UnknownOp),
    }
}

/// `RS+ <account> <subject> [<queue> <weight>]` or `RS- <account> <subject> [<queue>]`;
/// `LS+`/`LS-` without `<account>` when `with_account` is false.
fn parse_sub(
    args: Option<Bytes>,
    plus: bool,
    with_account: bool,
) -> Result<RouteSub, ProtocolError> {
    let op = match (plus, with_account) {
        (true, true) => "RS+",
        (false, true) => "RS-",
        (true, false) => "LS+",
        (false, false) => "LS-",
    };
    let args = args.ok_or_else(|| bad(op, "wrong number of arguments"))?;
    let mut f = fields(&args, 4).ok_or_else(|| bad(op, "too many arguments"))?;
    if !with_account {
        // An empty account in front keeps one shape for both dialects.
        f.insert(0, &args[..0]);
    }
    let part = |p: &[u8]| args.slice_ref(p);
    let (account, subject, queue, weight) = match (f.as_slice(), plus) {
        ([a, s], _) => (a, s, None, 1),
        ([a, s, q, w], true) => {
            let w = parse_size(w)
                .and_then(|w| u32::try_from(w).ok())
                .ok_or_else(|| bad(op, "bad queue weight"))?;
            (a, s, Some(q), w)
        }
        // A queue without weight: nats-server's RS- form (and an RS+ of weight 1).
        ([a, s, q], _) => (a, s, Some(q), 1),
        _ => return Err(bad(op, "wrong number of arguments")),
    };
    if !is_text(subject) || queue.is_some_and(|q| !is_text(q)) {
        return Err(ProtocolError::InvalidSubject);
    }
    Ok(RouteSub {
        account: part(account),
        subject: part(subject),
        queue: queue.map(|q| part(q)),
        weight,
    })
}

/// Writes `RS+ <account> <subject>[ <queue> <weight>]\r\n`; with an empty `account`,
/// the leaf form `LS+ <subject>[ <queue> <weight>]\r\n`.
pub fn sub(buf: &mut BytesMut, account: &[u8], subject: &[u8], queue: Option<(&[u8], u32)>) {
    buf.put_slice(if account.is_empty() { b"LS+ " } else { b"RS+ " });
    put_account_subject(buf, account, subject);
    if let Some((queue, weight)) = queue {
        buf.put_u8(b' ');
        buf.put_slice(queue);
        buf.put_u8(b' ');
        buf.put_slice(itoa::Buffer::new().format(weight).as_bytes());
    }
    buf.put_slice(b"\r\n");
}

/// Writes `RS- <account> <subject>[ <queue>]\r\n`; with an empty `account`, the leaf
/// form `LS- <subject>[ <queue>]\r\n`.
pub fn unsub(buf: &mut BytesMut, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    buf.put_slice(if account.is_empty() { b"LS- " } else { b"RS- " });
    put_account_subject(buf, account, subject);
    if let Some(queue) = queue {
        buf.put_u8(b' ');
        buf.put_slice(queue);
    }
    buf.put_slice(b"\r\n");
}

fn put_account_subject(buf: &mut BytesMut, account: &[u8], subject: &[u8]) {
    buf.reserve(account.len() + subject.len() + 32);
    if !account.is_empty() {
        buf.put_slice(account);
        buf.put_u8(b' ');
    }
    buf.put_slice(subject);
}

/// The parts of a routed message's control line.
#[derive(Debug, Clone, Copy)]
pub struct MsgHead<'a> {
    /// Account name.
    pub account: &'a [u8],
    /// Subject.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Queue groups the receiver delivers to.
    pub queues: &'a [&'a [u8]],
    /// Header block length, for `HMSG`.
    pub hdr_len: Option<usize>,
    /// Body length, headers included.
    pub total_len: usize,
}

impl MsgHead<'_> {
    /// An upper bound of the encoded control line's length.
    pub fn len_estimate(&self) -> usize {
        let queues: usize = self.queues.iter().map(|q| q.len() + 1).sum();
        self.account.len() + self.subject.len() + self.reply.map_or(0, <[u8]>::len) + queues + 48
    }
}

/// Writes the control line of an `RMSG` (no headers) or `HMSG`; the caller appends
/// the header block, the payload and `\r\n`. With an empty account, the leaf form
/// (`LMSG <subject> …`, `HMSG <subject> …`).
pub fn msg_head(buf: &mut BytesMut, head: &MsgHead<'_>) {
    buf.reserve(head.len_estimate());
    buf.put_slice(match (head.hdr_len.is_some(), head.account.is_empty()) {
        (true, _) => b"HMSG ",
        (false, false) => b"RMSG ",
        (false, true) => b"LMSG ",
    });
    put_account_subject(buf, head.account, head.subject);
    buf.put_u8(b' ');
    match (head.reply, head.queues.is_empty()) {
        (Some(reply), true) => {
            buf.put_slice(reply);
            buf.put_u8(b' ');
        }
        (Some(reply), false) => {
            buf.put_slice(b"+ ");
            buf.put_slice(reply);
            buf.put_u8(b' ');
        }
        (None, false) => buf.put_slice(b"| "),
        (None, true) => {}
    }
    for queue in head.queues {
        buf.put_slice(queue);
        buf.put_u8(b' ');
    }
    let mut num = itoa::Buffer::new();
    if let Some(h) = head.hdr_len {
        buf.put_slice(num.format(h).as_bytes());
        buf.put_u8(b' ');
    }
    buf.put_slice(num.format(head.total_len).as_bytes());
    buf.put_slice(b"\r\n");
}

/// Writes a whole routed message (tools and tests; the server shares large payloads).
pub fn msg(buf: &mut BytesMut, head: &MsgHead<'_>, headers: Option<&[u8]>, payload: &[u8]) {
    msg_head(buf, head);
    buf.put_slice(headers.unwrap_or_default());
    buf.put_slice(payload);
    buf.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames exactly as nats-server 2.15.1 sent them on a route (captured with a proxy).
    const CAPTURED: &[u8] = b"RS+ $G foo.*\r\nRS+ $G foo.bar q1 2\r\nRS- $G foo.bar q1\r\n\
RMSG $G foo.bar | q1 5\r\nhello\r\n\
RMSG $G foo.bar + r.1 q1 5\r\nhello\r\n\
HMSG $G foo.bar | q1 18 23\r\nNATS/1.0\r\nK: V\r\n\r\nhello\r\n\
HMSG $G foo.bar + r.2 q1 18 23\r\nNATS/1.0\r\nK: V\r\n\r\nhello\r\n\
RMSG $G svc _INBOX.a.b 4\r\nping\r\n\
RMSG $G x 0\r\n\r\n\
PING\r\nPONG\r\n-ERR 'Rejecting connection, cluster name \"C1\" does not match \"C2\"'\r\n";

    fn decode_all(input: &[u8], chunk: usize) -> Vec<RouteOp> {
        let mut decoder = RouteDecoder::new(DecoderLimits::default());
        let mut buf = BytesMut::new();
        let mut ops = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(op) = decoder.decode(&mut buf).expect("valid route frames") {
                ops.push(op);
            }
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        ops
    }

    fn msg_of(op: &RouteOp) -> &RouteMsg {
        match op {
            RouteOp::Msg(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn captured_nats_server_frames_decode_the_same_at_every_split() {
        let whole = decode_all(CAPTURED, CAPTURED.len());
        assert_eq!(whole.len(), 12);
        for chunk in 1..CAPTURED.len() {
            assert_eq!(
                decode_all(CAPTURED, chunk),
                whole,
                "split every {chunk} bytes"
            );
        }
        assert_eq!(
            whole[1],
            RouteOp::Sub(RouteSub {
                account: Bytes::from_static(b"$G"),
                subject: Bytes::from_static(b"foo.bar"),
                queue: Some(Bytes::from_static(b"q1")),
                weight: 2,
            })
        );
        let queued = msg_of(&whole[4]);
        assert_eq!(queued.publish.reply(), Some("r.1"));
        assert_eq!(queued.queues, vec![Bytes::from_static(b"q1")]);
        let with_headers = msg_of(&whole[6]);
        assert_eq!(
            with_headers.publish.headers(),
            Some(&b"NATS/1.0\r\nK: V\r\n\r\n"[..])
        );
        assert_eq!(with_headers.publish.payload(), b"hello");
        let plain = msg_of(&whole[7]);
        assert_eq!(
            (plain.publish.reply(), plain.queues.len()),
            (Some("_INBOX.a.b"), 0)
        );
        assert_eq!(
            whole[11],
            RouteOp::Err("Rejecting connection, cluster name \"C1\" does not match \"C2\"".into())
        );
    }

    #[test]
    fn encoded_frames_match_nats_server_and_decode_back() {
        let mut buf = BytesMut::new();
        sub(&mut buf, b"$G", b"foo.*", None);
        sub(&mut buf, b"$G", b"foo.bar", Some((b"q1", 2)));
        unsub(&mut buf, b"$G", b"foo.bar", Some(b"q1"));
        let q1: &[&[u8]] = &[b"q1"];
        let heads = [
            (None, q1, None),
            (Some(&b"r.1"[..]), q1, None),
            (None, q1, Some(&b"NATS/1.0\r\nK: V\r\n\r\n"[..])),
            (
                Some(&b"r.2"[..]),
                q1,
                Some(&b"NATS/1.0\r\nK: V\r\n\r\n"[..]),
            ),
            (Some(&b"_INBOX.a.b"[..]), &[][..], None),
        ];
        for (reply, queues, headers) in heads {
            let payload: &[u8] = if reply == Some(b"_INBOX.a.b") {
                b"ping"
            } else {
                b"hello"
            };
            let subject: &[u8] = if payload == b"ping" {
                b"svc"
            } else {
                b"foo.bar"
            };
            let head = MsgHead {
                account: b"$G",
                subject,
                reply,
                queues,
                hdr_len: headers.map(<[u8]>::len),
                total_len: headers.map_or(0, <[u8]>::len) + payload.len(),
            };
            msg(&mut buf, &head, headers, payload);
        }
        assert_eq!(
            String::from_utf8_lossy(&buf),
            String::from_utf8_lossy(&CAPTURED[..buf.len()])
        );
        assert_eq!(decode_all(&buf, 7).len(), 8);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        for bad in [
            &b"RS+\r\n"[..],
            b"RS+ $G a q notanumber\r\n",
            b"RS+ $G a q 1 extra\r\n",
            b"RMSG $G\r\n",
            b"RMSG $G a x\r\n",
            b"HMSG $G a 9 5\r\n",
            b"RMSG $G a 1\r\nxyz\r\n",
            b"LMSG $G a 1\r\nx\r\n",
        ] {
            let mut decoder = RouteDecoder::new(DecoderLimits::default());
            let mut buf = BytesMut::from(bad);
            let mut result = decoder.decode(&mut buf);
            while let Ok(Some(_)) = result {
                result = decoder.decode(&mut buf);
            }
            assert!(
                result.is_err(),
                "{:?} decoded",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// A subject or reply that is not UTF-8 (nats-server passes such bytes on) costs that
    /// op alone: the error does not close the link and the next op decodes.
    #[test]
    fn subjects_that_are_not_text_drop_their_op_alone() {
        let cases: [(&[u8], bool, ProtocolError); 5] = [
            (
                b"RMSG $G a\xff 2\r\nhi\r\n",
                false,
                ProtocolError::InvalidPublishSubject,
            ),
            (
                b"HMSG $G a r\xc3 0 2\r\nhi\r\n",
                false,
                ProtocolError::InvalidPublishSubject,
            ),
            (
                b"LMSG \xfe.x 2\r\nhi\r\n",
                true,
                ProtocolError::InvalidPublishSubject,
            ),
            (b"RS+ $G a.\xff\r\n", false, ProtocolError::InvalidSubject),
            (b"LS+ a q\xff 1\r\n", true, ProtocolError::InvalidSubject),
        ];
        for (bad, leaf, want) in cases {
            let mut decoder = match leaf {
                true => RouteDecoder::leaf(DecoderLimits::default()),
                false => RouteDecoder::new(DecoderLimits::default()),
            };
            let mut buf = BytesMut::from(bad);
            buf.extend_from_slice(b"PING\r\n");
            let err = decoder.decode(&mut buf).expect_err("refused");
            assert_eq!(err, want, "{:?}", String::from_utf8_lossy(bad));
            assert!(!err.closes_connection());
            assert_eq!(decoder.decode(&mut buf), Ok(Some(RouteOp::Ping)));
        }
    }

    /// Frames exactly as nats-server 2.15.1 sent them on a leaf-node link (captured with
    /// a proxy between a hub and a leaf).
    const LEAF_CAPTURED: &[u8] = b"LS+ baz.>\r\nLS+ qq lq 1\r\nLS- qq lq\r\n\
HMSG baz.1 18 21\r\nNATS/1.0\r\nA: b\r\n\r\nhdr\r\n\
LMSG qq + r2 lq 7\r\ntoleafq\r\nLMSG qq | lq 8\r\ntoleafq2\r\n\
LMSG foo 5\r\nhello\r\nLMSG bar.x + rep.1 q1 4\r\nqmsg\r\n";

    #[test]
    fn captured_leaf_frames_decode_at_every_split_and_encode_back() {
        let decode = |chunk: usize| {
            let mut decoder = RouteDecoder::leaf(DecoderLimits::default());
            let mut buf = BytesMut::new();
            let mut ops = Vec::new();
            for piece in LEAF_CAPTURED.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(op) = decoder.decode(&mut buf).expect("valid leaf frames") {
                    ops.push(op);
                }
            }
            ops
        };
        let whole = decode(LEAF_CAPTURED.len());
        assert_eq!(whole.len(), 8);
        for chunk in 1..LEAF_CAPTURED.len() {
            assert_eq!(decode(chunk), whole, "split every {chunk} bytes");
        }
        let mut buf = BytesMut::new();
        for op in &whole {
            match op {
                RouteOp::Sub(s) => sub(
                    &mut buf,
                    b"",
                    &s.subject,
                    s.queue.as_deref().map(|q| (q, s.weight)),
                ),
                RouteOp::Unsub(s) => unsub(&mut buf, b"", &s.subject, s.queue.as_deref()),
                RouteOp::Msg(m) => {
                    assert!(m.account.is_empty());
                    let queues: Vec<&[u8]> = m.queues.iter().map(|q| &q[..]).collect();
                    let head = MsgHead {
                        account: b"",
                        subject: m.publish.subject().as_bytes(),
                        reply: m.publish.reply().map(str::as_bytes),
                        queues: &queues,
                        hdr_len: m.publish.headers().map(<[u8]>::len),
                        total_len: m.publish.headers().map_or(0, <[u8]>::len)
                            + m.publish.payload().len(),
                    };
                    msg(&mut buf, &head, m.publish.headers(), m.publish.payload());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(&buf[..], LEAF_CAPTURED);
        // The route ops are not leaf ops, and the other way round.
        let mut decoder = RouteDecoder::leaf(DecoderLimits::default());
        assert!(
            decoder
                .decode(&mut BytesMut::from(&b"RS+ $G a\r\n"[..]))
                .is_err()
        );
    }

    #[test]
    fn payload_limit_applies_before_the_body_arrives() {
        let limits = DecoderLimits {
            max_control_line: 4096,
            max_payload: 4,
        };
        let mut decoder = RouteDecoder::new(limits);
        let mut buf = BytesMut::from(&b"RMSG $G a 5\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::MaxPayload));
    }
}
