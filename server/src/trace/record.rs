//! The record one server keeps of one traced message ([`Trace`]): what the message was
//! (`request`), the events that happened to it here, in order, and how many other servers
//! it was sent on to (`hops`). When the last holder lets go of it (the publisher's read
//! loop, or a stream that stored it later), the record is reported once, as nats-server's
//! `MsgTraceEvent` JSON, through the sender it was created with.
//!
//! A leaf of the crate (routing imports it): it knows subjects and header blocks, never
//! accounts or connections; [`super::start`] creates records and sends the reports.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rill_protocol::HeaderMap;
use rill_protocol::headers::find;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::locks;
use crate::shared::ServerInfo;

/// Where a traced message's reports go (a literal subject in the publisher's account).
pub const TRACE_DEST: &str = "Nats-Trace-Dest";
/// `1`, `true` or `on`: report the message's path without delivering it.
pub const TRACE_ONLY: &str = "Nats-Trace-Only";
/// The hop a server received the message as: `1`, `2`, … from the origin, `1.1` from
/// the server at hop `1`; absent at the origin.
pub const TRACE_HOP: &str = "Nats-Trace-Hop";
/// W3C Trace Context: traced when sampled and the account has `msg_trace { dest }`.
pub const TRACEPARENT: &str = "traceparent";

/// How a connection appears in events: nats-server's client kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A client connection.
    Client = 0,
    /// A cluster route.
    Route = 1,
    /// A leaf-node connection.
    Leaf = 4,
}

/// One connection end of an ingress or egress event.
#[derive(Debug, Clone, Serialize)]
pub struct Conn {
    /// Its kind, as a number.
    pub kind: u8,
    /// Connection id (`cid`, `rid`, `lid`).
    pub cid: u64,
    /// Client name or peer server name (left out when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Conn {
    /// The connection `cid` of `kind`, called `name`.
    pub fn new(kind: Kind, cid: u64, name: String) -> Self {
        Self {
            kind: kind as u8,
            cid,
            name,
        }
    }
}

