//! A token tree of subject filters that answers "which filter overlaps this one" in
//! time that grows with the subject's tokens, not with the number of filters: a
//! stream with 20,000 subjects is checked in milliseconds instead of comparing every
//! pair (seconds, with the API waiting).
//!
//! Overlap is [`rill_protocol::subject::filters_overlap`]'s: tokens match when equal
//! or when either is `*`; a `>` on either side matches everything from there on (so a
//! filter is stored only up to its first `>`).

use std::collections::HashMap;

/// Filters by token path, each remembered by the lowest index it was added with.
#[derive(Debug, Default)]
pub(crate) struct OverlapIndex {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<String, Node>,
    /// Lowest index of a filter that ends here.
    here: Option<usize>,
    /// Lowest index of a filter that ends strictly below here.
    below: Option<usize>,
}

fn min(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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

impl OverlapIndex {
    /// Adds `filter` as number `index`.
    pub(crate) fn insert(&mut self, filter: &str, index: usize) {
        let mut node = &mut self.root;
        for t in tokens(filter) {
            node.below = min(node.below, Some(index));
            node = node.children.entry(t.to_owned()).or_default();
        }
        node.here = min(node.here, Some(index));
    }

    /// The lowest index of an added filter that overlaps `filter`.
    pub(crate) fn lowest_overlap(&self, filter: &str) -> Option<usize> {
        let tokens: Vec<&str> = tokens(filter).collect();
        lowest(&self.root, &tokens)
    }

    /// True when an added filter overlaps `filter`.
    pub(crate) fn overlaps(&self, filter: &str) -> bool {
        self.lowest_overlap(filter).is_some()
    }
}

fn lowest(node: &Node, rest: &[&str]) -> Option<usize> {
    let Some((&t, after)) = rest.split_first() else {
        return node.here;
    };
    if t == ">" {
        return node.below;
    }
    // A stored `>` here matches this token and everything after it.
    let mut best = node.children.get(">").and_then(|c| c.here);
    if t == "*" {
        for (k, child) in &node.children {
            if k != ">" {
                best = min(best, lowest(child, after));
            }
        }
        return best;
    }
    for k in [t, "*"] {
        if let Some(child) = node.children.get(k) {
            best = min(best, lowest(child, after));
        }
    }
    best
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
        assert!(!idx.overlaps("t.>"));
    }
}
