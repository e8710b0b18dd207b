//! Snapshots of a stream's group and the catch-up of a replica from one (issue 20).
//!
//! A stream group's log entries are its messages, and every member already keeps them
//! in its stream's store, so the group's snapshot is only the stream's **position**
//! ([`Snapshot`]: first and last sequence, taken after the store was synced). Once a
//! snapshot is taken openraft purges the log entries it covers (`raft::log`), so the
//! log stays about [`SNAPSHOT_EVERY`] entries long, on disk and in its index.
//!
//! A member that needs entries the leader has purged (it was down while they were
//! written and compacted, or its store and log were wiped) is sent the leader's
//! snapshot instead. Installing it ([`catch_up`]) makes the replica's store hold what
//! the leader's holds up to the snapshot's last sequence, asking a member (the leader
//! first) for chunks of at most [`CHUNK_MSGS`] messages and [`CHUNK_BYTES`] bytes
//! (`$NRG.<to>.<group>.CATCHUP`, [`serve`]), so memory stays bounded whatever the
//! stream holds:
//! 1. messages below the leader's first sequence are removed (its purges);
//! 2. of the sequences the replica already holds, the ones the leader no longer has are
//!    removed (its deletes), comparing sequence lists only;
//! 3. the messages after the replica's last sequence are copied, each at its own
//!    sequence and with its original time (gaps stay gaps);
//! 4. the stream's derived state (duplicate window, TTL and schedule timers) is
//!    rebuilt from the store.
//!
//! openraft applies the entries after the snapshot only once the install returned.
//! Reading the leader's *current* store may remove early what a later entry removes
//! (a delete or purge after the snapshot): applying that entry again changes nothing,
//! so the replica ends as the leader. While a replica installs, the leader answers the
//! stream's requests as always ([`super::super::forward`]); the installing member is a
//! follower and answers none itself.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::super::MetaGroup;
use super::super::transport::RouteTransport;
use super::entry::{Entry, decode, encode};
use crate::jetstream::store::StoredMsg;
use crate::jetstream::stream::{Position, StreamHandle};
use crate::raft::Raft;

/// Snapshot a stream's group every this many applied entries.
pub(super) const SNAPSHOT_EVERY: u64 = 1024;
/// Messages in one catch-up chunk at most.
const CHUNK_MSGS: usize = 1024;
/// Bytes of messages in one catch-up chunk at most (one more message may cross it).
const CHUNK_BYTES: usize = 256 * 1024;
/// Sequences listed in one chunk of a comparison (no messages).
const CHUNK_SEQS: usize = 16 * 1024;
/// How long one chunk may take.
const CHUNK_WAIT: Duration = Duration::from_secs(5);
/// How long a catch-up keeps asking before it gives up (the group then stops).
const CATCH_UP_WAIT: Duration = Duration::from_secs(120);

/// A stream group's snapshot: the stream's position once applied up to the
/// snapshot's log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Snapshot {
    /// The first sequence held.
    pub(super) first_seq: u64,
    /// The last sequence assigned.
    pub(super) last_seq: u64,
}

impl From<Position> for Snapshot {
    fn from(p: Position) -> Self {
        Snapshot {
            first_seq: p.first_seq,
            last_seq: p.last_seq,
        }
    }
}

/// One catch-up read: the leader's messages (or only their sequences) from `from`
/// through `upto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Ask {
    from: u64,
    upto: u64,
    /// Sequences only (comparing what the replica already holds).
    seqs_only: bool,
}

/// A catch-up read's answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Chunk {
    /// The member's first sequence.
    first_seq: u64,
    /// The member's last sequence (a member behind the range cannot serve it).
    last_seq: u64,
    /// Where the next read starts (past `upto`: the range is done).
    next: u64,
    /// The sequences held in `from..next`, ascending.
    seqs: Vec<u64>,
    /// Their messages (empty for `seqs_only`).
    msgs: Vec<StoredMsg>,
}

/// `[first_seq u64][last_seq u64][next u64][count u32]`, then per message `[seq u64][entry len u32]
/// [entry]` (the entry as the group's log encodes a message; length 0 for sequences
/// only), little-endian.
fn encode_chunk(c: &Chunk) -> Bytes {
    let mut b = BytesMut::with_capacity(28 + c.seqs.len() * 12);
    b.put_u64_le(c.first_seq);
    b.put_u64_le(c.last_seq);
    b.put_u64_le(c.next);
    b.put_u32_le(u32::try_from(c.seqs.len()).unwrap_or(u32::MAX));
    for (i, seq) in c.seqs.iter().enumerate() {
        b.put_u64_le(*seq);
        match c.msgs.get(i) {
            Some(m) => {
                let e = encode(m.ts, &m.subject, m.headers.as_deref(), &m.payload);
                b.put_u32_le(u32::try_from(e.len()).unwrap_or(u32::MAX));
                b.put_slice(&e);
            }
            None => b.put_u32_le(0),
        }
    }
    b.freeze()
}

