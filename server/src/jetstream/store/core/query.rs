//! Reading the sequence map by subject: the first or last sequence of a subject, the
//! next and previous matches of a filter, the subjects a filter matches and their
//! states, and the deleted sequences (the queries consumers, direct gets and
//! `STREAM.INFO` ask; the map itself and its bookkeeping are the parent module's).

use super::{Core, Matcher};
use crate::jetstream::store::types::SubjectState;

impl<L> Core<L> {
    /// First (or last) sequence in `[lo, hi]` whose subject is `id`.
    pub(super) fn scan(&self, lo: u64, hi: u64, id: u32, forward: bool) -> Option<u64> {
        if lo > hi {
            return None;
        }
        let mut found = None;
        if forward {
            self.walk(lo, |seq, s| {
                if seq > hi {
                    return false;
                }
                if s.subj == id {
                    found = Some(seq);
                }
                found.is_none()
            });
        } else {
            self.walk_back(hi, |seq, s| {
                if seq < lo {
                    return false;
                }
                if s.subj == id {
                    found = Some(seq);
                }
                found.is_none()
            });
        }
        found
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
            let seg = self.segs.get(self.seg_from(start))?;
            if start <= seg.sum.first {
                return Some(seg.sum.first);
            }
            let mut found = None;
            self.walk(start, |seq, _| {
                found = Some(seq);
                false
            });
            return found;
        }
        let table = &self.subjects;
        let mut found = None;
        self.walk(start, |seq, s| {
            if m.matches_id(table, s.subj) {
                found = Some(seq);
            }
            found.is_none()
        });
        found
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
        let table = &self.subjects;
        let mut found = None;
        self.walk_back(at, |seq, s| {
            if m.matches_id(table, s.subj) {
                found = Some(seq);
            }
            found.is_none()
        });
        found
    }

    /// Last live sequence whose subject the matcher accepts.
    pub(crate) fn last_matching(&self, m: &Matcher<'_>) -> Option<u64> {
        if m.is_all() {
            return self.segs.back().map(|s| s.sum.last);
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

    /// Sequences of matching messages, oldest first, below `below` (exclusive). A
    /// literal filter walks only its subject's range (a roll-up of one subject, as each
    /// schedule is stored, must not read the whole stream).
    pub(crate) fn matching_seqs(&self, m: &mut Matcher<'_>, below: u64) -> Vec<u64> {
        if let Some(lit) = m.literal() {
            let Some(st) = self.subject_state(lit) else {
                return Vec::new();
            };
            let id = self.subjects.id(lit).unwrap_or(u32::MAX);
            let mut out = Vec::new();
            self.walk(st.first, |seq, slot| {
                if seq >= below || seq > st.last {
                    return false;
                }
                if slot.subj == id {
                    out.push(seq);
                }
                true
            });
            return out;
        }
        let table = &self.subjects;
        let mut out = Vec::new();
        self.walk(0, |seq, slot| {
            if seq >= below {
                return false;
            }
            if m.matches_id(table, slot.subj) {
                out.push(seq);
            }
            true
        });
        out
    }

    /// Interior deleted sequences between first and last, ascending.
    pub(crate) fn deleted(&self) -> Vec<u64> {
        if self.msgs == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut next = self.first_seq();
        self.walk(0, |seq, _| {
            out.extend(next..seq);
            next = seq + 1;
            true
        });
        out.extend(next..=self.last_seq);
        out
    }

    /// Count of deleted sequences between first and last.
    pub(crate) fn num_deleted(&self) -> u64 {
        if self.msgs == 0 {
            0
        } else {
            (self.last_seq + 1)
                .saturating_sub(self.first_seq())
                .saturating_sub(self.msgs)
        }
    }
}
