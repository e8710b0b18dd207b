//! `$JS.API.DIRECT.GET.<stream>` (JSON request) and `.<stream>.<subject>` (last
//! message on a subject): the stored message is sent back raw with `Nats-Stream`,
//! `Nats-Subject`, `Nats-Sequence` and `Nats-Time-Stamp` headers, or a status
//! (`404 Message Not Found`, `408 Empty Request` / `Malformed Request`). With
//! `batch`, up to that many messages follow with `Nats-Num-Pending` and
//! `Nats-Last-Sequence`, then a `204 EOB` status; `multi_last` sends the last
//! message of each matching subject (as of `up_to_seq`) the same way.

use bytes::{BufMut, Bytes, BytesMut};
use rill_protocol::headers::HeaderMap;
use rill_protocol::jsapi::{ApiSubject, MsgGetRequest, parse_request};

use super::core::StreamCore;
use crate::jetstream::store::StoredMsg;
use crate::jetstream::store::timestamp;

fn status(code: u16, text: &str) -> Bytes {
    HeaderMap::with_status(code, Some(text)).to_bytes()
}

impl StreamCore {
    /// Answers one direct get.
    pub(super) fn direct_get(&mut self, subject: &Bytes, reply: Option<&Bytes>, body: &Bytes) {
        let Some(reply) = reply else { return };
        // The stream subscribes only its own `DIRECT.GET.<name>[.>]`.
        let subject = std::str::from_utf8(subject).unwrap_or_default();
        let last_by_subj = match ApiSubject::parse(subject) {
            Ok(ApiSubject::DirectGet { subject, .. }) => subject,
            _ => None,
        };
        let req = if let Some(subj) = last_by_subj {
            MsgGetRequest {
                last_by_subj: subj.to_owned(),
                ..MsgGetRequest::default()
            }
        } else if body.trim_ascii().is_empty() {
            return self.send_status(reply, 408, "Empty Request");
        } else {
            match parse_request::<MsgGetRequest>(body) {
                Ok(r) => r,
                Err(_) => return self.send_status(reply, 408, "Malformed Request"),
            }
        };
        if !req.multi_last.is_empty() {
            return self.direct_multi_last(reply, &req);
        }
        if req.batch > 0 {
            return self.direct_batch(reply, &req);
        }
        match self.msg_get(&req) {
            Ok(m) => self.send_msg(reply, &m, &[]),
            Err(_) => self.send_status(reply, 404, "Message Not Found"),
        }
    }

    fn send_status(&self, reply: &Bytes, code: u16, text: &str) {
        self.send(reply, Some(&status(code, text)), &Bytes::new());
    }

    /// A batch: each message is loaded and sent in turn (memory bounded by one
    /// message), its `Nats-Num-Pending` counted down from one count of the matching
    /// messages taken before the first is sent: linear in the batch.
    fn direct_batch(&self, reply: &Bytes, req: &MsgGetRequest) {
        let filter = if req.next_by_subj.is_empty() {
            ">"
        } else {
            req.next_by_subj.as_str()
        };
        let limit = usize::try_from(req.batch).unwrap_or(usize::MAX);
        let max_bytes = usize::try_from(req.max_bytes).unwrap_or(usize::MAX);
        let start = req.seq.max(1);
        let Ok(first) = self.store.load_next(start, filter) else {
            return self.send_status(reply, 404, "Message Not Found");
        };
        let mut pending = self.matching_from(first.seq, filter);
        let (mut prev, mut sent, mut bytes) = (0, 0, 0);
        let mut next = Some(first);
        while let Some(m) = next.take() {
            // nats-server counts subject, headers and payload against `max_bytes`.
            let size = m.subject.len() + m.payload.len() + m.headers.as_ref().map_or(0, Bytes::len);
            if max_bytes > 0 && sent > 0 && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            sent += 1;
            pending = pending.saturating_sub(1);
            let extra = [
                ("Nats-Num-Pending", pending.to_string()),
                ("Nats-Last-Sequence", prev.to_string()),
            ];
            prev = m.seq;
            self.send_msg(reply, &m, &extra);
            if sent < limit {
                next = self.store.load_next(prev + 1, filter).ok();
            }
        }
        let mut eob = HeaderMap::with_status(204, Some("EOB"));
        eob.insert("Nats-Num-Pending", pending.to_string());
        eob.insert("Nats-Last-Sequence", prev.to_string());
        self.send(reply, Some(&eob.to_bytes()), &Bytes::new());
    }

