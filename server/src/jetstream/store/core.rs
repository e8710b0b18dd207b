//! The in-memory index shared by both stores: the live sequences in segments,
//! and a subject table.
//!
//! Owns sequence bookkeeping (first/last, counts, bytes, interior deletes) and
//! per-subject state. It does not own message bytes: each slot carries a
//! backend-defined location `L` (the message itself for memory, a block offset
//! for files).
//!
//! # Segments
//! The sequences are split into segments, one per file block (one in all for
//! the memory store), each with a summary (live count, bytes, first and last
//! live sequence) and its slots. A segment's slots may be out of memory: a
//! segment the backend holds an index of (it is *saved*: the file store's block
//! index file equals it) can be opened without its slots and dropped again; the
//! first use reads them back through the [`SegLoader`]. At most
//! [`Core::set_cache_max`] slots are held for saved segments (least recently
//! used dropped first, never the one in use); segments changed since the
//! backend indexed them stay in memory until it indexes them again.
//!
//! # Invariants
//! - Segments are in sequence order and do not overlap; each holds at least one
//!   live message, and its summary's first and last sequence are live.
//! - A loaded body holds one slot per sequence from the summary's first to its
//!   last; `None` is a deleted sequence.
//! - `last_seq >=` every segment's last; `last_seq` never goes down.
//! - `msgs`/`bytes` equal the sums of the segment summaries; each live
//!   subject's `SubjectState` is exact (count, first and last sequence).
//! - A load that finds a segment different from its summary (damage to both the
//!   index and the block) keeps what it found, reports the lost ranges, and the
//!   counts are recomputed from the slots at the next change.
//!
//! # Costs
//! One slot (32 bytes for the file store) per sequence between a loaded
//! segment's first and last, deleted or not; nothing per message for segments
//! out of memory. Lookups by sequence are a binary search over segments, then
//! O(1); literal-subject `next` is bounded by the subject's first/last; wildcard
//! `next` scans slots (in memory, a few ns each) with a per-subject-id match
//! cache, loading segments as it goes.

use std::cell::{Cell, Ref, RefCell};
use std::collections::VecDeque;
use std::num::NonZeroU32;

use tracing::warn;

use super::types::SubjectState;

mod query;
mod subjects;
pub(crate) use subjects::{Matcher, SubjectTable};

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

/// The slots of one segment, the first for its first live sequence.
pub(crate) type Body<L> = VecDeque<Option<Slot<L>>>;

/// Which segment a location belongs to: the file block of a record (the memory
/// store keeps one segment). Segment ids increase with sequence.
pub trait Placed {
    /// The segment id.
    fn unit(&self) -> u32;
}

/// Live count, accounted bytes, and first and last live sequence of a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SegSummary {
    pub(crate) msgs: u64,
    pub(crate) bytes: u64,
    pub(crate) first: u64,
    pub(crate) last: u64,
}

/// What a [`SegLoader`] read back: the live (seq, slot) pairs in sequence
/// order, and the sequence ranges it found lost on the way.
#[derive(Debug)]
pub(crate) struct Loaded<L> {
    pub(crate) slots: Vec<(u64, Slot<L>)>,
    pub(crate) lost: Vec<(u64, u64)>,
}

impl<L> Default for Loaded<L> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            lost: Vec::new(),
        }
    }
}

/// Reads back the slots of a segment that is not held in memory (the file
/// store's block index, or the block itself when the index is gone).
pub(crate) trait SegLoader<L>: Send + std::fmt::Debug {
    /// The live messages of segment `unit`, which `sum` describes; subject ids
    /// are those of `subjects`.
    fn load(&self, unit: u32, sum: &SegSummary, subjects: &SubjectTable) -> Loaded<L>;

    /// The timestamp of `sum.first`, read without loading the segment (a
    /// stream's info asks for it); `None` when it cannot be read that cheaply
    /// and checked, and the segment is loaded instead.
    fn first_ts(&self, _unit: u32, _sum: &SegSummary) -> Option<i64> {
        None
    }
}

