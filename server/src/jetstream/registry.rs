//! An account's stream registry: the running streams by name, and beside them what the
//! API asks of all of them at once, kept up to date as streams come and go (the
//! subject-overlap index, the bytes reserved per storage kind). A create or update thus
//! costs the same with 10 or 10,000 streams: nothing walks or copies the others.
//!
//! Configs are shared (`Arc`): readers take a reference, never a copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use rill_protocol::jsapi::{AccountTier, StorageType, StreamConfig, StreamName};

use super::stream::{StreamHandle, StreamSubs};
use super::validate::OwnedFilters;

/// One registered stream.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) handle: StreamHandle,
    pub(super) cfg: Arc<StreamConfig>,
    pub(super) subs: StreamSubs,
    /// A replica of a replicated stream (its group's leader subscribes the subjects).
    pub(super) replicated: bool,
}

/// The streams of one account, by name.
#[derive(Debug, Default)]
pub(super) struct Registry {
    entries: BTreeMap<StreamName, Entry>,
    /// Every stream's subjects, by stream name.
    subjects: OwnedFilters,
    /// The `max_bytes` reserved by the file and the memory streams (wide enough that
    /// no number of `i64` limits overflows it).
    reserved_file: u128,
    reserved_memory: u128,
}

impl Registry {
    pub(super) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every stream, sorted by name.
    pub(super) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Registers `entry` (replacing a stream of the same name).
    pub(super) fn insert(&mut self, entry: Entry) {
        let name = entry.handle.name().clone();
        debug_assert_eq!(
            name,
            entry.cfg.name.as_str(),
            "a handle runs its config's stream"
        );
        self.remove(&name);
        let owner: Arc<str> = Arc::from(name.as_str());
        for s in &entry.cfg.subjects {
            self.subjects.insert(&owner, s);
        }
        *self.reserved_mut(entry.cfg.storage) += reserved(&entry.cfg);
        self.entries.insert(name, entry);
    }

    /// Takes stream `name` out.
    pub(super) fn remove(&mut self, name: &str) -> Option<Entry> {
        let entry = self.entries.remove(name)?;
        for s in &entry.cfg.subjects {
            self.subjects.remove(name, s);
        }
        *self.reserved_mut(entry.cfg.storage) -= reserved(&entry.cfg);
        Some(entry)
    }

    /// Takes every stream out.
    pub(super) fn take_all(&mut self) -> Vec<Entry> {
        let entries = std::mem::take(self);
        entries.entries.into_values().collect()
    }

    /// Every stream's subjects, by stream name.
    pub(super) fn subjects(&self) -> &OwnedFilters {
        &self.subjects
    }

    /// The `max_bytes` reserved by the streams of `storage`, but `except`.
    pub(super) fn reserved(&self, storage: StorageType, except: Option<&str>) -> u64 {
        let own = except
            .and_then(|n| self.entries.get(n))
            .filter(|e| e.cfg.storage == storage)
            .map_or(0, |e| reserved(&e.cfg));
        let all = match storage {
            StorageType::File => self.reserved_file,
            StorageType::Memory => self.reserved_memory,
        };
        u64::try_from(all - own).unwrap_or(u64::MAX)
    }

    /// Adds the streams' counts to `$JS.API.INFO`'s `usage`: one pass under the
    /// registry's lock, nothing copied.
    pub(super) fn add_usage(&self, usage: &mut AccountTier) {
        for e in self.entries.values() {
            let used = e.handle.usage_bytes();
            match e.cfg.storage {
                StorageType::Memory => usage.memory += used,
                StorageType::File => usage.storage += used,
            }
            usage.consumers += e.handle.consumer_count() as u64;
        }
        usage.streams = self.entries.len() as u64;
        usage.reserved_memory = self.reserved(StorageType::Memory, None);
        usage.reserved_storage = self.reserved(StorageType::File, None);
    }

    fn reserved_mut(&mut self, storage: StorageType) -> &mut u128 {
        match storage {
            StorageType::File => &mut self.reserved_file,
            StorageType::Memory => &mut self.reserved_memory,
        }
    }
}

/// What a stream reserves: its `max_bytes` when set.
fn reserved(cfg: &StreamConfig) -> u128 {
    u128::try_from(cfg.max_bytes).unwrap_or(0)
}