    /// Messages matching `filter` at or after `start`: from the per-subject counts,
    /// scanning only subjects that have messages on both sides of `start`.
    fn matching_from(&self, start: u64, filter: &str) -> u64 {
        if filter == ">" {
            let st = self.store.state();
            if start <= st.first_seq {
                return st.msgs;
            }
            let gaps = self.store.deleted().iter().filter(|&&d| d >= start).count();
            return (st.last_seq + 1)
                .saturating_sub(start)
                .saturating_sub(gaps as u64);
        }
        let mut n = 0;
        for (subject, st) in self.store.subjects(filter) {
            if st.first >= start {
                n += st.msgs;
            } else if st.last >= start {
                let mut seq = start;
                while let Ok(m) = self.store.load_next(seq, &subject) {
                    n += 1;
                    seq = m.seq + 1;
                }
            }
        }
        n
    }

    /// `multi_last`: the last message of every subject matching the filters, as of
    /// `up_to_seq` (default: now), in sequence order, then `204 EOB`.
    fn direct_multi_last(&self, reply: &Bytes, req: &MsgGetRequest) {
        let up_to = if req.up_to_seq > 0 {
            req.up_to_seq
        } else {
            self.store.state().last_seq
        };
        let mut seqs: Vec<u64> = req
            .multi_last
            .iter()
            .flat_map(|f| self.store.subjects(f))
            .filter_map(|(subject, st)| self.last_at_or_below(&subject, st.first, st.last, up_to))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        if seqs.is_empty() {
            return self.send_status(reply, 404, "Message Not Found");
        }
        let mut prev = 0;
        for (i, &seq) in seqs.iter().enumerate() {
            let Ok(m) = self.store.load(seq) else {
                continue;
            };
            let extra = [
                ("Nats-Num-Pending", (seqs.len() - i - 1).to_string()),
                ("Nats-Last-Sequence", prev.to_string()),
            ];
            prev = seq;
            self.send_msg(reply, &m, &extra);
        }
        let mut eob = HeaderMap::with_status(204, Some("EOB"));
        eob.insert("Nats-Num-Pending", "0");
        eob.insert("Nats-Last-Sequence", prev.to_string());
        eob.insert("Nats-UpTo-Sequence", up_to.to_string());
        self.send(reply, Some(&eob.to_bytes()), &Bytes::new());
    }

    /// The newest sequence of `subject` that is at most `up_to`.
    fn last_at_or_below(&self, subject: &str, first: u64, last: u64, up_to: u64) -> Option<u64> {
        if last <= up_to {
            return Some(last);
        }
        let mut found = None;
        let mut seq = first;
        while let Ok(m) = self.store.load_next(seq, subject) {
            if m.seq > up_to {
                break;
            }
            found = Some(m.seq);
            seq = m.seq + 1;
        }
        found
    }

    fn send_msg(&self, reply: &Bytes, m: &StoredMsg, extra: &[(&str, String)]) {
        let mut h = BytesMut::with_capacity(128 + m.headers.as_ref().map_or(0, Bytes::len));
        match &m.headers {
            Some(block) if block.ends_with(b"\r\n\r\n") => h.put_slice(&block[..block.len() - 2]),
            _ => h.put_slice(b"NATS/1.0\r\n"),
        }
        let seq = m.seq.to_string();
        let time = timestamp(m.ts).to_string();
        let name = self.name.as_str();
        let fields = [
            ("Nats-Stream", name),
            ("Nats-Subject", m.subject_str()),
            ("Nats-Sequence", seq.as_str()),
            ("Nats-Time-Stamp", time.as_str()),
        ];
        let extra = extra.iter().map(|(k, v)| (*k, v.as_str()));
        for (k, v) in fields.into_iter().chain(extra) {
            h.put_slice(k.as_bytes());
            h.put_slice(b": ");
            h.put_slice(v.as_bytes());
            h.put_slice(b"\r\n");
        }
        h.put_slice(b"\r\n");
        self.send(reply, Some(&h.freeze()), &m.payload);
    }
}
