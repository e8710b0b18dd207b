//! The operations of the NATS client protocol, in both directions.
//!
//! Subjects, reply subjects, queue names and sids are raw `Bytes` slices of the
//! read buffer (zero-copy). They are syntactically split but not validated as
//! subjects here: validation rules depend on the connection (pedantic mode,
//! permissions), so the server applies them with [`crate::subject`].

use bytes::Bytes;

use crate::connect::Connect;

/// An operation sent by a client to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOp {
    /// `CONNECT {json}`.
    Connect(Box<Connect>),
    /// `PUB <subject> [reply] <size>` and its payload.
    Pub {
        /// Where the message is published.
        subject: Bytes,
        /// Optional reply subject.
        reply: Option<Bytes>,
        /// The payload.
        payload: Bytes,
    },
    /// `HPUB <subject> [reply] <hdr> <total>`, its header block and payload.
    HPub {
        /// Where the message is published.
        subject: Bytes,
        /// Optional reply subject.
        reply: Option<Bytes>,
        /// The raw header block, `NATS/1.0…\r\n\r\n` included.
        headers: Bytes,
        /// The payload after the header block.
        payload: Bytes,
    },
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
