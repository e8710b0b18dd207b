//! The memory store: message bytes kept in the index itself.
//!
//! Owns nothing on disk. It is also the oracle the file store is property-tested
//! against (constructed with file-store size accounting for that purpose).

use bytes::Bytes;

use super::core::{Core, Placed, Slot};
use super::generic::{Backend, Store};
use super::types::{StoreConfig, StoreError, StoredMsg, file_msg_size, mem_msg_size};

/// Message bytes held by the memory backend.
#[derive(Debug, Clone)]
pub struct MemMsg {
    hdr: Option<Bytes>,
    payload: Bytes,
}

impl Placed for MemMsg {
    /// The memory store keeps one segment.
    fn unit(&self) -> u32 {
        0
    }
}

/// Backend that keeps messages in memory.
#[derive(Debug, Default)]
pub struct MemBackend {
    file_sizes: bool,
}

/// A stream store in memory.
pub type MemStore = Store<MemBackend>;

impl MemStore {
    /// An empty memory store.
    pub fn new(cfg: StoreConfig) -> Self {
        Store::from_parts(Core::new(1), MemBackend::default(), cfg)
    }

    /// A memory store that accounts bytes like the file store: the test oracle.
    pub fn with_file_sizes(cfg: StoreConfig) -> Self {
        Store::from_parts(Core::new(1), MemBackend { file_sizes: true }, cfg)
    }
}

impl Backend for MemBackend {
    type Loc = MemMsg;

    fn msg_size(&self, subj: usize, hdr: usize, payload: usize) -> u64 {
        if self.file_sizes {
            file_msg_size(subj, hdr, payload)
        } else {
            mem_msg_size(subj, hdr, payload)
        }
    }

    fn write(
        &mut self,
        _seq: u64,
        _ts: i64,
        _subj: &str,
        hdr: &[u8],
        payload: &[u8],
    ) -> Result<MemMsg, StoreError> {
        Ok(MemMsg {
            hdr: (!hdr.is_empty()).then(|| Bytes::copy_from_slice(hdr)),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    fn read(&self, seq: u64, subject: Bytes, slot: &Slot<MemMsg>) -> Result<StoredMsg, StoreError> {
        Ok(StoredMsg {
            seq,
            ts: slot.ts,
            subject,
            headers: slot.loc.hdr.clone(),
            payload: slot.loc.payload.clone(),
        })
    }

    fn remove(&mut self, _seq: u64, _loc: &MemMsg, _erase: bool) -> Result<(), StoreError> {
        Ok(())
    }

    fn after_removals(&mut self, _core: &mut Core<MemMsg>) -> Result<(), StoreError> {
        Ok(())
    }

    fn reset(&mut self, _next_seq: u64) -> Result<(), StoreError> {
        Ok(())
    }

    fn skip(&mut self, _last: u64) -> Result<(), StoreError> {
        Ok(())
    }

    fn sync(&mut self, _core: &Core<MemMsg>) -> Result<(), StoreError> {
        Ok(())
    }

    fn close(&mut self, _core: &Core<MemMsg>) -> Result<(), StoreError> {
        Ok(())
    }
}
