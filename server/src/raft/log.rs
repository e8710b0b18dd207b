//! A group's durable Raft log and vote, on the store's [`Vfs`] (so tests run it on
//! [`SimDisk`](crate::jetstream::store::SimDisk) and cut power under it).
//!
//! # Files (in the group's directory)
//! - `log`: append-only records `[len u32 LE][crc32 u32 LE][JSON record]`, a record
//!   being an entry, a truncation (entries from an index on are gone) or a purge
//!   (entries up to a log id are gone). Opening replays the records and cuts the file
//!   at the first short, corrupt or unreadable one (a torn tail: never acknowledged).
//!   When purged records are most of the file it is rewritten (`log.tmp`, fsync,
//!   rename, directory fsync).
//! - `vote`: the last vote, written to `vote.tmp`, fsynced, renamed, directory fsynced
//!   before [`save_vote`](RaftLogStorage::save_vote) returns.
//!
//! # Group commit
//! [`append`](RaftLogStorage::append) writes its entries with one write and hands
//! openraft's callback to the store's flusher thread. The flusher takes every callback
//! queued, runs one `fsync`, then completes them all; openraft counts an entry as
//! stored on this node (and a follower answers the leader's append) only then.
//!
//! Memory holds an index (file offset, length, log id per live entry), not entries.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};

use super::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::jetstream::store::{SharedVfs, VFile};

const LOG: &str = "log";
const LOG_TMP: &str = "log.tmp";
const VOTE: &str = "vote";
const VOTE_TMP: &str = "vote.tmp";
/// Record header: length and crc32 of the body.
const HEADER: u64 = 8;
/// Flushes queued before `append` waits for the flusher.
const FLUSH_QUEUE: usize = 1024;
/// Dead records tolerated before the file is rewritten.
const REWRITE_AFTER: usize = 4096;

/// One record of the log file.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Entry(Entry),
    Truncate(u64),
    Purge(LogId),
}

/// Where a live entry's record body sits in the file.
#[derive(Debug, Clone, Copy)]
struct Slot {
    off: u64,
    len: u32,
    log_id: LogId,
}

/// Work for the flusher: completed after the next fsync.
type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

#[derive(Debug)]
struct State {
    vfs: SharedVfs,
    dir: PathBuf,
    file: Arc<dyn VFile>,
    end: u64,
    index: BTreeMap<u64, Slot>,
    purged: Option<LogId>,
    /// Records in the file that are not live entries.
    dead: usize,
    vote: Option<Vote>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    flush: SyncSender<Done>,
}

/// A group's log and vote store; clones share it (openraft's reader is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn write_err(e: &io::Error) -> StorageError {
    StorageIOError::write_logs(e).into()
}

fn read_err(e: &io::Error) -> StorageError {
    StorageIOError::read_logs(e).into()
}

