//! A replicated stream's log entries: a message or a [`StreamOp`] (purge, delete,
//! timers), encoded little-endian, and how one applies to the member's [`StreamCore`]
//! ([`apply_entry`]; the group's machine, [`super::machine`], applies them in log order).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rill_protocol::jsapi::{ApiError, MsgDeleteRequest, StreamPurgeRequest};
use serde::{Deserialize, Serialize};

use super::clustered_delete_error;
use crate::jetstream::stream::StreamCore;

/// A change to a replicated stream other than a message, proposed by the API on the
/// leader and applied by every member in log order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamOp {
    /// `STREAM.PURGE` (filter, keep, seq).
    Purge(StreamPurgeRequest),
    /// `STREAM.MSG.DELETE`.
    Delete(MsgDeleteRequest),
    /// The stream's timers (message expiry, TTLs, delete markers, schedules) as of the
    /// entry's time: proposed by the leader's [`timers_while_leader`] when one is due.
    Timers,
}

/// What applying a [`StreamOp`] gave: messages purged, or the error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpAnswer {
    /// Messages removed (0 for a delete).
    #[serde(default)]
    pub purged: u64,
    /// Why it was refused.
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// The subject length that marks an entry holding a [`StreamOp`].
const OP_MARKER: u32 = u32::MAX;

/// One entry of a stream's log, little-endian: a message is `[ts i64][subject len
/// u32][headers len u32, u32::MAX for none][subject][headers][payload]`; a
/// [`StreamOp`] is `[ts i64][u32::MAX][0 u32][op JSON]`.
pub(super) fn encode(ts: i64, subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> Bytes {
    let hlen = headers.map_or(0, <[u8]>::len);
    let mut b = BytesMut::with_capacity(16 + subject.len() + hlen + payload.len());
    b.put_i64_le(ts);
    b.put_u32_le(u32::try_from(subject.len()).unwrap_or(u32::MAX - 1));
    b.put_u32_le(headers.map_or(u32::MAX, |h| u32::try_from(h.len()).unwrap_or(0)));
    b.put_slice(subject);
    b.put_slice(headers.unwrap_or_default());
    b.put_slice(payload);
    b.freeze()
}

pub(super) fn encode_op(ts: i64, op: &StreamOp) -> Bytes {
    let json = serde_json::to_vec(op).unwrap_or_default();
    let mut b = BytesMut::with_capacity(16 + json.len());
    b.put_i64_le(ts);
    b.put_u32_le(OP_MARKER);
    b.put_u32_le(0);
    b.put_slice(&json);
    b.freeze()
}

/// A decoded entry.
pub(super) enum Entry {
    Msg {
        ts: i64,
        subject: Bytes,
        headers: Option<Bytes>,
        payload: Bytes,
    },
    Op {
        ts: i64,
        op: StreamOp,
    },
}

pub(super) fn decode(mut raw: Bytes) -> Option<Entry> {
    if raw.len() < 16 {
        return None;
    }
    let ts = raw.get_i64_le();
    let slen = raw.get_u32_le();
    let hlen = raw.get_u32_le();
    if slen == OP_MARKER {
        let op = serde_json::from_slice(&raw).ok()?;
        return Some(Entry::Op { ts, op });
    }
    let subject = raw.split_to((slen as usize).min(raw.len()));
    let headers = match hlen {
        u32::MAX => None,
        n => Some(raw.split_to((n as usize).min(raw.len()))),
    };
    Some(Entry::Msg {
        ts,
        subject,
        headers,
        payload: raw,
    })
}

/// Applies one committed entry to the stream; its answer (empty: none, an entry
/// applied before a restart).
pub(super) fn apply_entry(core: &mut StreamCore, entry: Entry) -> Option<Bytes> {
    match entry {
        Entry::Msg {
            ts,
            subject,
            headers,
            payload,
        } => {
            let ack = core.apply_replicated(&subject, headers.as_deref(), &payload, ts)?;
            serde_json::to_vec(&ack).ok().map(Bytes::from)
        }
        // An op at or before the last stored message was applied before a restart
        // (every later entry has a later time); one after it is applied again, which
        // leaves the state as it is.
        Entry::Op { ts, .. } if ts <= core.store().state().last_ts => None,
        Entry::Op { ts, op } => {
            let done = match op {
                StreamOp::Timers => {
                    core.run_timers_at(ts);
                    Ok(0)
                }
                StreamOp::Purge(req) => core.purge(&req),
                StreamOp::Delete(req) => core
                    .delete_msg(req.seq, req.no_erase)
                    .map(|()| 0)
                    .map_err(|e| clustered_delete_error(e, req.seq)),
            };
            let answer = match done {
                Ok(purged) => OpAnswer {
                    purged,
                    error: None,
                },
                Err(e) => OpAnswer {
                    purged: 0,
                    error: Some(e),
                },
            };
            serde_json::to_vec(&answer).ok().map(Bytes::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let raw = encode(42, b"orders.1", Some(b"NATS/1.0\r\n\r\n"), b"hello");
        let Some(Entry::Msg {
            ts,
            subject,
            headers,
            payload,
        }) = decode(raw)
        else {
            panic!("a message entry");
        };
        assert_eq!(ts, 42);
        assert_eq!(&subject[..], b"orders.1");
        assert_eq!(headers.as_deref(), Some(&b"NATS/1.0\r\n\r\n"[..]));
        assert_eq!(&payload[..], b"hello");
        let Some(Entry::Msg {
            headers, payload, ..
        }) = decode(encode(7, b"a", None, b""))
        else {
            panic!("a message entry");
        };
        assert!(headers.is_none());
        assert!(payload.is_empty());
        assert!(decode(Bytes::from_static(b"short")).is_none());
        let purge = StreamOp::Purge(StreamPurgeRequest {
            filter: "a.>".into(),
            keep: 2,
            ..StreamPurgeRequest::default()
        });
        let Some(Entry::Op { ts, op }) = decode(encode_op(9, &purge)) else {
            panic!("an op entry");
        };
        assert_eq!((ts, op), (9, purge));
    }
}
