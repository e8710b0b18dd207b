//! Raft consensus for replicated JetStream, on openraft (the 0.9 line, storage v2).
//!
//! This module owns the engine-facing half of clustering: the types openraft is
//! instantiated with, the durable log ([`log::LogStore`]), the adaptor from openraft's
//! state-machine trait to a group's own [`Machine`] ([`machine::MachineStore`]), and
//! the network ([`net`]) that carries openraft's three RPCs (append, vote, snapshot)
//! over any [`Transport`]. What a group *does* with its committed entries (stream
//! assignments for the meta group, messages for a stream's group) lives with its
//! [`Machine`]; this module knows nothing of streams.
//!
//! # One group
//! ```text
//!  propose(cmd) ──► openraft core (leader) ──append──► LogStore: write record, queue callback
//!                        │                               └─► flusher thread: one fsync for
//!                        │                                   everything queued, then callbacks
//!                        ├──AppendEntries over Transport──► followers' LogStore (same path)
//!                        │◄── success once *their* fsync completed
//!                        ▼ quorum has it on disk → committed
//!                   MachineStore::apply ──► Machine::apply (every member, in log order)
//!                        ▼
//!                   propose() returns the leader's Machine response
//! ```
//! A follower answers an append only after openraft saw its `LogFlushed` callback, and
//! the callback fires after `fsync` (group commit: one fsync covers every append queued
//! while the previous one ran). So "committed" means "on disk on a quorum", rill's
//! durable default extended to the cluster.
//!
//! # Durability and memory
//! - The log is one append-only file of checksummed records (entry, truncate, purge);
//!   a torn tail from a crash is cut at the first bad record on open. Memory holds an
//!   index (offset and length per entry), not the entries.
//! - The vote is written to its own file, fsynced and renamed into place before
//!   openraft is told it is saved.
//! - Snapshots are the [`Machine`]'s own bytes, written to a file in the group's
//!   directory; after one is taken openraft purges the log behind it and the log file
//!   is rewritten without the purged entries once they are most of it.
//!
//! # Identity
//! A node id is a stable hash of the server's `server_name` ([`node_id`]), and the
//! node's address is the name itself, so a restarted server keeps its place in every
//! group (nats-server also requires `server_name` for a JetStream cluster).

pub mod log;
pub mod machine;
pub mod net;
#[cfg(test)]
mod tests;

use std::io::Cursor;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use self::log::LogStore;
pub use self::machine::{Machine, MachineStore};
pub use self::net::{Network, ProposeError, Rpc, Transport, propose, serve};

/// A command proposed to a group: opaque bytes its [`Machine`] understands. Serialized
/// as base64 inside the JSON records of the log and the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command(pub Bytes);

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        Ok(Command(Bytes::from(raw)))
    }
}

openraft::declare_raft_types!(
    /// The openraft instantiation every rill group uses.
    pub TypeConfig:
        D = Command,
        R = Command,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A group's openraft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log position.
pub type LogId = openraft::LogId<u64>;
/// A vote.
pub type Vote = openraft::Vote<u64>;
/// An error from storage, as openraft wants it.
pub type StorageError = openraft::StorageError<u64>;

/// The stable node id of a server: FNV-1a of its `server_name`, never 0.
pub fn node_id(server_name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in server_name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// openraft's timing for rill's groups: heartbeats every 200 ms, elections after
/// 1–2 s of silence (nats-server's range is similar), snapshots every `snapshot_every`
/// applied entries (0: only on request).
///
/// # Errors
/// When openraft rejects the values (it does not for these).
pub fn config(cluster: &str, snapshot_every: u64) -> Result<openraft::Config, String> {
    let policy = if snapshot_every == 0 {
        openraft::SnapshotPolicy::Never
    } else {
        openraft::SnapshotPolicy::LogsSinceLast(snapshot_every)
    };
    openraft::Config {
        cluster_name: cluster.to_string(),
        heartbeat_interval: 200,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        snapshot_policy: policy,
        max_in_snapshot_log_to_keep: 64,
        // Sending a snapshot includes installing it, and a stream's install fetches
        // the messages its replica lacks (in chunks): give it time. A timed-out send is
        // retried, and the retry finds the snapshot installed or being installed.
        install_snapshot_timeout: 10_000,
        ..Default::default()
    }
    .validate()
    .map_err(|e| e.to_string())
}
