//! Moving a stream to the servers a new `placement` asks for (`STREAM.UPDATE` with
//! other tags or another cluster, issue 21), as nats-server 2.15.1 moves one.
//!
//! Recorded from 2.15.1 (five servers, tags `blue` on n1–n3 and `green` on n3–n5): an
//! update of an R3 stream on n1, n2, n3 from `blue` to `green` is answered at once with
//! the new config; the group then adds the new peers (n4, n5) as learners, catches them
//! up, hands the leadership to a member of the new set (n3), removes n1 and n2, and
//! ends on n3, n4, n5 with every message (about 1.5 s for 200 messages). An R1 stream
//! moves the same way to one fitting server. The servers that fit already stay: only
//! the others are replaced, each by a fitting server that holds no replica.
//!
//! 2.15.1 moves the stream's consumers with it (a durable of an R3 stream ends on the
//! new servers with its pending count). rill's consumer groups do not follow their
//! stream's peers yet, so a stream with consumers is not moved: its update is refused
//! as before (400/10011 `tags placement not supported for operation`, [`has_consumers`]).
//!
//! Here a move is only new `peers` for the assignment ([`peers`]): the servers dropped
//! go to `retiring`, and the group's leader then makes the Raft membership match (adds
//! learners, waits for them to catch up, changes the voters, steps down if it is not
//! among them, retires the others), the machinery that scaling and `PEER.REMOVE` use
//! (`replica::members`).

use rill_protocol::jsapi::Placement;

use super::MetaGroup;
use super::meta::StreamAssignment;

/// Whether the stream of `a` has consumers: replicated ones in the meta group, or
/// `local`ly counted ones (the stream's server runs those of one replica).
pub(super) async fn has_consumers(meta: &MetaGroup, a: &StreamAssignment, local: u64) -> bool {
    let prefix = format!("{}/", a.key());
    local > 0
        || meta
            .sm
            .with(move |m| m.consumers.keys().any(|k| k.starts_with(&prefix)))
            .await
}

/// The peers of a stream of `replicas` replicas moved to `placement`: the current
/// `peers` that fit it (the `leader` first, so that it need not hand over when it
/// stays), then fitting servers that hold no replica of it (neither `peers` nor
/// `retiring`). `None` when too few servers fit.
pub(super) fn peers(
    meta: &MetaGroup,
    peers: &[String],
    retiring: &[String],
    leader: Option<&str>,
    replicas: usize,
    placement: Option<&Placement>,
) -> Option<Vec<String>> {
    let mut kept: Vec<String> = peers
        .iter()
        .filter(|p| meta.fits(std::slice::from_ref(*p), placement))
        .cloned()
        .collect();
    if let Some(i) = leader.and_then(|l| kept.iter().position(|p| p == l)) {
        let leader = kept.remove(i);
        kept.insert(0, leader);
    }
    kept.truncate(replicas);
    while kept.len() < replicas {
        let taken: Vec<String> = kept.iter().chain(peers).chain(retiring).cloned().collect();
        kept.push(meta.spare(&taken, placement)?);
    }
    Some(kept)
}
