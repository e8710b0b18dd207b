//! A stream group's state machine: committed entries go into the stream's store, in log
//! order ([`super::entry`]); its snapshot is the stream's position, and installing one
//! copies what the member lacks ([`super::catchup`]).
//!
//! A store behind the group's own snapshot when the group opens (emptied because it
//! was damaged, or its tail lost) is refilled up to the snapshot from the other
//! members before any entry is applied ([`StreamMachine::pending`]): applying the
//! entries after the snapshot to a shorter store would give them other sequences.

use std::io;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::catchup;
use super::entry::{Entry, apply_entry, decode};
use crate::jetstream::stream::{StreamCore, StreamHandle};
use crate::raft::Machine;

/// A stream group's machine: committed entries go into the stream's store; its
/// snapshot is the stream's position ([`catchup`]).
pub(super) struct StreamMachine {
    pub(super) handle: StreamHandle,
    pub(super) source: catchup::Source,
    /// The group's own snapshot, when the store was found behind it at open: caught up
    /// to before the first entry is applied ([`Machine::resume`], or the first apply).
    pub(super) pending: Option<catchup::Snapshot>,
}

impl StreamMachine {
    /// Refills the store up to the snapshot it was found behind, if any.
    async fn catch_up_pending(&mut self) -> io::Result<()> {
        if let Some(snap) = self.pending {
            catchup::catch_up(&self.handle, &self.source, snap).await?;
            self.pending = None;
        }
        Ok(())
    }
}

impl Machine for StreamMachine {
    fn apply(&mut self, batch: Vec<(u64, Bytes)>) -> BoxFuture<'_, io::Result<Vec<Bytes>>> {
        let entries: Vec<Option<Entry>> = batch.into_iter().map(|(_, b)| decode(b)).collect();
        Box::pin(async move {
            self.catch_up_pending().await?;
            let answers = self
                .handle
                .call(move |core| {
                    Ok(entries
                        .into_iter()
                        .map(|e| e.and_then(|e| apply_entry(core, e)).unwrap_or_default())
                        .collect::<Vec<Bytes>>())
                })
                .await
                .map_err(|e| io::Error::other(e.description))?;
            Ok(answers)
        })
    }

    fn snapshot(&mut self) -> BoxFuture<'_, io::Result<Bytes>> {
        Box::pin(async move {
            let position = self
                .handle
                .call(StreamCore::durable_position)
                .await
                .map_err(|e| io::Error::other(e.description))?;
            let snap = catchup::Snapshot::from(position);
            Ok(Bytes::from(serde_json::to_vec(&snap)?))
        })
    }

    fn restore(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        // The snapshot was taken from this store after a sync: the store holds it,
        // unless it was emptied for damage or lost its tail since.
        Box::pin(async move {
            let snap: catchup::Snapshot = serde_json::from_slice(&data)?;
            let last = self.handle.state().await.map_or(0, |s| s.last_seq);
            if catchup::behind(last, snap, self.handle.name().as_str()) {
                self.pending = Some(snap);
            }
            Ok(())
        })
    }

    fn install(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            let snap: catchup::Snapshot = serde_json::from_slice(&data)?;
            catchup::catch_up(&self.handle, &self.source, snap).await?;
            self.pending = None;
            Ok(())
        })
    }

    fn resume(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.catch_up_pending())
    }
}