/// One event, as nats-server words it (`type`: `in`, `sm`, `se`, `si`, `js`, `eg`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    /// How the message entered this server.
    #[serde(rename = "in")]
    Ingress {
        /// When.
        ts: String,
        /// From which connection.
        #[serde(flatten)]
        conn: Conn,
        /// Its account.
        acc: String,
        /// The subject it was published to.
        subj: String,
        /// Why it went no further (a publish permission).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A subject mapping changed its subject.
    #[serde(rename = "sm")]
    Mapping {
        /// When.
        ts: String,
        /// The new subject.
        to: String,
    },
    /// A stream export carried it into another account.
    #[serde(rename = "se")]
    StreamExport {
        /// When.
        ts: String,
        /// The importing account.
        acc: String,
        /// Its subject there.
        to: String,
    },
    /// A service import carried it to the exporting account.
    #[serde(rename = "si")]
    ServiceImport {
        /// When.
        ts: String,
        /// The exporting account.
        acc: String,
        /// The subject it was imported on.
        from: String,
        /// Its subject in the exporting account.
        to: String,
    },
    /// A stream took it.
    #[serde(rename = "js")]
    JetStream {
        /// When.
        ts: String,
        /// The stream.
        stream: String,
        /// The subject it is stored under.
        #[serde(skip_serializing_if = "String::is_empty")]
        subject: String,
        /// An interest stream without interest in it did not keep it.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        nointerest: bool,
        /// Why it was not stored.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// It left this server: to a client's subscription or to another server.
    #[serde(rename = "eg")]
    Egress {
        /// When.
        ts: String,
        /// To which connection.
        #[serde(flatten)]
        conn: Conn,
        /// The hop the next server receives it as (links only).
        #[serde(skip_serializing_if = "Option::is_none")]
        hop: Option<String>,
        /// The subscription's account, when not the ingress account.
        #[serde(skip_serializing_if = "Option::is_none")]
        acc: Option<String>,
        /// The subscription's subject (clients only).
        #[serde(skip_serializing_if = "Option::is_none")]
        sub: Option<String>,
        /// Its queue group.
        #[serde(skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
}

/// The traced message: its headers (every value of each, by name) and size.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// The header block as received.
    pub header: BTreeMap<String, Vec<String>>,
    /// Header and payload bytes.
    pub msgsize: usize,
}

impl Request {
    /// The request of a message with header block `headers` and `size` bytes in all.
    pub fn new(headers: &[u8], size: usize) -> Self {
        let mut header: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Ok(map) = HeaderMap::parse(headers) {
            for (name, value) in map.iter() {
                header
                    .entry(name.to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
        Self {
            header,
            msgsize: size,
        }
    }
}

/// What a traced message asks for, read from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Not traced.
    None,
    /// `Nats-Trace-Dest` names a subject that cannot take reports: not traced, and with
    /// `Nats-Trace-Only` not delivered either (as nats-server).
    Invalid {
        /// `Nats-Trace-Only` was set.
        only: bool,
    },
    /// Traced to `dest`.
    Dest {
        /// The report subject.
        dest: String,
        /// `Nats-Trace-Only` was set.
        only: bool,
    },
    /// No `Nats-Trace-Dest`, but a sampled `traceparent`: traced when the account has a
    /// `msg_trace` destination (and its sampling picks it).
    Parent,
}

impl Activation {
    /// What the header block `headers` asks for.
    pub fn of(headers: &[u8]) -> Self {
        let only = find(headers, TRACE_ONLY).is_some_and(is_on);
        match find(headers, TRACE_DEST) {
            Some(dest) => match std::str::from_utf8(dest) {
                Ok(dest) if rill_protocol::subject::validate_publish(dest).is_ok() => Self::Dest {
                    dest: dest.to_string(),
                    only,
                },
                _ => Self::Invalid { only },
            },
            None if find(headers, TRACEPARENT).is_some_and(sampled) => Self::Parent,
            None => Self::None,
        }
    }
}

/// `1`, `true`, `on` (any case).
fn is_on(v: &[u8]) -> bool {
    let v = std::str::from_utf8(v).unwrap_or_default().trim();
    ["1", "true", "on"]
        .iter()
        .any(|on| v.eq_ignore_ascii_case(on))
}

/// A W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`) with the sampled flag.
fn sampled(v: &[u8]) -> bool {
    let v = std::str::from_utf8(v).unwrap_or_default().trim();
    let parts: Vec<&str> = v.split('-').collect();
    let [_, trace, parent, flags] = parts[..] else {
        return false;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1)
}

/// Sends a finished record (see [`Trace::report`]).
pub type Sender = Box<dyn FnOnce(&Trace) + Send>;

/// What happened to one traced message on this server.
pub struct Trace {
    dest: ByteString,
    only: bool,
    /// The account it entered in (egress events name another one).
    account: String,
    /// The hop this server received it as (none at the origin).
    hop: Option<String>,
    request: Request,
    state: Mutex<State>,
    sender: Mutex<Option<Sender>>,
}

#[derive(Default)]
struct State {
    events: Vec<Event>,
    /// Links it was sent on.
    hops: u32,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("dest", &self.dest)
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

/// What a new record starts from.
#[derive(Debug)]
pub struct Origin {
    /// The report subject.
    pub dest: String,
    /// Report without delivering.
    pub only: bool,
    /// The account it entered in.
    pub account: String,
    /// The message's header block.
    pub headers: Bytes,
    /// Header and payload bytes.
    pub size: usize,
}

impl Trace {
    /// A record that `sender` reports when the last holder drops it.
    pub fn new(origin: Origin, sender: Sender) -> Arc<Self> {
        let hop = find(&origin.headers, TRACE_HOP)
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .filter(|h| !h.is_empty());
        Arc::new(Self {
            dest: ByteString::from(origin.dest),
            only: origin.only,
            account: origin.account,
            hop,
            request: Request::new(&origin.headers, origin.size),
            state: Mutex::new(State::default()),
            sender: Mutex::new(Some(sender)),
        })
    }

    /// The report subject.
    pub fn dest(&self) -> &ByteString {
        &self.dest
    }

    /// True when the message is reported, not delivered (`Nats-Trace-Only`).
    pub fn only(&self) -> bool {
        self.only
    }

    fn add(&self, event: Event) {
        locks::lock(&self.state).events.push(event);
    }

    /// It entered over `conn` in its account on `subj`; `error` when refused there.
    pub fn ingress(&self, conn: Conn, subj: &str, error: Option<String>) {
        self.add(Event::Ingress {
            ts: now(),
            conn,
            acc: self.account.clone(),
            subj: subj.to_string(),
            error,
        });
    }

    /// Its publish was refused (`error`, on the ingress event): it goes no further.
    pub fn refused(&self, error: String) {
        let mut state = locks::lock(&self.state);
        if let Some(Event::Ingress { error: e, .. }) = state.events.first_mut() {
            *e = Some(error);
        }
    }

    /// A mapping moved it to `to`.
    pub fn mapped(&self, to: &str) {
        self.add(Event::Mapping {
            ts: now(),
            to: to.to_string(),
        });
    }

    /// A stream export carried it into `acc` as `to`.
    pub fn stream_export(&self, acc: &str, to: &str) {
        self.add(Event::StreamExport {
            ts: now(),
            acc: acc.to_string(),
            to: to.to_string(),
        });
    }

    /// A service import carried it from `from` to `to` in `acc`.
    pub fn service_import(&self, acc: &str, from: &str, to: &str) {
        self.add(Event::ServiceImport {
            ts: now(),
            acc: acc.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        });
    }

    /// `stream` took it under `subject`: kept, not kept for want of interest, or
    /// refused with `error`.
    pub fn jetstream(&self, stream: &str, subject: &[u8], nointerest: bool, error: Option<String>) {
        self.add(Event::JetStream {
            ts: now(),
            stream: stream.to_string(),
            subject: text(subject),
            nointerest,
            error,
        });
    }

    /// It went to the subscription on `sub` (`queue`) of the client `conn`, in `acc`.
    pub fn egress_client(&self, conn: Conn, acc: &str, sub: &[u8], queue: Option<&[u8]>) {
        self.add(Event::Egress {
            ts: now(),
            conn,
            hop: None,
            acc: (acc != self.account).then(|| acc.to_string()),
            sub: Some(text(sub)),
            queue: queue.map(text),
        });
    }

    /// It goes to the server behind the link `conn`: records the hop and returns the
    /// header block to send it with (its `Nats-Trace-Hop` set to that hop).
    pub fn egress_link(&self, conn: Conn, headers: &[u8]) -> Bytes {
        let mut state = locks::lock(&self.state);
        state.hops += 1;
        let hop = match &self.hop {
            Some(own) => format!("{own}.{}", state.hops),
            None => state.hops.to_string(),
        };
        let block = with_hop(headers, &hop);
        state.events.push(Event::Egress {
            ts: now(),
            conn,
            hop: Some(hop),
            acc: None,
            sub: None,
            queue: None,
        });
        block
    }

    /// The report as nats-server's `MsgTraceEvent` JSON, from `server`.
    pub fn report(&self, server: ServerInfo) -> Vec<u8> {
        #[derive(Serialize)]
        struct Report<'a> {
            server: ServerInfo,
            request: &'a Request,
            #[serde(skip_serializing_if = "is_zero")]
            hops: u32,
            events: &'a [Event],
        }
        let state = locks::lock(&self.state);
        let report = Report {
            server,
            request: &self.request,
            hops: state.hops,
            events: &state.events,
        };
        serde_json::to_vec(&report).unwrap_or_default()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Some(send) = locks::lock(&self.sender).take() {
            send(self);
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Now, as nats-server's event timestamps (RFC 3339, nanoseconds, UTC).
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `headers` with `Nats-Trace-Hop: <hop>` in place of any it had, before the blank line.
pub fn with_hop(headers: &[u8], hop: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(headers.len() + TRACE_HOP.len() + hop.len() + 4);
    let body = headers.strip_suffix(b"\r\n").unwrap_or(headers);
    let mut lines = body.split(|&b| b == b'\n');
    if let Some(status) = lines.next() {
        out.extend_from_slice(status);
        out.extend_from_slice(b"\n");
    }
    let own = |line: &[u8]| {
        line.len() > TRACE_HOP.len()
            && line[..TRACE_HOP.len()].eq_ignore_ascii_case(TRACE_HOP.as_bytes())
            && line[TRACE_HOP.len()] == b':'
    };
    for line in lines.filter(|l| !l.is_empty() && !own(l)) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(format!("{TRACE_HOP}: {hop}\r\n\r\n").as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_follows_the_trace_headers() {
        let block = |h: &str| format!("NATS/1.0\r\n{h}\r\n");
        let of = |h: &str| Activation::of(block(h).as_bytes());
        assert_eq!(of("A: 1\r\n"), Activation::None);
        assert_eq!(
            of("Nats-Trace-Dest: t.x\r\nNats-Trace-Only: On\r\n"),
            Activation::Dest {
                dest: "t.x".into(),
                only: true
            }
        );
        assert_eq!(
            of("Nats-Trace-Dest: bad.*\r\nNats-Trace-Only: 1\r\n"),
            Activation::Invalid { only: true }
        );
        let parent = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331";
        assert_eq!(of(&format!("{parent}-01\r\n")), Activation::Parent);
        assert_eq!(of(&format!("{parent}-00\r\n")), Activation::None);
        assert_eq!(of("traceparent: 00-zz-b7-01\r\n"), Activation::None);
    }

    #[test]
    fn the_hop_header_is_set_once_before_the_blank_line() {
        let first = with_hop(b"NATS/1.0\r\nNats-Trace-Dest: t\r\n\r\n", "1");
        assert_eq!(
            &first[..],
            b"NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Hop: 1\r\n\r\n"
        );
        let next = with_hop(&first, "1.1");
        assert_eq!(
            &next[..],
            b"NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Hop: 1.1\r\n\r\n"
        );
    }

    #[test]
    fn a_record_is_reported_once_when_dropped() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&sent);
        let headers =
            Bytes::from_static(b"NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Hop: 2\r\n\r\n");
        let trace = Trace::new(
            Origin {
                dest: "t".into(),
                only: false,
                account: "A".into(),
                size: headers.len() + 2,
                headers,
            },
            Box::new(move |t: &Trace| {
                let server = ServerInfo {
                    name: "S".into(),
                    host: "h".into(),
                    id: "I".into(),
                    cluster: None,
                    ver: "2".into(),
                    jetstream: false,
                    flags: 0,
                    seq: 1,
                    time: "now".into(),
                };
                locks::lock(&into).push(t.report(server));
            }),
        );
        trace.ingress(Conn::new(Kind::Route, 3, "S1".into()), "x", None);
        let out = trace.egress_link(Conn::new(Kind::Leaf, 4, "L".into()), b"NATS/1.0\r\n\r\n");
        assert_eq!(&out[..], b"NATS/1.0\r\nNats-Trace-Hop: 2.1\r\n\r\n");
        trace.egress_client(Conn::new(Kind::Client, 5, String::new()), "B", b"x", None);
        drop(trace);
        let sent = locks::lock(&sent);
        assert_eq!(sent.len(), 1);
        let json: serde_json::Value = serde_json::from_slice(&sent[0]).expect("json");
        assert_eq!(json["hops"], 1);
        assert_eq!(json["request"]["header"]["Nats-Trace-Hop"][0], "2");
        let events = json["events"].as_array().expect("events");
        assert_eq!(events[0]["type"], "in");
        assert_eq!(events[1]["hop"], "2.1");
        assert_eq!(events[2]["acc"], "B");
        assert!(events[2].get("name").is_none());
    }
}
