//! The adaptor from openraft's state-machine trait to a group's [`Machine`]: applies
//! committed entries in log order, tracks the applied log id and membership, and keeps
//! the group's snapshot (the machine's bytes) in a file.
//!
//! Applied state is not persisted entry by entry: after a restart openraft re-applies
//! the log from the last snapshot, so a [`Machine`] must either rebuild its state from
//! the log (the meta group's assignments) or skip entries it already holds (a stream
//! skips messages at or below its stored watermark). The snapshot file,
//! `snapshot` = `[meta length u32 LE][meta JSON][machine bytes]`, is written to
//! `snapshot.tmp`, fsynced and renamed, so a crash leaves the old one or the new one.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError, StoredMembership,
};
use tokio::sync::Mutex;

use super::{Command, Entry, LogId, StorageError, TypeConfig};
use crate::jetstream::store::SharedVfs;

const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";

/// What a group does with its committed commands.
pub trait Machine: Send + Sync + 'static {
    /// Applies committed commands `(log index, bytes)` in order and answers each; the
    /// leader's answers go back to the proposers. Must be deterministic: every member
    /// applies the same commands to the same state.
    ///
    /// # Errors
    /// A failure that leaves the machine unable to continue (disk); openraft stops the
    /// group.
    fn apply(&mut self, batch: Vec<(u64, Bytes)>) -> BoxFuture<'_, io::Result<Vec<Bytes>>>;
    /// The machine's state, for a snapshot.
    ///
    /// # Errors
    /// When the state cannot be read.
    fn snapshot(&mut self) -> BoxFuture<'_, io::Result<Bytes>>;
    /// Replaces the machine's state with the bytes of its own snapshot, read back from
    /// the group's directory when the group opens.
    ///
    /// # Errors
    /// Bytes that do not parse; I/O errors.
    fn restore(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>>;
    /// Installs a snapshot the group's leader sent (this member missed the entries it
    /// covers); by default as [`Machine::restore`]. A machine whose state lives
    /// outside the snapshot's bytes (a stream's messages) fetches what it lacks here;
    /// openraft applies no later entry before this returns.
    ///
    /// # Errors
    /// As [`Machine::restore`]; a failure stops the group.
    fn install(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        self.restore(data)
    }
    /// Runs once the group's Raft runs, before anything else reaches the machine: a
    /// machine whose state lags its own snapshot (a stream store emptied for damage)
    /// fetches what it lacks here. Nothing by default.
    ///
    /// # Errors
    /// As [`Machine::install`].
    fn resume(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

type Meta = SnapshotMeta<u64, BasicNode>;

struct Inner<M> {
    machine: M,
    applied: Option<LogId>,
    membership: StoredMembership<u64, BasicNode>,
    snapshot: Option<(Meta, Bytes)>,
    vfs: SharedVfs,
    dir: PathBuf,
    built: u64,
}

/// openraft's state machine for one group; clones share it (the snapshot builder is a
/// clone).
pub struct MachineStore<M> {
    inner: Arc<Mutex<Inner<M>>>,
    /// A snapshot from the leader is being installed (a catch-up).
    installing: Arc<AtomicBool>,
}

impl<M> Clone for MachineStore<M> {
    fn clone(&self) -> Self {
        MachineStore {
            inner: self.inner.clone(),
            installing: self.installing.clone(),
        }
    }
}

impl<M> std::fmt::Debug for MachineStore<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineStore").finish_non_exhaustive()
    }
}

fn sm_err(e: &io::Error) -> StorageError {
    StorageIOError::write_state_machine(e).into()
}

fn snap_err(e: &io::Error) -> StorageError {
    StorageIOError::write_snapshot(None, e).into()
}

