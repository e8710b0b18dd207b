//! A token tree of subject filters that answers "which filter overlaps this one" in
//! time that grows with the subject's tokens, not with the number of filters: a
//! stream with 20,000 subjects is checked in milliseconds instead of comparing every
//! pair (seconds, with the API waiting).
//!
//! Overlap is [`rill_protocol::subject::filters_overlap`]'s: tokens match when equal
//! or when either is `*`; a `>` on either side matches everything from there on (so a
//! filter is stored only up to its first `>`).
//!
//! [`OverlapIndex`] serves one config's own subjects; [`OwnedFilters`] is kept with an
//! account's stream registry, so a new stream's subjects are checked against all the
//! others without visiting each of them.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

/// A token tree whose nodes carry `M`: what is known of the filters that end at the
/// node (`here`) and of those that end strictly below it (`below`).
#[derive(Debug)]
struct Tree<M> {
    root: Node<M>,
}

#[derive(Debug)]
struct Node<M> {
    children: HashMap<String, Node<M>>,
    here: M,
    below: M,
}

impl<M: Default> Default for Tree<M> {
    fn default() -> Self {
        Self {
            root: Node::default(),
        }
    }
}

impl<M: Default> Default for Node<M> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            here: M::default(),
            below: M::default(),
        }
    }
}

/// The tokens that matter for overlap: up to and including the first `>`.
fn tokens(filter: &str) -> impl Iterator<Item = &str> {
    let mut done = false;
    filter.split('.').take_while(move |t| {
        let take = !done;
        done = *t == ">";
        take
    })
}

impl<M: Default> Tree<M> {
    /// Walks down to `filter`'s node, creating what is missing: `on_path` for every
    /// node above it, `at_end` for the node itself.
    fn mark(&mut self, filter: &str, mut on_path: impl FnMut(&mut M), at_end: impl FnOnce(&mut M)) {
        let mut node = &mut self.root;
        for t in tokens(filter) {
            on_path(&mut node.below);
            node = node.children.entry(t.to_owned()).or_default();
        }
        at_end(&mut node.here);
    }

    /// Calls `f` with the marks of every group of stored filters that overlap `filter`,
    /// until `f` breaks.
    fn visit(&self, filter: &str, f: &mut impl FnMut(&M) -> ControlFlow<()>) -> ControlFlow<()> {
        let tokens: Vec<&str> = tokens(filter).collect();
        visit(&self.root, &tokens, f)
    }
}

fn visit<M>(
    node: &Node<M>,
    rest: &[&str],
    f: &mut impl FnMut(&M) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Some((&t, after)) = rest.split_first() else {
        return f(&node.here);
    };
    if t == ">" {
        return f(&node.below);
    }
    // A stored `>` here matches this token and everything after it.
    if let Some(c) = node.children.get(">") {
        f(&c.here)?;
    }
    if t == "*" {
        for (k, child) in &node.children {
            if k != ">" {
                visit(child, after, f)?;
            }
        }
        return ControlFlow::Continue(());
    }
    for k in [t, "*"] {
        if let Some(child) = node.children.get(k) {
            visit(child, after, f)?;
        }
    }
    ControlFlow::Continue(())
}

/// Filters by token path, each remembered by the lowest index it was added with.
#[derive(Debug, Default)]
pub(crate) struct OverlapIndex {
    tree: Tree<Option<usize>>,
}