/// One segment: a run of sequences whose slots are loaded together.
struct Seg<L> {
    unit: u32,
    sum: SegSummary,
    /// The slots from `sum.first` to `sum.last`; `None` while not in memory.
    body: RefCell<Option<Body<L>>>,
    /// The backend holds an index equal to this segment, so its body can be
    /// dropped and loaded again.
    saved: Cell<bool>,
    /// When it was last used (for eviction).
    used: Cell<u64>,
    /// The sequence and slot of its last message when the backend knows them
    /// without the body (it read that record when it adopted the segment), so
    /// the last message of a stream is loaded without its segment. Dropped at
    /// the segment's first change.
    last: Option<(u64, Slot<L>)>,
}

impl<L> Seg<L> {
    fn held(&self) -> usize {
        self.body
            .try_borrow()
            .map_or(0, |b| b.as_ref().map_or(0, VecDeque::len))
    }
}

/// The shared sequence/subject index. See the module docs for invariants.
pub struct Core<L> {
    segs: VecDeque<Seg<L>>,
    last_seq: u64,
    last_ts: i64,
    msgs: u64,
    bytes: u64,
    pub(crate) subjects: SubjectTable,
    loader: Option<Box<dyn SegLoader<L>>>,
    /// At most this many slots are held in memory, beyond segments that are
    /// not saved (see [`Core::set_cache_max`]).
    cache_max: usize,
    clock: Cell<u64>,
    /// Sequence ranges loads found lost, until the store takes them.
    lost: RefCell<Vec<(u64, u64)>>,
    /// A load did not match its segment's summary: counts and subject state
    /// are recomputed at the next change.
    recount: Cell<bool>,
    /// (sequence, timestamp) of a first message read without its segment
    /// (a sequence's message never changes, so it holds while it is the first).
    first_ts: Cell<Option<(u64, i64)>>,
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
            .field("segments", &self.segs.len())
            .finish()
    }
}

impl<L> Core<L> {
    /// An empty index whose next sequence is `first_seq` (at least 1).
    pub(crate) fn new(first_seq: u64) -> Self {
        Self {
            segs: VecDeque::new(),
            last_seq: first_seq.max(1) - 1,
            last_ts: 0,
            msgs: 0,
            bytes: 0,
            subjects: SubjectTable::default(),
            loader: None,
            cache_max: usize::MAX,
            clock: Cell::new(0),
            lost: RefCell::new(Vec::new()),
            recount: Cell::new(false),
            first_ts: Cell::new(None),
        }
    }

    /// Where segments that are not in memory are read from.
    pub(crate) fn set_loader(&mut self, loader: Box<dyn SegLoader<L>>) {
        self.loader = Some(loader);
    }

    /// Bounds the slots held in memory: saved segments beyond it are dropped,
    /// least recently used first (the one in use is kept).
    pub(crate) fn set_cache_max(&mut self, slots: usize) {
        self.cache_max = slots.max(1);
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
        self.segs.front().map_or(self.last_seq + 1, |s| s.sum.first)
    }

    /// Timestamp of the first stored message (0 when empty). A first segment
    /// out of memory is not loaded for it when the loader can read it alone.
    pub(crate) fn first_ts(&self) -> i64 {
        let Some(seg) = self.segs.front() else {
            return 0;
        };
        let first = seg.sum.first;
        if seg.held() == 0 {
            if let Some((seq, ts)) = self.first_ts.get()
                && seq == first
            {
                return ts;
            }
            if let Some(ts) = self
                .loader
                .as_ref()
                .and_then(|l| l.first_ts(seg.unit, &seg.sum))
            {
                self.first_ts.set(Some((first, ts)));
                return ts;
            }
        }
        self.get(first).map_or(0, |s| s.ts)
    }

    /// Index of the segment holding `seq` in its range.
    fn seg_at(&self, seq: u64) -> Option<usize> {
        let i = self.seg_from(seq);
        (self.segs.get(i)?.sum.first <= seq).then_some(i)
    }

