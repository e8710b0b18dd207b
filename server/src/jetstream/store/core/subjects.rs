//! The subject table of a stream's index (one id per subject, its live state) and the
//! [`Matcher`] that tests subject ids against a consumer's or a request's filters, with
//! a per-id cache.
//!
//! # Memory
//! A stream may hold millions of subjects (a KV bucket's keys), so a subject costs its
//! name's bytes and about 62 bytes beside: its entry (the name as a [`Bytes`] and its
//! state, 56 bytes) and 4 bytes plus a control byte in the name index, a hash table of
//! ids (the names are not kept twice). Names are copied into shared chunks of
//! [`CHUNK`] bytes, not one allocation each, and handed out as slices of their chunk
//! (a reference count, no copy). Names of released subjects stay in their chunk; when
//! the chunks taken since the last compaction pass twice the live names' bytes (checked
//! at every intern and release; amortized O(1) each), the live names are copied into
//! fresh chunks, so the table holds at most about three times its names' bytes (and
//! what messages handed out still refer to).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use bytes::{Bytes, BytesMut};
use hashbrown::HashTable;
use rill_protocol::subject;

use super::SubjectState;

/// Bytes of one chunk of subject names.
const CHUNK: usize = 4096;

/// One interned subject and its live state.
#[derive(Debug, Clone)]
pub(super) struct SubjEntry {
    name: Bytes,
    pub(super) state: SubjectState,
}

/// Interned subjects with their state; ids of subjects that emptied are reused.
#[derive(Debug, Default)]
pub(crate) struct SubjectTable {
    /// Live ids, found by their name's hash (`hasher`).
    index: HashTable<u32>,
    hasher: RandomState,
    entries: Vec<Option<SubjEntry>>,
    free: Vec<u32>,
    /// Where new names are copied (the unused rest of the current chunk).
    chunk: BytesMut,
    /// Bytes of the chunks taken since the last compaction, and of live names.
    chunk_bytes: usize,
    name_bytes: usize,
}

impl SubjectTable {
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        let name = name.as_bytes();
        let hash = self.hasher.hash_one(name);
        self.index.find(hash, |&id| self.name_is(id, name)).copied()
    }

    fn name_is(&self, id: u32, name: &[u8]) -> bool {
        self.entry(id).is_some_and(|e| e.name == name)
    }

    pub(super) fn entry(&self, id: u32) -> Option<&SubjEntry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    pub(super) fn entry_mut(&mut self, id: u32) -> Option<&mut SubjEntry> {
        self.entries.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Name of a live subject id (empty if unknown): a slice of its chunk.
    pub(crate) fn name(&self, id: u32) -> Bytes {
        self.entry(id).map(|e| e.name.clone()).unwrap_or_default()
    }

    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.id(name) {
            return id;
        }
        let entry = SubjEntry {
            name: self.copy_name(name.as_bytes()),
            state: SubjectState::default(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = Some(entry);
                id
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        let Self {
            index,
            hasher,
            entries,
            ..
        } = self;
        let hash = hasher.hash_one(name.as_bytes());
        index.insert_unique(hash, id, |&id| {
            hasher.hash_one(
                entries[id as usize]
                    .as_ref()
                    .map_or(&b""[..], |e| &e.name[..]),
            )
        });
        self.name_bytes += name.len();
        self.compact_if_sparse();
        id
    }

    /// A copy of `name` in the current chunk (a new chunk when it is full).
    fn copy_name(&mut self, name: &[u8]) -> Bytes {
        if self.chunk.capacity() < name.len() {
            let size = CHUNK.max(name.len());
            self.chunk = BytesMut::with_capacity(size);
            self.chunk_bytes += size;
        }
        self.chunk.extend_from_slice(name);
        self.chunk.split().freeze()
    }

    /// Copies the live names into fresh chunks when the chunks taken since the
    /// last time hold more than twice their bytes (released names pile up).
    fn compact_if_sparse(&mut self) {
        if self.chunk_bytes <= 2 * self.name_bytes + 4 * CHUNK {
            return;
        }
        self.chunk = BytesMut::new();
        self.chunk_bytes = 0;
        for i in 0..self.entries.len() {
            if let Some(name) = self.entries[i].as_ref().map(|e| e.name.clone()) {
                let copy = self.copy_name(&name);
                if let Some(e) = self.entries[i].as_mut() {
                    e.name = copy;
                }
            }
        }
    }

    pub(super) fn release(&mut self, id: u32) {
        let Some(e) = self.entries.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        let hash = self.hasher.hash_one(&e.name[..]);
        if let Ok(found) = self.index.find_entry(hash, |&i| i == id) {
            found.remove();
        }
        self.name_bytes -= e.name.len();
        self.free.push(id);
        self.compact_if_sparse();
    }
    /// Sets every subject's state to empty (before counting them again).
    pub(super) fn clear_states(&mut self) {
        for e in self.entries.iter_mut().flatten() {
            e.state = SubjectState::default();
        }
    }

    /// Counts one live message of subject `id` at `seq` (in sequence order).
    pub(super) fn count(&mut self, id: u32, seq: u64) {
        if let Some(e) = self.entry_mut(id) {
            if e.state.msgs == 0 {
                e.state.first = seq;
            }
            e.state.msgs += 1;
            e.state.last = seq;
        }
    }

    /// Releases the subjects no message holds any more.
    pub(super) fn release_empty(&mut self) {
        let empty: Vec<u32> = self
            .iter()
            .filter(|(_, _, st)| st.msgs == 0)
            .map(|(id, _, _)| id)
            .collect();
        for id in empty {
            self.release(id);
        }
    }

    /// Number of live subjects.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// One past the largest id ever handed out.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Live subjects: (id, name, state).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Bytes, SubjectState)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, &e.name, e.state)))
    }
}