fn min(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl OverlapIndex {
    /// Adds `filter` as number `index`.
    pub(crate) fn insert(&mut self, filter: &str, index: usize) {
        let lower = |m: &mut Option<usize>| *m = min(*m, Some(index));
        self.tree.mark(filter, lower, lower);
    }

    /// The lowest index of an added filter that overlaps `filter`.
    pub(crate) fn lowest_overlap(&self, filter: &str) -> Option<usize> {
        let mut best = None;
        let _ = self.tree.visit(filter, &mut |m| {
            best = min(best, *m);
            ControlFlow::Continue(())
        });
        best
    }
}

/// How many of each owner's filters end at (or below) a node.
type Owners = HashMap<Arc<str>, u32>;

/// Filters of many owners (an account's streams), kept as they come and go, that
/// answer "does this filter overlap one of another owner's" in time that grows with
/// the filter's tokens, not with the number of owners.
#[derive(Debug, Default)]
pub struct OwnedFilters {
    tree: Tree<Owners>,
}

impl OwnedFilters {
    /// Adds `owner`'s `filter`.
    pub fn insert(&mut self, owner: &Arc<str>, filter: &str) {
        let add = |m: &mut Owners| *m.entry(Arc::clone(owner)).or_default() += 1;
        self.tree.mark(filter, add, add);
    }

    /// Removes one of `owner`'s `filter`s (added before), and the nodes left empty.
    pub fn remove(&mut self, owner: &str, filter: &str) {
        let tokens: Vec<&str> = tokens(filter).collect();
        remove(&mut self.tree.root, &tokens, owner);
    }

    /// True when `filter` overlaps a filter of an owner other than `owner`.
    pub fn overlaps_other(&self, filter: &str, owner: &str) -> bool {
        let other = |m: &Owners| m.len() > 1 || m.keys().any(|k| **k != *owner);
        self.tree
            .visit(filter, &mut |m| match other(m) {
                true => ControlFlow::Break(()),
                false => ControlFlow::Continue(()),
            })
            .is_break()
    }
}

fn forget(marks: &mut Owners, owner: &str) {
    if let Some(n) = marks.get_mut(owner) {
        *n -= 1;
        if *n == 0 {
            marks.remove(owner);
        }
    }
}

fn remove(node: &mut Node<Owners>, rest: &[&str], owner: &str) {
    let Some((&t, after)) = rest.split_first() else {
        forget(&mut node.here, owner);
        return;
    };
    forget(&mut node.below, owner);
    if let Some(child) = node.children.get_mut(t) {
        remove(child, after, owner);
        if child.here.is_empty() && child.below.is_empty() {
            node.children.remove(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use rill_protocol::subject::filters_overlap;

    use super::*;

    #[test]
    fn agrees_with_filters_overlap() {
        let filters = [
            "a", "a.b", "a.*", "a.>", "*.b", ">", "a.b.c", "*.*", "b.*.c", "a.>.x", "*", "a..b",
            "", "x.y.z", "*.>",
        ];
        for (i, f) in filters.iter().enumerate() {
            let mut idx = OverlapIndex::default();
            for (j, g) in filters.iter().enumerate().skip(i + 1) {
                idx.insert(g, j);
            }
            let want = filters
                .iter()
                .enumerate()
                .skip(i + 1)
                .find(|(_, g)| filters_overlap(f, g))
                .map(|(j, _)| j);
            assert_eq!(idx.lowest_overlap(f), want, "{f:?}");
        }
    }

    #[test]
    fn many_literals_are_quick_to_check() {
        let mut idx = OverlapIndex::default();
        for i in 0..20_000 {
            idx.insert(&format!("s.{i}"), i);
        }
        assert_eq!(idx.lowest_overlap("s.19999"), Some(19_999));
        assert_eq!(idx.lowest_overlap("s.*"), Some(0));
        assert_eq!(idx.lowest_overlap("t.>"), None);
    }

    #[test]
    fn owned_filters_agree_with_filters_overlap_and_forget_removed_owners() {
        let filters = [
            "a", "a.b", "a.*", "a.>", "*.b", ">", "a.b.c", "*.*", "b.*.c", "*", "x.y.z", "*.>",
        ];
        let owners: Vec<Arc<str>> = (0..filters.len())
            .map(|i| Arc::from(format!("s{i}")))
            .collect();
        let mut idx = OwnedFilters::default();
        for (o, f) in owners.iter().zip(filters) {
            idx.insert(o, f);
        }
        for (i, f) in filters.iter().enumerate() {
            let want = filters
                .iter()
                .enumerate()
                .any(|(j, g)| j != i && filters_overlap(f, g));
            assert_eq!(idx.overlaps_other(f, &owners[i]), want, "{f:?}");
        }
        // Removing all but one owner leaves nothing that overlaps another.
        for (o, f) in owners.iter().zip(filters).skip(1) {
            idx.remove(o, f);
        }
        assert!(!idx.overlaps_other(">", &owners[0]));
        assert!(idx.overlaps_other("a", "other"));
        idx.remove(&owners[0], filters[0]);
        assert!(idx.tree.root.children.is_empty() && idx.tree.root.below.is_empty());
    }

    #[test]
    fn owned_filters_count_an_owner_per_filter() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("A"), Arc::from("B"));
        let mut idx = OwnedFilters::default();
        idx.insert(&a, "kv.a.>");
        idx.insert(&a, "kv.x");
        idx.insert(&b, "kv.b.>");
        assert!(!idx.overlaps_other("kv.a.1", "A"));
        assert!(idx.overlaps_other("kv.*.1", "A"));
        assert!(idx.overlaps_other("kv.>", "B"));
        idx.remove("B", "kv.b.>");
        assert!(!idx.overlaps_other("kv.>", "A"));
        assert!(idx.overlaps_other("kv.>", "B"));
    }
}