impl<M: Machine> MachineStore<M> {
    /// Wraps `machine`, restoring it from the snapshot in `dir` when there is one.
    ///
    /// # Errors
    /// A snapshot that does not parse; I/O errors.
    pub async fn open(vfs: SharedVfs, dir: &Path, mut machine: M) -> io::Result<Self> {
        super::log::make_dir(&vfs, dir)?;
        let mut snapshot = None;
        let (mut applied, mut membership) = (None, StoredMembership::default());
        match vfs.read_file(&dir.join(SNAPSHOT)) {
            Ok(raw) => {
                let (meta, data) = decode_snapshot(&raw)?;
                machine.restore(data.clone()).await?;
                applied = meta.last_log_id;
                membership = meta.last_membership.clone();
                snapshot = Some((meta, data));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let inner = Inner {
            machine,
            applied,
            membership,
            snapshot,
            vfs,
            dir: dir.to_path_buf(),
            built: 0,
        };
        Ok(MachineStore {
            inner: Arc::new(Mutex::new(inner)),
            installing: Arc::default(),
        })
    }

    /// Whether the machine is installing a snapshot the leader sent (`/healthz`: the
    /// member is catching up).
    pub fn installing(&self) -> bool {
        self.installing.load(Ordering::SeqCst)
    }

    /// Runs the machine's [`Machine::resume`], shown as a snapshot install (`/healthz`:
    /// catching up) while it runs; openraft applies nothing meanwhile.
    ///
    /// # Errors
    /// As [`Machine::resume`].
    pub async fn resume(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().await;
        self.installing.store(true, Ordering::SeqCst);
        let resumed = inner.machine.resume().await;
        self.installing.store(false, Ordering::SeqCst);
        resumed
    }

    /// Runs `f` on the machine (reads for reports and tests).
    pub async fn with<T>(&self, f: impl FnOnce(&mut M) -> T) -> T {
        f(&mut self.inner.lock().await.machine)
    }
}

fn decode_snapshot(raw: &[u8]) -> io::Result<(Meta, Bytes)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "raft snapshot file is damaged");
    let (len, rest) = raw.split_at_checked(4).ok_or_else(bad)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
    let (meta, data) = rest.split_at_checked(len).ok_or_else(bad)?;
    let meta = serde_json::from_slice(meta).map_err(|_| bad())?;
    Ok((meta, Bytes::copy_from_slice(data)))
}

impl<M> Inner<M> {
    /// Makes `(meta, data)` the group's snapshot, durably.
    fn keep(&mut self, meta: Meta, data: Bytes) -> io::Result<()> {
        let head = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        let mut raw = Vec::with_capacity(4 + head.len() + data.len());
        raw.extend_from_slice(
            &u32::try_from(head.len())
                .map_err(io::Error::other)?
                .to_le_bytes(),
        );
        raw.extend_from_slice(&head);
        raw.extend_from_slice(&data);
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let _ = self.vfs.remove_file(&tmp);
        let f = self.vfs.open(&tmp, true)?;
        f.write_at(0, &raw)?;
        f.sync()?;
        self.vfs.rename(&tmp, &self.dir.join(SNAPSHOT))?;
        self.vfs.sync_dir(&self.dir)?;
        self.snapshot = Some((meta, data));
        Ok(())
    }
}

impl<M: Machine> RaftSnapshotBuilder<TypeConfig> for MachineStore<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut inner = self.inner.lock().await;
        let data = inner.machine.snapshot().await.map_err(|e| snap_err(&e))?;
        inner.built += 1;
        let index = inner.applied.map_or(0, |l| l.index);
        let meta = Meta {
            last_log_id: inner.applied,
            last_membership: inner.membership.clone(),
            snapshot_id: format!("{index}-{}", inner.built),
        };
        inner
            .keep(meta.clone(), data.clone())
            .map_err(|e| snap_err(&e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.to_vec())),
        })
    }
}

impl<M: Machine> RaftStateMachine<TypeConfig> for MachineStore<M> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<u64, BasicNode>), StorageError> {
        let inner = self.inner.lock().await;
        Ok((inner.applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Command>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock().await;
        let mut out = Vec::new();
        let mut batch = Vec::new();
        let mut last = None;
        for entry in entries {
            last = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Normal(Command(cmd)) => {
                    out.push(Some(batch.len()));
                    batch.push((entry.log_id.index, cmd));
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), m);
                    out.push(None);
                }
                EntryPayload::Blank => out.push(None),
            }
        }
        let answers = if batch.is_empty() {
            Vec::new()
        } else {
            inner.machine.apply(batch).await.map_err(|e| sm_err(&e))?
        };
        if last.is_some() {
            inner.applied = last;
        }
        Ok(out
            .into_iter()
            .map(|slot| {
                Command(
                    slot.and_then(|i| answers.get(i).cloned())
                        .unwrap_or_default(),
                )
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = Bytes::from(snapshot.into_inner());
        let mut inner = self.inner.lock().await;
        self.installing.store(true, Ordering::SeqCst);
        let installed = inner.machine.install(data.clone()).await;
        self.installing.store(false, Ordering::SeqCst);
        installed.map_err(|e| sm_err(&e))?;
        inner.applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.keep(meta.clone(), data).map_err(|e| snap_err(&e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let inner = self.inner.lock().await;
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.to_vec())),
        }))
    }
}