    /// Index of the first segment whose last sequence is at least `seq`.
    fn seg_from(&self, seq: u64) -> usize {
        self.segs.partition_point(|s| s.sum.last < seq)
    }

    /// Segment `i`'s slots, loaded if they are not in memory (always `Some`).
    fn body(&self, i: usize) -> Option<Ref<'_, Body<L>>> {
        let seg = &self.segs[i];
        self.clock.set(self.clock.get() + 1);
        seg.used.set(self.clock.get());
        if seg.body.borrow().is_none() {
            self.load(i);
        }
        Ref::filter_map(seg.body.borrow(), Option::as_ref).ok()
    }

    /// Loads segment `i` from the loader, then keeps the cache within its bound.
    fn load(&self, i: usize) {
        let seg = &self.segs[i];
        let got = match &self.loader {
            Some(l) => l.load(seg.unit, &seg.sum, &self.subjects),
            None => Loaded::default(),
        };
        let (body, sum) = build_body(seg.sum.first, seg.sum.last, got.slots);
        if sum != seg.sum {
            warn!(segment = seg.unit, expected = ?seg.sum, found = ?sum,
                "index segment does not match what was recorded; counts are recomputed");
            seg.saved.set(false);
            self.recount.set(true);
        }
        self.lost.borrow_mut().extend(got.lost);
        *seg.body.borrow_mut() = Some(body);
        self.evict(i);
    }

    /// Drops the least recently used saved bodies (never segment `keep`, nor
    /// one in use) until the held slots are within the bound.
    fn evict(&self, keep: usize) {
        let mut held: usize = self.segs.iter().map(Seg::held).sum();
        while held > self.cache_max {
            let victim = self
                .segs
                .iter()
                .enumerate()
                .filter(|(j, s)| *j != keep && s.saved.get() && s.held() > 0)
                .filter(|(_, s)| s.body.try_borrow_mut().is_ok())
                .min_by_key(|(_, s)| s.used.get())
                .map(|(j, _)| j);
            let Some(j) = victim else { return };
            held -= self.segs[j].held();
            if let Ok(mut b) = self.segs[j].body.try_borrow_mut() {
                *b = None;
            }
        }
    }

    /// Keeps the held slots within the bound (saved segments only).
    pub(crate) fn trim(&self) {
        self.evict(usize::MAX);
    }

    /// True when more slots are held than the bound allows, not counting
    /// segment `active` (the one appends go to, which stays in memory anyway).
    pub(crate) fn over_bound(&self, active: Option<u32>) -> bool {
        let held: usize = self
            .segs
            .iter()
            .filter(|s| Some(s.unit) != active)
            .map(Seg::held)
            .sum();
        held > self.cache_max
    }

    /// Segments held in memory that the backend has no index of, oldest first.
    pub(crate) fn unsaved_units(&self) -> Vec<u32> {
        self.segs
            .iter()
            .filter(|s| !s.saved.get() && s.held() > 0)
            .map(|s| s.unit)
            .collect()
    }

    /// The backend now holds an index equal to segment `unit`.
    pub(crate) fn mark_saved(&self, unit: u32) {
        if let Some(s) = self.seg_of_unit(unit) {
            s.saved.set(true);
        }
    }

    /// True when segment `unit` holds messages the backend has no current index of.
    pub(crate) fn needs_save(&self, unit: u32) -> bool {
        self.seg_of_unit(unit).is_some_and(|s| !s.saved.get())
    }

    /// Number of segments with their slots in memory (tests).
    #[cfg(test)]
    pub(crate) fn loaded_segments(&self) -> usize {
        self.segs.iter().filter(|s| s.held() > 0).count()
    }

    fn seg_of_unit(&self, unit: u32) -> Option<&Seg<L>> {
        let i = self.segs.binary_search_by_key(&unit, |s| s.unit).ok()?;
        self.segs.get(i)
    }

    /// Calls `f` with the first sequence and the slots of segment `unit`.
    pub(crate) fn with_unit<R>(&self, unit: u32, f: impl FnOnce(u64, &Body<L>) -> R) -> Option<R> {
        let i = self.segs.binary_search_by_key(&unit, |s| s.unit).ok()?;
        let body = self.body(i)?;
        Some(f(self.segs[i].sum.first, &body))
    }

    /// Ranges of sequences loads found lost since the last call.
    pub(crate) fn take_lost(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.lost.borrow_mut())
    }

    pub(crate) fn get(&self, seq: u64) -> Option<Ref<'_, Slot<L>>> {
        let i = self.seg_at(seq)?;
        let first = self.segs[i].sum.first;
        let k = usize::try_from(seq - first).ok()?;
        Ref::filter_map(self.body(i)?, |b| b.get(k)?.as_ref()).ok()
    }

    /// Segment `i`'s slots for changing them (loaded first; no longer saved).
    fn body_mut(&mut self, i: usize) -> (&mut SegSummary, &mut Body<L>) {
        if self.segs[i].body.get_mut().is_none() {
            self.load(i);
        }
        let seg = &mut self.segs[i];
        seg.saved.set(false);
        // Changed (a compaction moves records): only the body tells where they are.
        seg.last = None;
        (&mut seg.sum, seg.body.get_mut().get_or_insert_default())
    }

    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut Slot<L>> {
        let i = self.seg_at(seq)?;
        let (sum, body) = self.body_mut(i);
        let k = usize::try_from(seq - sum.first).ok()?;
        body.get_mut(k)?.as_mut()
    }

    /// Calls `f` with every live (seq, slot) from `start` on, in order, until it
    /// returns false.
    pub(crate) fn walk(&self, start: u64, mut f: impl FnMut(u64, &Slot<L>) -> bool) {
        for i in self.seg_from(start)..self.segs.len() {
            let first = self.segs[i].sum.first;
            let skip = usize::try_from(start.saturating_sub(first)).unwrap_or(usize::MAX);
            let Some(body) = self.body(i) else { continue };
            for (k, s) in body.iter().enumerate().skip(skip) {
                if let Some(s) = s
                    && !f(first + k as u64, s)
                {
                    return;
                }
            }
        }
    }

    /// Like [`Core::walk`], downwards from `at`.
    pub(crate) fn walk_back(&self, at: u64, mut f: impl FnMut(u64, &Slot<L>) -> bool) {
        let end = self.seg_from(at).min(self.segs.len());
        let end = match self.segs.get(end) {
            Some(s) if s.sum.first <= at => end + 1,
            _ => end,
        };
        for i in (0..end).rev() {
            let first = self.segs[i].sum.first;
            let Some(body) = self.body(i) else { continue };
            let hi = usize::try_from(at - first).unwrap_or(usize::MAX);
            for k in (0..body.len().min(hi.saturating_add(1))).rev() {
                if let Some(Some(s)) = body.get(k)
                    && !f(first + k as u64, s)
                {
                    return;
                }
            }
        }
    }

    /// The first live sequence and its slot.
    pub(crate) fn first(&self) -> Option<(u64, Ref<'_, Slot<L>>)> {
        let seq = self.segs.front()?.sum.first;
        self.get(seq).map(|s| (seq, s))
    }

    /// The sequence of the `n`th live message (from 0).
    pub(crate) fn nth(&self, n: u64) -> Option<u64> {
        let mut left = n;
        let mut at = None;
        for seg in &self.segs {
            if left >= seg.sum.msgs {
                left -= seg.sum.msgs;
                continue;
            }
            self.walk(seg.sum.first, |seq, _| {
                if left == 0 {
                    at = Some(seq);
                    return false;
                }
                left -= 1;
                true
            });
            break;
        }
        at
    }

    /// Adds a message whose subject id is already interned (restored from an index).
    pub(crate) fn insert_known(&mut self, seq: u64, subj: u32, size: u32, ts: i64, loc: L)
    where
        L: Placed,
    {
        debug_assert!(seq > self.segs.back().map_or(0, |s| s.sum.last));
        let size = NonZeroU32::new(size).unwrap_or(NonZeroU32::MIN);
        let unit = loc.unit();
        let slot = Slot {
            subj,
            size,
            ts,
            loc,
        };
        match self.segs.len().checked_sub(1) {
            Some(i) if self.segs[i].unit == unit => {
                let (sum, body) = self.body_mut(i);
                let gap = seq.saturating_sub(sum.first + body.len() as u64);
                body.extend((0..gap).map(|_| None));
                body.push_back(Some(slot));
                sum.last = seq;
                sum.msgs += 1;
                sum.bytes += u64::from(size.get());
            }
            _ => self.segs.push_back(Seg {
                unit,
                sum: SegSummary {
                    msgs: 1,
                    bytes: u64::from(size.get()),
                    first: seq,
                    last: seq,
                },
                body: RefCell::new(Some(VecDeque::from([Some(slot)]))),
                saved: Cell::new(false),
                used: Cell::new(self.clock.get()),
                last: None,
            }),
        }
        if let Some(e) = self.subjects.entry_mut(subj) {
            if e.state.msgs == 0 {
                e.state.first = seq;
            }
            e.state.msgs += 1;
            e.state.last = seq;
        }
        if seq >= self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
        }
        self.msgs += 1;
        self.bytes += u64::from(size.get());
    }

    /// Adds a message. `seq` must be above `last_seq`.
    pub(crate) fn insert(&mut self, seq: u64, subject: &str, size: u32, ts: i64, loc: L)
    where
        L: Placed,
    {
        debug_assert!(seq > self.last_seq);
        let subj = self.subjects.intern(subject);
        self.insert_known(seq, subj, size, ts, loc);
    }

    /// Adds a segment that is not in memory (its slots are loaded on first
    /// use), with its summary and what it holds of each subject. The caller
    /// advances the last sequence and time (to the block's).
    pub(crate) fn add_cold(
        &mut self,
        unit: u32,
        sum: SegSummary,
        subjects: &[(&str, SubjectState)],
    ) {
        if sum.msgs == 0 {
            return;
        }
        debug_assert!(sum.first > self.segs.back().map_or(0, |s| s.sum.last));
        for (name, st) in subjects {
            let id = self.subjects.intern(name);
            if let Some(e) = self.subjects.entry_mut(id) {
                if e.state.msgs == 0 {
                    e.state.first = st.first;
                }
                e.state.msgs += st.msgs;
                e.state.last = st.last;
            }
        }
        self.segs.push_back(Seg {
            unit,
            sum,
            body: RefCell::new(None),
            saved: Cell::new(true),
            used: Cell::new(0),
            last: None,
        });
        self.msgs += sum.msgs;
        self.bytes += sum.bytes;
    }

    /// The slot of the last segment's last message, known to the backend
    /// without loading the segment (see [`Core::known_slot`]).
    pub(crate) fn set_last_slot(&mut self, seq: u64, slot: Slot<L>) {
        if let Some(seg) = self.segs.back_mut()
            && seg.sum.last == seq
        {
            seg.last = Some((seq, slot));
        }
    }

    /// The slot of `seq` when its segment is out of memory and `seq` is that
    /// segment's last message as the backend recorded it: a load needs no body.
    pub(crate) fn known_slot(&self, seq: u64) -> Option<Slot<L>>
    where
        L: Clone,
    {
        let seg = &self.segs[self.seg_at(seq)?];
        if seg.held() > 0 || seg.sum.last != seq {
            return None;
        }
        let (at, slot) = seg.last.as_ref()?;
        (*at == seq).then(|| slot.clone())
    }

    /// Sets a subject's state for the whole store (restored from a summary,
    /// before segments are added with [`Core::add_cold`] and no subjects).
    pub(crate) fn restore_subject(&mut self, name: &str, st: SubjectState) {
        let id = self.subjects.intern(name);
        if let Some(e) = self.subjects.entry_mut(id) {
            e.state = st;
        }
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
        self.segs.clear();
        self.subjects = SubjectTable::default();
        self.msgs = 0;
        self.bytes = 0;
        self.last_seq = self.last_seq.max(first.saturating_sub(1));
    }

    /// Removes a message, keeping subject state exact. `None` if not stored.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<Slot<L>> {
        let i = self.seg_at(seq)?;
        let (sum, body) = self.body_mut(i);
        let k = usize::try_from(seq - sum.first).ok()?;
        let slot = body.get_mut(k)?.take()?;
        let size = u64::from(slot.size.get());
        sum.msgs = sum.msgs.saturating_sub(1);
        sum.bytes = sum.bytes.saturating_sub(size);
        while matches!(body.front(), Some(None)) {
            body.pop_front();
            sum.first += 1;
        }
        while matches!(body.back(), Some(None)) {
            body.pop_back();
            sum.last -= 1;
        }
        if body.is_empty() {
            self.segs.remove(i);
        }
        self.msgs -= 1;
        self.bytes -= size;
        self.fix_subject(slot.subj, seq);
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

    /// After a load that did not match its summary: recomputes every segment's
    /// summary, the totals and the subject states from the slots (loading each
    /// segment in turn). Returns whether it had to.
    pub(crate) fn recount_if_needed(&mut self) -> bool {
        if !self.recount.replace(false) {
            return false;
        }
        self.subjects.clear_states();
        let (mut msgs, mut bytes) = (0, 0);
        for i in 0..self.segs.len() {
            let saved = self.segs[i].saved.get();
            let live: Vec<(u64, u32, u64)> = {
                let first = self.segs[i].sum.first;
                let Some(body) = self.body(i) else { continue };
                body.iter()
                    .enumerate()
                    .filter_map(|(k, s)| {
                        s.as_ref()
                            .map(|s| (first + k as u64, s.subj, u64::from(s.size.get())))
                    })
                    .collect()
            };
            let (sum, body) = self.body_mut(i);
            *sum = SegSummary {
                msgs: live.len() as u64,
                bytes: live.iter().map(|l| l.2).sum(),
                first: live.first().map_or(0, |l| l.0),
                last: live.last().map_or(0, |l| l.0),
            };
            while matches!(body.front(), Some(None)) {
                body.pop_front();
            }
            while matches!(body.back(), Some(None)) {
                body.pop_back();
            }
            self.segs[i].saved.set(saved);
            msgs += live.len() as u64;
            bytes += live.iter().map(|l| l.2).sum::<u64>();
            for (seq, subj, _) in live {
                self.subjects.count(subj, seq);
            }
            self.evict(i);
        }
        self.segs.retain(|s| s.sum.msgs > 0);
        self.subjects.release_empty();
        self.msgs = msgs;
        self.bytes = bytes;
        true
    }
}

/// Lays out `slots` (ascending) as a body from `first`; drops any outside
/// `[first, last]` or out of order. Returns it with the summary it amounts to.
fn build_body<L>(first: u64, last: u64, slots: Vec<(u64, Slot<L>)>) -> (Body<L>, SegSummary) {
    let mut body = VecDeque::with_capacity(usize::try_from(last - first + 1).unwrap_or(0));
    let mut sum = SegSummary {
        first,
        ..SegSummary::default()
    };
    for (seq, slot) in slots {
        let next = first + body.len() as u64;
        if seq < next || seq > last {
            continue;
        }
        body.extend((next..seq).map(|_| None));
        sum.msgs += 1;
        sum.bytes += u64::from(slot.size.get());
        sum.last = seq;
        body.push_back(Some(slot));
    }
    if sum.msgs == 0 || !matches!(body.front(), Some(Some(_))) {
        sum.first = body
            .iter()
            .position(Option::is_some)
            .map_or(0, |k| first + k as u64);
    }
    (body, sum)
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
