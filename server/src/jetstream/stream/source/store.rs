//! The stream-thread side of mirrors and sources: where each origin resumes, storing
//! what arrives (mirror: under the origin's sequence; source: appended with the
//! `Nats-Stream-Source` header and the source's transform), and the `mirror` /
//! `sources` of `STREAM.INFO`.

use std::time::Instant;

use bytes::Bytes;
use rill_protocol::HeaderMap;
use rill_protocol::jsapi::{ApiError, StreamSource, Timestamp};
use rill_protocol::mapping::SubjectTransform;

use super::status::filter_and_dest;
use super::{Origin, SOURCE_HEADER};
use crate::jetstream::error;
use crate::jetstream::store::{StoreError, now_ns};
use crate::jetstream::stream::core::StreamCore;
use crate::jetstream::stream::counter::{COUNTER_SOURCES, INCR};

/// Where a new consumer on the origin starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resume {
    /// At this origin sequence.
    Seq(u64),
    /// At this time (`opt_start_time`, nothing copied yet).
    Time(Timestamp),
    /// From the origin's first message.
    All,
}

/// A message from the origin's consumer, with what its ack subject tells.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) subject: Bytes,
    pub(crate) headers: Option<Bytes>,
    pub(crate) payload: Bytes,
    /// Origin sequence.
    pub(crate) sseq: u64,
    /// Consumer sequence (gaps mean lost deliveries).
    pub(crate) cseq: u64,
    /// Origin time stamp, ns.
    pub(crate) ts: i64,
    /// Messages still pending at the origin.
    pub(crate) pending: u64,
}

impl Incoming {
    /// Reads `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>` (or the
    /// 12-token form with domain and account hash); `None` for anything else.
    pub(crate) fn parse(
        subject: Bytes,
        reply: Option<&[u8]>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) -> Option<Self> {
        let reply = std::str::from_utf8(reply?).ok()?;
        let toks: Vec<&str> = reply.split('.').collect();
        if toks.len() < 9 || toks[0] != "$JS" || toks[1] != "ACK" {
            return None;
        }
        let at = if toks.len() >= 12 { 4 } else { 2 };
        let num = |i: usize| toks.get(at + i).and_then(|t| t.parse::<u64>().ok());
        Some(Self {
            subject,
            headers,
            payload,
            sseq: num(3)?,
            cseq: num(4)?,
            ts: i64::try_from(num(5)?).unwrap_or(i64::MAX),
            pending: num(6)?,
        })
    }
}

/// The `Nats-Stream-Source` value for a message of `o`:
/// `<origin> <origin seq> <filter> <transform dest> <subject> [<origin identity>]`.
fn source_header(o: &Origin, sseq: u64, subject: &str) -> String {
    let (filter, dest) = filter_and_dest(&o.cfg);
    let name = o.iname.split(' ').next().unwrap_or_default();
    match &o.identity {
        Some(id) => format!("{name} {sseq} {filter} {dest} {subject} {id}"),
        None => format!("{name} {sseq} {filter} {dest} {subject}"),
    }
}

/// What a `Nats-Stream-Source` value tells: index name, origin sequence and the
/// origin's identity (written by nats-server 2.15 and rill; absent from older ones).
#[derive(Debug, PartialEq, Eq)]
struct SourceMark {
    iname: String,
    seq: u64,
    identity: Option<String>,
}

fn parse_source_header(v: &str) -> Option<SourceMark> {
    let f: Vec<&str> = v.split(' ').collect();
    if f.len() < 4 {
        return None;
    }
    Some(SourceMark {
        iname: format!("{} {} {}", f[0], f[2], f[3]),
        seq: f[1].parse().ok()?,
        identity: f.get(5).map(|s| (*s).to_owned()),
    })
}

/// The subject a message from the origin is stored under.
fn transformed(cfg: &StreamSource, subject: &str) -> String {
    for t in &cfg.subject_transforms {
        let Ok(tr) = SubjectTransform::new(&t.src, &t.dest) else {
            continue;
        };
        if let Some(s) = tr.apply_det(subject) {
            return s;
        }
    }
    subject.to_owned()
}

impl StreamCore {
    /// Where `o`'s next consumer starts: after what is stored from it, else the
    /// configured start.
    pub(crate) fn origin_resume(&mut self, o: &Origin) -> Resume {
        let last = if o.mirror {
            Some(self.store.state().last_seq).filter(|&l| l > 0)
        } else {
            self.source_position(&o.iname)
        };
        // 0: the origin was made again (see `same_origin`): its configured start.
        match last.filter(|&seq| seq > 0) {
            Some(seq) => Resume::Seq(seq + 1),
            None if o.cfg.opt_start_seq > 0 => Resume::Seq(o.cfg.opt_start_seq),
            None => o.cfg.opt_start_time.map_or(Resume::All, Resume::Time),
        }
    }

