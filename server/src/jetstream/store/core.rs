//! The in-memory index shared by both stores: one slot per sequence and a subject table.
//!
//! Owns sequence bookkeeping (first/last, counts, bytes, interior deletes) and
//! per-subject state. It does not own message bytes: each slot carries a
//! backend-defined location `L` (the message itself for memory, a block offset
//! for files).
//!
//! # Invariants
//! - `slots[i]` describes sequence `base + i`; `None` is a deleted sequence.
//! - When not empty, the first and last slots are `Some` (deleted runs at either
//!   end are trimmed), so `base` is the first sequence.
//! - `last_seq >= base + slots.len() - 1`; `last_seq` never goes down.
//! - `msgs`/`bytes` equal the count/sum of sizes of `Some` slots; each live
//!   subject's `SubjectState` is exact (count, first and last sequence).
//!
//! # Costs
//! One slot (32 bytes for the file store) per sequence between first and last,
//! deleted or not, so interior gaps cost memory like messages; deleted runs at
//! either end cost nothing. Lookups by sequence are O(1); literal-subject
//! `next` is bounded by the subject's first/last; wildcard `next` scans slots
//! (in memory, a few ns each) with a per-subject-id match cache.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;

use bytes::Bytes;
use rill_protocol::subject;

use super::types::SubjectState;

/// Index entry of one stored message.
#[derive(Debug, Clone)]
pub struct Slot<L> {
    /// Subject id in the [`SubjectTable`].
    pub(crate) subj: u32,
    /// Accounted size (nats-server formula of the owning store). Never 0 (both
    /// formulas add a constant), which gives `Option<Slot>` a niche: a file
    /// store's slot takes 32 bytes instead of 40.
    pub(crate) size: NonZeroU32,
    /// Timestamp (ns since the epoch).
    pub(crate) ts: i64,
    /// Backend location of the message bytes.
    pub(crate) loc: L,
}

#[derive(Debug, Clone)]
struct SubjEntry {
    name: Bytes,
    state: SubjectState,
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