fn decode_chunk(mut raw: Bytes) -> Option<Chunk> {
    if raw.len() < 28 {
        return None;
    }
    let first_seq = raw.get_u64_le();
    let last_seq = raw.get_u64_le();
    let next = raw.get_u64_le();
    let n = raw.get_u32_le();
    let mut c = Chunk {
        first_seq,
        last_seq,
        next,
        ..Chunk::default()
    };
    for _ in 0..n {
        if raw.len() < 12 {
            return None;
        }
        let seq = raw.get_u64_le();
        let len = raw.get_u32_le() as usize;
        c.seqs.push(seq);
        if len == 0 {
            continue;
        }
        if raw.len() < len {
            return None;
        }
        let Some(Entry::Msg {
            ts,
            subject,
            headers,
            payload,
        }) = decode(raw.split_to(len))
        else {
            return None;
        };
        c.msgs.push(StoredMsg {
            seq,
            ts,
            subject,
            headers,
            payload,
        });
    }
    Some(c)
}

/// Reads the chunk `ask` wants from `handle`'s store.
async fn read(handle: &StreamHandle, ask: Ask) -> Option<Chunk> {
    handle
        .call(move |core| {
            let st = core.store().state();
            let (max_msgs, max_bytes) = if ask.seqs_only {
                (CHUNK_SEQS, usize::MAX)
            } else {
                (CHUNK_MSGS, CHUNK_BYTES)
            };
            let (msgs, next) = core.read_range(ask.from, ask.upto, max_msgs, max_bytes)?;
            let seqs = msgs.iter().map(|m| m.seq).collect();
            let msgs = if ask.seqs_only { Vec::new() } else { msgs };
            Ok(Chunk {
                first_seq: st.first_seq,
                last_seq: st.last_seq,
                next,
                seqs,
                msgs,
            })
        })
        .await
        .ok()
}

/// The transport's hook: a catch-up read for `group` from this server's replica (any
/// member answers; the installing member asks the leader first). Empty: no replica
/// here, or a request that does not parse.
pub(in crate::jetstream::cluster) async fn serve(
    meta: Arc<MetaGroup>,
    group: String,
    body: Bytes,
) -> Bytes {
    let Ok(ask) = serde_json::from_slice::<Ask>(&body) else {
        return Bytes::new();
    };
    let map = meta.replicas.map.lock().await;
    let handle = map
        .values()
        .find(|r| r.group() == group)
        .map(|r| r.handle.clone());
    drop(map);
    match handle {
        Some(h) => read(&h, ask)
            .await
            .map_or_else(Bytes::new, |c| encode_chunk(&c)),
        None => Bytes::new(),
    }
}

/// Where a replica's catch-up reads go: its group's members over the route transport,
/// the leader first (set once the group's Raft runs).
#[derive(Clone, Default)]
pub(super) struct Source {
    inner: Arc<OnceLock<Members>>,
}

/// The group's Raft (for its membership and leader), the transport, the group's
/// name and this server's.
type Members = (Raft, Arc<RouteTransport>, String, String);

impl Source {
    /// Reads go to `group`'s members as `raft` knows them (`me` is skipped).
    pub(super) fn set(&self, raft: Raft, transport: Arc<RouteTransport>, group: &str, me: &str) {
        let _ = self
            .inner
            .set((raft, transport, group.to_string(), me.to_string()));
    }

    /// The members to ask, the leader first.
    fn members(&self) -> Vec<String> {
        let Some((raft, _, _, me)) = self.inner.get() else {
            return Vec::new();
        };
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let name = |id: &u64| membership.get_node(id).map(|n| n.addr.clone());
        let leader = m.current_leader.as_ref().and_then(name);
        let mut out: Vec<String> = leader.into_iter().collect();
        for (_, n) in membership.nodes() {
            if !out.contains(&n.addr) {
                out.push(n.addr.clone());
            }
        }
        out.retain(|n| n != me);
        out
    }