    /// The last origin sequence stored from source `iname`: remembered, or found by
    /// reading the stream backwards for its `Nats-Stream-Source` header.
    fn source_position(&mut self, iname: &str) -> Option<u64> {
        if let Some(seq) = self.origins.by_iname.get(iname).and_then(|s| s.seq) {
            return Some(seq);
        }
        let st = self.store.state();
        let mut seq = st.last_seq;
        while seq >= st.first_seq.max(1) {
            if let Ok(m) = self.store.load(seq) {
                let found = m
                    .headers
                    .as_deref()
                    .and_then(|h| rill_protocol::headers::find(h, SOURCE_HEADER))
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(parse_source_header)
                    .filter(|mark| mark.iname == iname);
                if let Some(mark) = found {
                    let status = self.origins.by_iname.entry(iname.to_owned()).or_default();
                    status.seq = Some(mark.seq);
                    status.identity = mark.identity;
                    return Some(mark.seq);
                }
            }
            seq -= 1;
        }
        None
    }

    /// The origin of source `o` answered its consumer create with `identity`: false
    /// when the position stored belongs to another origin of that name (deleted and
    /// made again, its sequences restarted), which is then forgotten so the next
    /// session starts over, as nats-server 2.15 does; true otherwise.
    pub(crate) fn same_origin(&mut self, o: &Origin, identity: &str) -> bool {
        if o.mirror {
            return true;
        }
        self.source_position(&o.iname);
        let status = self.origins.by_iname.entry(o.iname.clone()).or_default();
        let changed = status.seq.is_some_and(|s| s > 0)
            && status
                .identity
                .as_deref()
                .is_some_and(|known| known != identity);
        if changed {
            status.seq = Some(0);
        }
        status.identity = Some(identity.to_owned());
        !changed
    }

    /// Stores a batch from `o` (and notes the contact); a store error ends the session.
    pub(crate) fn store_from_origin(
        &mut self,
        o: &Origin,
        msgs: Vec<Incoming>,
        heartbeat: bool,
    ) -> Result<(), ApiError> {
        let status = self.origins.by_iname.entry(o.iname.clone()).or_default();
        if heartbeat || !msgs.is_empty() {
            status.active = Some(Instant::now());
            status.error = None;
        }
        for m in msgs {
            let pending = m.pending;
            if o.mirror {
                self.store_mirrored(o, &m)
                    .map_err(|e| error::publish_error(&e))?;
            } else {
                self.store_sourced(o, &m)?;
            }
            let s = self.origins.by_iname.entry(o.iname.clone()).or_default();
            s.lag = pending;
        }
        Ok(())
    }

    fn store_mirrored(&mut self, o: &Origin, m: &Incoming) -> Result<(), StoreError> {
        let last = self.store.state().last_seq;
        if m.sseq <= last {
            return Ok(());
        }
        if m.sseq > last + 1 {
            self.store.skip_msgs(m.sseq - last - 1)?;
        }
        let subject = transformed(&o.cfg, std::str::from_utf8(&m.subject).unwrap_or_default());
        self.append_stored(&subject, m.headers.as_deref(), &m.payload, m.ts)?;
        self.origins
            .by_iname
            .entry(o.iname.clone())
            .or_default()
            .seq = Some(m.sseq);
        Ok(())
    }

    /// Appends a copy from source `o`; a counter stream adds the origin's counter to
    /// the subject's value (`counter`).
    fn store_sourced(&mut self, o: &Origin, m: &Incoming) -> Result<(), ApiError> {
        if self.source_position(&o.iname).is_some_and(|s| m.sseq <= s) {
            return Ok(());
        }
        let orig = std::str::from_utf8(&m.subject).unwrap_or_default();
        let subject = transformed(&o.cfg, orig);
        let mut h = m
            .headers
            .as_deref()
            .and_then(|b| HeaderMap::parse(b).ok())
            .unwrap_or_default();
        // In nats-server's order: Nats-Incr, Nats-Stream-Source, Nats-Counter-Sources.
        let count = if self.cfg.allow_msg_counter {
            let hdrs = m.headers.as_deref();
            let count = self.sourced_count(&o.cfg.name, orig, &subject, hdrs, &m.payload)?;
            h.insert(INCR, count.incr.clone());
            Some(count)
        } else {
            None
        };
        h.insert(SOURCE_HEADER, source_header(o, m.sseq, orig));
        let counted = count.map(|c| {
            h.insert(COUNTER_SOURCES, c.sources);
            c.body
        });
        let payload = counted.as_deref().unwrap_or(&m.payload);
        let headers = h.to_bytes();
        self.append_stored(&subject, Some(&headers), payload, now_ns())
            .map_err(|e| error::publish_error(&e))?;
        self.origins
            .by_iname
            .entry(o.iname.clone())
            .or_default()
            .seq = Some(m.sseq);
        Ok(())
    }
}
