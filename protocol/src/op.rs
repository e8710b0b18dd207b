//! The operations of the NATS client protocol, in both directions.
//!
//! Subjects, reply subjects, queue names and sids are raw `Bytes` slices of the
//! read buffer (zero-copy). A [`Publish`] from [`crate::decode::ClientDecoder`] has a
//! UTF-8 subject and reply (the decoder refuses others); beyond that they are split but
//! not validated as subjects here: the rules depend on the connection (pedantic mode,
//! permissions), so the server applies them with [`crate::subject`].

use std::fmt;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::connect::Connect;

/// An operation sent by a client to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOp {
    /// `CONNECT {json}`.
    Connect(Box<Connect>),
    /// `PUB <subject> [reply] <size>` or `HPUB <subject> [reply] <hdr> <total>`
    /// with its header block and payload.
    Pub(Publish),
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        /// Filter subject.
        subject: Bytes,
        /// Optional queue group.
        queue: Option<Bytes>,
        /// Client-chosen subscription id.
        sid: Bytes,
    },
    /// `UNSUB <sid> [max]`.
    Unsub {
        /// The subscription id.
        sid: Bytes,
        /// Auto-unsubscribe after this many deliveries in total.
        max: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `INFO {json}` sent by a client: accepted and ignored.
    Info,
    /// `+OK` sent by a client: accepted and ignored.
    Ok,
}

/// An operation sent by the server to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerOp {
    /// `INFO {json}`; the JSON is kept raw so any field survives.
    Info(Bytes),
    /// `MSG <subject> <sid> [reply] <size>` and its payload.
    Msg {
        /// The subject the message was published to.
        subject: Bytes,
        /// The subscription it is delivered for.
        sid: Bytes,
        /// Optional reply subject.
        reply: Option<Bytes>,
        /// The payload.
        payload: Bytes,
    },
    /// `HMSG <subject> <sid> [reply] <hdr> <total>` with headers and payload.
    HMsg {
        /// The subject the message was published to.
        subject: Bytes,
        /// The subscription it is delivered for.
        sid: Bytes,
        /// Optional reply subject.
        reply: Option<Bytes>,
        /// The raw header block.
        headers: Bytes,
        /// The payload.
        payload: Bytes,
    },
    /// `+OK`.
    Ok,
    /// `-ERR '<text>'`, the text without quotes.
    Err(String),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
}

/// A published message (`PUB` or `HPUB`) as it arrived: one shared buffer holding
/// the control line and the body, with the parts located in it.
///
/// Reading a part borrows it; [`Publish::frame`] with `Bytes::slice_ref` hands a part
/// out as `Bytes` without copying. Keeping one handle instead of one per part saves
/// two atomic reference-count updates per message on the publish path.
#[derive(Clone)]
pub struct Publish {
    /// Control line and body (without the final CRLF), or the parts of [`Publish::new`].
    frame: Bytes,
    subject: Range<usize>,
    reply: Option<Range<usize>>,
    /// Where the body (header block, then payload) starts in `frame`.
    body: usize,
    /// Header block length; `None` for `PUB`.
    hdr_len: Option<usize>,
}

impl Publish {
    /// A message from its parts (copied into one buffer): for tools and tests.
    pub fn new(subject: &str, reply: Option<&str>, headers: Option<&[u8]>, payload: &[u8]) -> Self {
        let reply_len = reply.map_or(0, str::len);
        let hdr_len = headers.map(<[u8]>::len);
        let mut buf = BytesMut::with_capacity(
            subject.len() + reply_len + hdr_len.unwrap_or(0) + payload.len(),
        );
        buf.put_slice(subject.as_bytes());
        buf.put_slice(reply.unwrap_or_default().as_bytes());
        buf.put_slice(headers.unwrap_or_default());
        buf.put_slice(payload);
        let body = subject.len() + reply_len;
        Self {
            frame: buf.freeze(),
            subject: 0..subject.len(),
            reply: reply.map(|_| subject.len()..body),
            body,
            hdr_len,
        }
    }

    /// Locates the parts in a decoded frame: `frame` ends where the payload ends. The
    /// decoders call it only once they have found `subject` and `reply` to be UTF-8.
    pub(crate) fn from_frame(
        frame: Bytes,
        subject: Range<usize>,
        reply: Option<Range<usize>>,
        body: usize,
        hdr_len: Option<usize>,
    ) -> Self {
        Self {
            frame,
            subject,
            reply,
            body,
            hdr_len,
        }
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        text(&self.frame[self.subject.clone()])
    }

    /// The reply subject, if any.
    pub fn reply(&self) -> Option<&str> {
        self.reply.clone().map(|r| text(&self.frame[r]))
    }

    /// The raw header block (`NATS/1.0…\r\n\r\n`), for `HPUB`.
    pub fn headers(&self) -> Option<&[u8]> {
        self.hdr_len.map(|h| &self.frame[self.body..self.body + h])
    }

    /// The payload after the header block.
    pub fn payload(&self) -> &[u8] {
        &self.frame[self.body + self.hdr_len.unwrap_or(0)..]
    }

    /// The buffer every part lives in, to share parts with `Bytes::slice_ref`.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
}

impl PartialEq for Publish {
    fn eq(&self, other: &Self) -> bool {
        self.subject() == other.subject()
            && self.reply() == other.reply()
            && self.headers() == other.headers()
            && self.payload() == other.payload()
    }
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rendered like `Bytes` (b"..."), part by part.
        let show = |b: &[u8]| Bytes::copy_from_slice(b);
        let mut d = f.debug_struct("Publish");
        d.field("subject", &show(self.subject().as_bytes()))
            .field("reply", &self.reply().map(|r| show(r.as_bytes())));
        if let Some(h) = self.headers() {
            d.field("headers", &show(h));
        }
        d.field("payload", &show(self.payload())).finish()
    }
}

/// A part the decoder found to be UTF-8 (or [`Publish::new`] got as text), as text. The
/// fallback is unreachable: every [`Publish`] is made from text.
fn text(part: &[u8]) -> &str {
    let text = std::str::from_utf8(part);
    debug_assert!(text.is_ok(), "a Publish holds text");
    text.unwrap_or_default()
}