/// A set of filter subjects with a per-subject-id answer cache.
#[derive(Debug)]
pub(crate) struct Matcher<'a> {
    filters: Vec<&'a str>,
    all: bool,
    cache: Vec<u8>,
    sparse: HashMap<u32, u8>,
}

impl<'a> Matcher<'a> {
    /// Empty filters, `""` and `>` match everything.
    pub(crate) fn new(filters: &[&'a str]) -> Self {
        let all = filters.is_empty() || filters.iter().any(|f| f.is_empty() || *f == ">");
        Self {
            filters: filters.to_vec(),
            all,
            cache: Vec::new(),
            sparse: HashMap::new(),
        }
    }

    /// True when every subject matches.
    pub(crate) fn is_all(&self) -> bool {
        self.all
    }

    /// The single literal filter, if that is what this is.
    pub(crate) fn literal(&self) -> Option<&'a str> {
        match self.filters.as_slice() {
            [f] if !self.all && !subject::has_wildcard(f) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn matches_name(&self, name: &str) -> bool {
        self.all || self.filters.iter().any(|f| subject::matches(f, name))
    }

    pub(super) fn matches_id(&mut self, table: &SubjectTable, id: u32) -> bool {
        if self.all {
            return true;
        }
        let i = id as usize;
        // A dense cache for up to 64 Ki subjects; beyond that (large KV buckets) a
        // map, so one call never allocates in proportion to the whole subject table.
        if table.capacity() <= DENSE_CACHE_MAX && self.cache.len() < table.capacity() {
            self.cache.resize(table.capacity(), 0);
        }
        let cached = match self.cache.get(i) {
            Some(&c) => c,
            None => self.sparse.get(&id).copied().unwrap_or(0),
        };
        match cached {
            1 => true,
            2 => false,
            _ => {
                let name = table.entry(id).map(|e| e.name.clone()).unwrap_or_default();
                let yes = self.matches_name(std::str::from_utf8(&name).unwrap_or_default());
                let v = if yes { 1 } else { 2 };
                match self.cache.get_mut(i) {
                    Some(c) => *c = v,
                    None => {
                        self.sparse.insert(id, v);
                    }
                }
                yes
            }
        }
    }
}

/// Subject tables up to this size get a dense match cache.
const DENSE_CACHE_MAX: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::{CHUNK, SubjectTable};

    /// Names are found by id and id by name through interning, release and
    /// reuse; the chunks of released names are given back by compaction, so
    /// churn keeps the table within a few times its live names' bytes.
    #[test]
    fn churn_keeps_names_right_and_chunks_bounded() {
        let mut t = SubjectTable::default();
        let mut live = std::collections::BTreeMap::new();
        for round in 0..20u32 {
            for k in 0..2000u32 {
                let name = format!("kv.bucket.{round}.{k}");
                live.insert(t.intern(&name), name);
            }
            // Keep one name in a hundred: the rest of each chunk is dead.
            let gone: Vec<u32> = live.keys().copied().filter(|id| id % 100 != 7).collect();
            for id in gone {
                t.release(id);
                live.remove(&id);
            }
            assert!(
                t.chunk_bytes <= 2 * t.name_bytes + 5 * CHUNK,
                "round {round}: {} chunk bytes for {} name bytes",
                t.chunk_bytes,
                t.name_bytes
            );
        }
        assert_eq!(t.len(), live.len());
        for (&id, name) in &live {
            assert_eq!(&t.name(id)[..], name.as_bytes());
            assert_eq!(t.id(name), Some(id));
        }
        assert_eq!(t.id("kv.bucket.0.0"), None);
    }
}