    /// One chunk, from the first member that answers (retried, with a pause between
    /// rounds, until [`CATCH_UP_WAIT`] ran out).
    async fn fetch(&self, ask: Ask, deadline: tokio::time::Instant) -> io::Result<Chunk> {
        let Some((_, transport, group, _)) = self.inner.get() else {
            return Err(io::Error::other("catch-up before the group runs"));
        };
        let body = Bytes::from(serde_json::to_vec(&ask).map_err(io::Error::other)?);
        loop {
            for to in self.members() {
                let call = transport.call_catchup(&to, group, body.clone(), CHUNK_WAIT);
                if let Ok(raw) = call.await
                    && let Some(chunk) = decode_chunk(raw)
                    && chunk.last_seq >= ask.upto
                {
                    return Ok(chunk);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(io::Error::other("no member answered a catch-up read"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Makes `handle`'s store hold what the group's members hold up to `snap`'s last
/// sequence (see the module doc).
///
/// # Errors
/// No member answered in time; the store failed.
pub(super) async fn catch_up(
    handle: &StreamHandle,
    source: &Source,
    snap: Snapshot,
) -> io::Result<()> {
    let fail = |e: rill_protocol::jsapi::ApiError| io::Error::other(e.description);
    let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
    let here = handle.state().await.map_err(fail)?;
    let (mut copied, started) = (0u64, std::time::Instant::now());
    // 1 and 2: what the replica holds, compared.
    let mut cursor = here.first_seq;
    let held_upto = here.last_seq.min(snap.last_seq);
    let mut trimmed = false;
    while cursor <= held_upto || !trimmed {
        let ask = Ask {
            from: cursor,
            upto: held_upto,
            seqs_only: true,
        };
        let chunk = source.fetch(ask, deadline).await?;
        let first = chunk.first_seq.min(snap.last_seq + 1);
        let next = chunk.next;
        handle
            .call(move |core| {
                core.catch_up_trim(first)?;
                core.catch_up_keep(cursor, next, &chunk.seqs)
            })
            .await
            .map_err(fail)?;
        trimmed = true;
        cursor = next.max(cursor + 1);
    }
    // 3: what it lacks.
    let mut cursor = handle.state().await.map_err(fail)?.last_seq + 1;
    while cursor <= snap.last_seq {
        let ask = Ask {
            from: cursor,
            upto: snap.last_seq,
            seqs_only: false,
        };
        let chunk = source.fetch(ask, deadline).await?;
        let first = chunk.first_seq.min(snap.last_seq + 1);
        let next = chunk.next;
        copied += chunk.msgs.len() as u64;
        handle
            .call(move |core| {
                core.catch_up_trim(first)?;
                chunk.msgs.iter().try_for_each(|m| core.catch_up_put(m))
            })
            .await
            .map_err(fail)?;
        cursor = next.max(cursor + 1);
    }
    // 4: the tail's gaps and the derived state.
    let last = snap.last_seq;
    handle
        .call(move |core| core.catch_up_done(last))
        .await
        .map_err(fail)?;
    info!(
        stream = %handle.name(),
        copied,
        last_seq = snap.last_seq,
        took = ?started.elapsed(),
        "stream replica caught up from a snapshot"
    );
    Ok(())
}

/// Whether a replica's store (at `handle_last`) is behind its own snapshot (emptied
/// for damage, or its tail lost): the entries in between are gone from the log, and
/// only the other members bring them back (logged).
pub(super) fn behind(handle_last: u64, snap: Snapshot, stream: &str) -> bool {
    let behind = handle_last < snap.last_seq;
    if behind {
        warn!(
            stream,
            store = handle_last,
            snapshot = snap.last_seq,
            "stream replica's store is behind its snapshot: refilled from its group"
        );
    }
    behind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip() {
        let msg = |seq| StoredMsg {
            seq,
            ts: 100 + i64::try_from(seq).expect("small"),
            subject: Bytes::from(format!("s.{seq}")),
            headers: (seq % 2 == 0).then(|| Bytes::from_static(b"NATS/1.0\r\nA: b\r\n\r\n")),
            payload: Bytes::from(vec![b'x'; usize::try_from(seq).expect("small")]),
        };
        let full = Chunk {
            first_seq: 3,
            last_seq: 9,
            next: 9,
            seqs: vec![3, 5, 8],
            msgs: vec![msg(3), msg(5), msg(8)],
        };
        assert_eq!(decode_chunk(encode_chunk(&full)), Some(full));
        let bare = Chunk {
            first_seq: 1,
            last_seq: 20,
            next: 17,
            seqs: vec![1, 2, 16],
            msgs: Vec::new(),
        };
        assert_eq!(decode_chunk(encode_chunk(&bare)), Some(bare));
        assert_eq!(decode_chunk(Bytes::from_static(b"short")), None);
    }
}