    fn entry(&self, id: u32) -> Option<&SubjEntry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, id: u32) -> Option<&mut SubjEntry> {
        self.entries.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Name of a live subject id (empty if unknown).
    pub(crate) fn name(&self, id: u32) -> Bytes {
        self.entry(id).map(|e| e.name.clone()).unwrap_or_default()
    }

    fn intern(&mut self, name: &str) -> u32 {
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

    fn release(&mut self, id: u32) {
        if let Some(e) = self.entries.get_mut(id as usize).and_then(Option::take) {
            self.by_name.remove(&e.name);
            self.free.push(id);
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

    fn matches_id(&mut self, table: &SubjectTable, id: u32) -> bool {
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

/// The shared sequence/subject index. See the module docs for invariants.
pub struct Core<L> {
    base: u64,
    slots: VecDeque<Option<Slot<L>>>,
    last_seq: u64,
    last_ts: i64,
    msgs: u64,
    bytes: u64,
    pub(crate) subjects: SubjectTable,
}

impl<L> std::fmt::Debug for Core<L> {
    /// A summary: the index itself can hold millions of entries.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("msgs", &self.msgs)
            .field("bytes", &self.bytes)
            .field("first_seq", &self.first_seq())
            .field("last_seq", &self.last_seq)
            .field("subjects", &self.subjects.len())
            .finish()
    }
}

impl<L> Core<L> {
    /// An empty index whose next sequence is `first_seq` (at least 1).
    pub(crate) fn new(first_seq: u64) -> Self {
        let first = first_seq.max(1);
        Self {
            base: first,
            slots: VecDeque::new(),
            last_seq: first - 1,
            last_ts: 0,
            msgs: 0,
            bytes: 0,
            subjects: SubjectTable::default(),
        }
    }

    pub(crate) fn msgs(&self) -> u64 {
        self.msgs
    }
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Timestamp of the message with the last sequence (kept after it is deleted,
    /// like nats-server's `LastTime`).
    pub(crate) fn last_ts(&self) -> i64 {
        self.last_ts
    }
    pub(crate) fn set_last_ts(&mut self, ts: i64) {
        self.last_ts = ts;
    }
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }
    /// First stored sequence, or `last_seq + 1` when empty.
    pub(crate) fn first_seq(&self) -> u64 {
        if self.msgs == 0 {
            self.last_seq + 1
        } else {
            self.base
        }
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&Slot<L>> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.slots.get(i)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut Slot<L>> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(i)?.as_mut()
    }

    /// Live (seq, slot) pairs from `start` on, in order.
    pub(crate) fn iter_from(&self, start: u64) -> impl Iterator<Item = (u64, &Slot<L>)> {
        let skip = usize::try_from(start.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let base = self.base;
        self.slots
            .iter()
            .enumerate()
            .skip(skip)
            .filter_map(move |(i, s)| s.as_ref().map(|s| (base + i as u64, s)))
    }

    /// Adds a message. `seq` must be above `last_seq`.
    pub(crate) fn insert(&mut self, seq: u64, subject: &str, size: u32, ts: i64, loc: L) {
        debug_assert!(seq > self.last_seq);
        let subj = self.subjects.intern(subject);
        self.insert_known(seq, subj, size, ts, loc);
    }

    /// Adds a message whose subject id is already interned (restored from an index).
    pub(crate) fn insert_known(&mut self, seq: u64, subj: u32, size: u32, ts: i64, loc: L) {
        let size = NonZeroU32::new(size).unwrap_or(NonZeroU32::MIN);
        if self.slots.is_empty() {
            self.base = seq;
        } else {
            let gap = seq.saturating_sub(self.base + self.slots.len() as u64);
            self.slots.extend((0..gap).map(|_| None));
        }
        if let Some(e) = self.subjects.entry_mut(subj) {
            if e.state.msgs == 0 {
                e.state.first = seq;
            }
            e.state.msgs += 1;
            e.state.last = seq;
        }
        self.slots.push_back(Some(Slot {
            subj,
            size,
            ts,
            loc,
        }));
        if seq >= self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
        }
        self.msgs += 1;
        self.bytes += u64::from(size.get());
    }

    /// Reserves room for `n` more slots.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
    }

    /// Interns a subject name, returning its id.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        self.subjects.intern(name)
    }

    /// Advances `last_seq` (skipped sequences count as deleted).
    pub(crate) fn skip_to(&mut self, last: u64) {
        if last > self.last_seq {
            self.last_seq = last;
        }
    }

    /// Empties the index and makes `first` the next sequence (`last_seq` never goes down).
    pub(crate) fn reset(&mut self, first: u64) {
        self.slots.clear();
        self.subjects = SubjectTable::default();
        self.msgs = 0;
        self.bytes = 0;
        self.last_seq = self.last_seq.max(first.saturating_sub(1));
        self.base = self.last_seq + 1;
    }

    /// Removes a message, keeping subject state exact. `None` if not stored.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<Slot<L>> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let slot = self.slots.get_mut(i)?.take()?;
        self.msgs -= 1;
        self.bytes -= u64::from(slot.size.get());
        self.fix_subject(slot.subj, seq);
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        while matches!(self.slots.back(), Some(None)) {
            self.slots.pop_back();
        }
        if self.slots.is_empty() {
            self.base = self.last_seq + 1;
        }
        Some(slot)
    }

    fn fix_subject(&mut self, id: u32, seq: u64) {
        let Some(st) = self.subjects.entry(id).map(|e| e.state) else {
            return;
        };
        if st.msgs <= 1 {
            self.subjects.release(id);
            return;
        }
        let mut st = SubjectState {
            msgs: st.msgs - 1,
            ..st
        };
        // One left (the common KV case, history 1): it is the other end, no scan.
        if seq == st.first {
            st.first = if st.msgs == 1 {
                st.last
            } else {
                self.scan(seq + 1, st.last, id, true).unwrap_or(st.last)
            };
        }
        if seq == st.last {
            st.last = if st.msgs == 1 {
                st.first
            } else {
                self.scan(st.first, seq - 1, id, false).unwrap_or(st.first)
            };
        }
        if let Some(e) = self.subjects.entry_mut(id) {
            e.state = st;
        }
    }

    /// First (or last) sequence in `[lo, hi]` whose subject is `id`.
    fn scan(&self, lo: u64, hi: u64, id: u32, forward: bool) -> Option<u64> {
        let lo_i = usize::try_from(lo.checked_sub(self.base)?).ok()?;
        let hi_i = usize::try_from(hi.checked_sub(self.base)?).ok()?;
        let hit = |i: &usize| matches!(self.slots.get(*i), Some(Some(s)) if s.subj == id);
        let found = if forward {
            (lo_i..=hi_i).find(hit)
        } else {
            (lo_i..=hi_i).rev().find(hit)
        };
        found.map(|i| self.base + i as u64)
    }

    pub(crate) fn subject_state(&self, name: &str) -> Option<SubjectState> {
        let id = self.subjects.id(name)?;
        self.subjects.entry(id).map(|e| e.state)
    }

    /// First live sequence `>= start` whose subject the matcher accepts.
    pub(crate) fn next_matching(&self, start: u64, m: &mut Matcher<'_>) -> Option<u64> {
        if let Some(lit) = m.literal() {
            let id = self.subjects.id(lit)?;
            let st = self.subjects.entry(id)?.state;
            return match start {
                s if s <= st.first => Some(st.first),
                s if s > st.last => None,
                s => self.scan(s, st.last, id, true),
            };
        }
        if m.is_all() {
            return self.iter_from(start).next().map(|(s, _)| s);
        }
        let table = &self.subjects;
        self.iter_from(start)
            .find(|(_, s)| m.matches_id(table, s.subj))
            .map(|(s, _)| s)
    }

    /// Last live sequence at or below `at` whose subject the matcher accepts.
    pub(crate) fn prev_matching(&self, at: u64, m: &mut Matcher<'_>) -> Option<u64> {
        if let Some(lit) = m.literal() {
            let id = self.subjects.id(lit)?;
            let st = self.subjects.entry(id)?.state;
            return match at {
                s if s >= st.last => Some(st.last),
                s if s < st.first => None,
                s => self.scan(st.first, s, id, false),
            };
        }
        let hi = usize::try_from(at.checked_sub(self.base)?).ok()?;
        let hi = hi.min(self.slots.len().checked_sub(1)?);
        let table = &self.subjects;
        (0..=hi)
            .rev()
            .find(|&i| match self.slots.get(i) {
                Some(Some(s)) => m.matches_id(table, s.subj),
                _ => false,
            })
            .map(|i| self.base + i as u64)
    }

    /// Last live sequence whose subject the matcher accepts.
    pub(crate) fn last_matching(&self, m: &Matcher<'_>) -> Option<u64> {
        if m.is_all() {
            return (self.msgs > 0).then(|| self.base + self.slots.len() as u64 - 1);
        }
        if let Some(lit) = m.literal() {
            return self.subject_state(lit).map(|s| s.last);
        }
        self.subjects
            .iter()
            .filter(|(_, name, _)| m.matches_name(std::str::from_utf8(name).unwrap_or_default()))
            .map(|(_, _, st)| st.last)
            .max()
    }

    /// Matching subjects with their state, sorted by name.
    pub(crate) fn subjects_matching(&self, m: &Matcher<'_>) -> Vec<(String, SubjectState)> {
        let mut out: Vec<(String, SubjectState)> = self
            .subjects
            .iter()
            .filter_map(|(_, name, st)| {
                let name = std::str::from_utf8(name).ok()?;
                m.matches_name(name).then(|| (name.to_owned(), st))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Sequences of matching messages, oldest first, below `below` (exclusive).
    pub(crate) fn matching_seqs(&self, m: &mut Matcher<'_>, below: u64) -> Vec<u64> {
        let table = &self.subjects;
        self.iter_from(0)
            .take_while(|(s, _)| *s < below)
            .filter(|(_, slot)| m.matches_id(table, slot.subj))
            .map(|(s, _)| s)
            .collect()
    }

    /// Interior deleted sequences between first and last, ascending.
    pub(crate) fn deleted(&self) -> Vec<u64> {
        if self.msgs == 0 {
            return Vec::new();
        }
        let mut out: Vec<u64> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| self.base + i as u64)
            .collect();
        let tail_from = self.base + self.slots.len() as u64;
        out.extend(tail_from..=self.last_seq);
        out
    }

    /// Count of deleted sequences between first and last.
    pub(crate) fn num_deleted(&self) -> u64 {
        if self.msgs == 0 {
            0
        } else {
            self.last_seq - self.base + 1 - self.msgs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Slot;
    use crate::jetstream::store::FileLoc;

    /// A deleted sequence costs no more than a stored one: `Option<Slot>` uses
    /// the size's niche (was 40 bytes).
    #[test]
    fn a_file_slot_takes_32_bytes_with_or_without_a_message() {
        assert_eq!(std::mem::size_of::<Option<Slot<FileLoc>>>(), 32);
    }
}