fn encode(rec: &Record, out: &mut Vec<u8>) -> io::Result<u32> {
    let body = serde_json::to_vec(rec).map_err(io_err)?;
    let len = u32::try_from(body.len()).map_err(io_err)?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(len)
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, replaying what is there.
    ///
    /// # Errors
    /// I/O errors; a vote file that does not parse.
    pub fn open(vfs: SharedVfs, dir: &Path) -> io::Result<LogStore> {
        make_dir(&vfs, dir)?;
        let file: Arc<dyn VFile> = Arc::from(vfs.open(&dir.join(LOG), true)?);
        vfs.sync_dir(dir)?;
        let vote = match vfs.read_file(&dir.join(VOTE)) {
            Ok(raw) => Some(serde_json::from_slice(&raw).map_err(io_err)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut state = State {
            vfs,
            dir: dir.to_path_buf(),
            file,
            end: 0,
            index: BTreeMap::new(),
            purged: None,
            dead: 0,
            vote,
        };
        state.replay()?;
        let (flush, rx) = sync_channel(FLUSH_QUEUE);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            flush,
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flusher(&weak, &rx))?;
        Ok(LogStore { shared })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `entries` and queues `done` for after the flusher's next fsync.
    fn append_then(&self, entries: Vec<Entry>, done: Done) -> io::Result<()> {
        self.state()
            .write(entries.into_iter().map(Record::Entry).collect())?;
        self.shared
            .flush
            .send(done)
            .map_err(|_| io_err("raft log flusher stopped"))
    }

    /// Writes `entries` and waits until they are on disk (what openraft's `append`
    /// callback reports).
    ///
    /// # Errors
    /// I/O errors.
    pub async fn append_durable(&self, entries: Vec<Entry>) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.append_then(
            entries,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await.map_err(|_| io_err("raft log flusher stopped"))?
    }

    /// Writes `entries` without waiting for (or asking for) an fsync (tests cut power
    /// after it).
    #[cfg(test)]
    pub(super) fn append_unsynced(&self, entries: Vec<Entry>) -> io::Result<()> {
        self.state()
            .write(entries.into_iter().map(Record::Entry).collect())
    }

    /// The live entries' log ids, first to last (for tests and reports).
    pub fn log_ids(&self) -> Vec<LogId> {
        self.state().index.values().map(|s| s.log_id).collect()
    }

    /// The log id of the last entry, or of the last purged one.
    pub fn last_log_id(&self) -> Option<LogId> {
        let st = self.state();
        st.index
            .values()
            .next_back()
            .map(|s| s.log_id)
            .or(st.purged)
    }

    /// Reads the entries whose indexes fall in `range`.
    ///
    /// # Errors
    /// I/O errors; a record that no longer parses.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> io::Result<Vec<Entry>> {
        let st = self.state();
        st.index.range(range).map(|(_, s)| st.read(*s)).collect()
    }
}

/// Creates `dir` and makes it (and its parents' entries) durable.
///
/// # Errors
/// I/O errors.
pub(crate) fn make_dir(vfs: &SharedVfs, dir: &Path) -> io::Result<()> {
    vfs.create_dir_all(dir)?;
    for a in dir.ancestors() {
        match a.parent() {
            Some(p) if !p.as_os_str().is_empty() => vfs.sync_dir(p)?,
            _ => {}
        }
    }
    Ok(())
}

/// The flusher thread: one fsync for every append queued since the last one. Ends when
/// the store is dropped.
fn flusher(shared: &std::sync::Weak<Shared>, rx: &Receiver<Done>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let file = match shared.upgrade() {
            Some(s) => s
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .file
                .clone(),
            None => return,
        };
        let result = file.sync();
        for done in batch {
            done(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

impl State {
    fn replay(&mut self) -> io::Result<()> {
        let len = self.file.len()?;
        let mut off = 0;
        let mut head = [0u8; HEADER as usize];
        while off + HEADER <= len {
            self.file.read_at(off, &mut head)?;
            let (n, crc) = head.split_at(4);
            let n = u32::from_le_bytes(n.try_into().map_err(io_err)?);
            let crc = u32::from_le_bytes(crc.try_into().map_err(io_err)?);
            if off + HEADER + u64::from(n) > len {
                break;
            }
            let mut body = vec![0; n as usize];
            self.file.read_at(off + HEADER, &mut body)?;
            if crc32fast::hash(&body) != crc {
                break;
            }
            let Ok(rec) = serde_json::from_slice::<Record>(&body) else {
                break;
            };
            self.note(rec, off + HEADER, n);
            off += HEADER + u64::from(n);
        }
        if off < len {
            self.file.set_len(off)?;
            self.file.sync()?;
        }
        self.end = off;
        Ok(())
    }

    /// Applies one record (written at body offset `off`) to the in-memory index.
    fn note(&mut self, rec: Record, off: u64, len: u32) {
        match rec {
            Record::Entry(e) => {
                let index = e.log_id.index;
                self.cut_from(index);
                let log_id = e.log_id;
                self.index.insert(index, Slot { off, len, log_id });
            }
            Record::Truncate(index) => {
                self.cut_from(index);
                self.dead += 1;
            }
            Record::Purge(log_id) => {
                let keep = self.index.split_off(&(log_id.index + 1));
                self.dead += self.index.len() + 1;
                self.index = keep;
                self.purged = Some(log_id);
            }
        }
    }

    fn cut_from(&mut self, index: u64) {
        let cut = self.index.split_off(&index);
        self.dead += cut.len();
    }

    fn read(&self, slot: Slot) -> io::Result<Entry> {
        let mut body = vec![0; slot.len as usize];
        self.file.read_at(slot.off, &mut body)?;
        match serde_json::from_slice(&body).map_err(io_err)? {
            Record::Entry(e) => Ok(e),
            _ => Err(io_err("log index points at a non-entry record")),
        }
    }

    /// Appends records with one write; returns their body offsets and lengths.
    fn write(&mut self, recs: Vec<Record>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(recs.len());
        for rec in recs {
            let at = buf.len() as u64;
            let len = encode(&rec, &mut buf)?;
            placed.push((rec, self.end + at + HEADER, len));
        }
        self.file.write_at(self.end, &buf)?;
        self.end += buf.len() as u64;
        for (rec, off, len) in placed {
            self.note(rec, off, len);
        }
        Ok(())
    }

    /// Rewrites the file with only the live entries once purged records dominate it.
    fn maybe_rewrite(&mut self) -> io::Result<()> {
        if self.dead < REWRITE_AFTER || self.dead < self.index.len() {
            return Ok(());
        }
        let tmp = self.dir.join(LOG_TMP);
        let _ = self.vfs.remove_file(&tmp);
        let file: Arc<dyn VFile> = Arc::from(self.vfs.open(&tmp, true)?);
        let mut recs = Vec::with_capacity(self.index.len() + 1);
        if let Some(p) = self.purged {
            recs.push(Record::Purge(p));
        }
        for slot in self.index.values() {
            recs.push(Record::Entry(self.read(*slot)?));
        }
        let mut fresh = State {
            vfs: self.vfs.clone(),
            dir: self.dir.clone(),
            file,
            end: 0,
            index: BTreeMap::new(),
            purged: None,
            dead: 0,
            vote: self.vote,
        };
        fresh.write(recs)?;
        fresh.file.sync()?;
        self.vfs.rename(&tmp, &self.dir.join(LOG))?;
        self.vfs.sync_dir(&self.dir)?;
        fresh.dead = 0;
        *self = fresh;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range).map_err(|e| read_err(&e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let st = self.state();
        let last = st.index.values().next_back().map(|s| s.log_id);
        Ok(LogState {
            last_purged_log_id: st.purged,
            last_log_id: last.or(st.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut st = self.state();
        let raw = serde_json::to_vec(vote).map_err(|e| write_err(&io_err(e)))?;
        let tmp = st.dir.join(VOTE_TMP);
        let write = || -> io::Result<()> {
            let _ = st.vfs.remove_file(&tmp);
            let f = st.vfs.open(&tmp, true)?;
            f.write_at(0, &raw)?;
            f.sync()?;
            st.vfs.rename(&tmp, &st.dir.join(VOTE))?;
            st.vfs.sync_dir(&st.dir)
        };
        write().map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        st.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.state().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let done: Done = Box::new(move |r| callback.log_io_completed(r));
        self.append_then(entries.into_iter().collect(), done)
            .map_err(|e| write_err(&e))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut st = self.state();
        st.write(vec![Record::Truncate(log_id.index)])
            .and_then(|()| st.file.sync())
            .map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut st = self.state();
        st.write(vec![Record::Purge(log_id)])
            .and_then(|()| st.file.sync())
            .and_then(|()| st.maybe_rewrite())
            .map_err(|e| write_err(&e))
    }
}
