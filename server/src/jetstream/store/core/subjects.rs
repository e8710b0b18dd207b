//! The subject table of a stream's index (one id per subject, its live state) and the
//! [`Matcher`] that tests subject ids against a consumer's or a request's filters, with
//! a per-id cache.

use std::collections::HashMap;

use bytes::Bytes;
use rill_protocol::subject;

use super::SubjectState;

/// One interned subject and its live state.
#[derive(Debug, Clone)]
pub(super) struct SubjEntry {
    name: Bytes,
    pub(super) state: SubjectState,
}

/// Interned subjects with their state; ids of subjects that emptied are reused.
#[derive(Debug, Default)]
pub(crate) struct SubjectTable {
    by_name: HashMap<Bytes, u32>,
    entries: Vec<Option<SubjEntry>>,
    free: Vec<u32>,
}

impl SubjectTable {
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name.as_bytes()).copied()
    }

    pub(super) fn entry(&self, id: u32) -> Option<&SubjEntry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    pub(super) fn entry_mut(&mut self, id: u32) -> Option<&mut SubjEntry> {
        self.entries.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Name of a live subject id (empty if unknown).
    pub(crate) fn name(&self, id: u32) -> Bytes {
        self.entry(id).map(|e| e.name.clone()).unwrap_or_default()
    }

    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.id(name) {
            return id;
        }
        let bytes = Bytes::copy_from_slice(name.as_bytes());
        let entry = SubjEntry {
            name: bytes.clone(),
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
        self.by_name.insert(bytes, id);
        id
    }

    pub(super) fn release(&mut self, id: u32) {
        if let Some(e) = self.entries.get_mut(id as usize).and_then(Option::take) {
            self.by_name.remove(&e.name);
            self.free.push(id);
        }
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
        self.by_name.len()
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
