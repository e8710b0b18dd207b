//! The subject trie: subscriptions by filter subject, with `*` and `>` nodes and
//! queue groups per node, plus a match-result cache.
//!
//! # Invariants
//! - Every node reachable from the root holds at least one subscription or has a
//!   non-empty child level (empty nodes are pruned on removal).
//! - A cached match result for subject `s` equals a fresh match of `s`: every insert
//!   or removal of filter `f` evicts the cached subjects that `f` matches, and a
//!   result computed concurrently with a change is not cached (generation check).
//!
//! Why two `std` locks: matches vastly outnumber changes, so the trie sits behind an
//! `RwLock` and the cache behind its own `RwLock` whose hit path is a read lock and a
//! hash lookup. Neither is ever held across an `.await`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use rustc_hash::FxHasher;

use crate::locks;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Most cached subjects (as nats-server's sublist cache).
const CACHE_MAX: usize = 1024;

/// What one subject matches: every plain subscription, and the members of each queue group.
#[derive(Debug, Clone)]
pub struct MatchResult<T> {
    /// Plain subscriptions: each gets the message.
    pub plain: Vec<T>,
    /// Queue groups `(name, members)`: one member of each gets the message.
    pub queues: Vec<(Bytes, Vec<T>)>,
}

impl<T> Default for MatchResult<T> {
    fn default() -> Self {
        Self {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl<T> MatchResult<T> {
    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

#[derive(Debug)]
struct Node<T> {
    next: Option<Box<Level<T>>>,
    plain: Vec<T>,
    queues: Vec<(Bytes, Vec<T>)>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            next: None,
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.plain.is_empty()
            && self.queues.is_empty()
            && self.next.as_ref().is_none_or(|l| l.is_empty())
    }
}

#[derive(Debug)]
struct Level<T> {
    literal: FxMap<Box<str>, Node<T>>,
    star: Option<Box<Node<T>>>,
    tail: Option<Box<Node<T>>>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Self {
            literal: FxMap::default(),
            star: None,
            tail: None,
        }
    }
}

impl<T> Level<T> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.star.is_none() && self.tail.is_none()
    }

    fn node_mut(&mut self, token: &str) -> &mut Node<T> {
        match token {
            "*" => self.star.get_or_insert_with(Box::default),
            ">" => self.tail.get_or_insert_with(Box::default),
            lit => self.literal.entry(lit.into()).or_default(),
        }
    }
}

#[derive(Debug)]
struct Trie<T> {
    root: Level<T>,
    count: usize,
    generation: u64,
}

#[derive(Debug)]
struct Cache<T> {
    entries: FxMap<Bytes, Arc<MatchResult<T>>>,
    generation: u64,
}

/// A subject trie of subscriptions of type `T` (compared with `==` on removal).
#[derive(Debug)]
pub struct Sublist<T> {
    trie: RwLock<Trie<T>>,
    cache: RwLock<Cache<T>>,
}

impl<T> Default for Sublist<T> {
    fn default() -> Self {
        Self {
            trie: RwLock::new(Trie {
                root: Level::default(),
                count: 0,
                generation: 0,
            }),
            cache: RwLock::new(Cache {
                entries: FxMap::default(),
                generation: 0,
            }),
        }
    }
}

impl<T: Clone + PartialEq> Sublist<T> {
    /// An empty sublist.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions.
    pub fn count(&self) -> usize {
        locks::read(&self.trie).count
    }

    /// Number of cached match results.
    pub fn cache_len(&self) -> usize {
        locks::read(&self.cache).entries.len()
    }

    /// Adds `sub` under the (already validated) filter `subject`, in `queue` if given.
    pub fn insert(&self, subject: &str, queue: Option<&Bytes>, sub: T) {
        let mut trie = locks::write(&self.trie);
        let mut level = &mut trie.root;
        let mut tokens = subject.split('.').peekable();
        let node = loop {
            let Some(token) = tokens.next() else { return };
            let node = level.node_mut(token);
            if tokens.peek().is_none() {
                break node;
            }
            level = node.next.get_or_insert_with(Box::default);
        };
        match queue {
            None => node.plain.push(sub),
            Some(q) => match node.queues.iter_mut().find(|(name, _)| name == q) {
                Some((_, members)) => members.push(sub),
                None => node.queues.push((q.clone(), vec![sub])),
            },
        }
        trie.count += 1;
        trie.generation += 1;
        let generation = trie.generation;
        self.evict(subject, generation);
    }

    /// Removes `sub` from `subject`; returns whether it was there.
    pub fn remove(&self, subject: &str, queue: Option<&Bytes>, sub: &T) -> bool {
        let mut trie = locks::write(&self.trie);
        let tokens: Vec<&str> = subject.split('.').collect();
        let removed = remove_from(&mut trie.root, &tokens, queue, sub);
        if removed {
            trie.count -= 1;
            trie.generation += 1;
            let generation = trie.generation;
            self.evict(subject, generation);
        }
        removed
    }

    /// Drops cached results for subjects that `filter` matches; called with the trie write-locked.
    fn evict(&self, filter: &str, generation: u64) {
        let mut cache = locks::write(&self.cache);
        cache.generation = generation;
        let literal = !rill_protocol::subject::has_wildcard(filter);
        if literal {
            cache.entries.remove(filter.as_bytes());
        } else {
            cache.entries.retain(|subject, _| {
                !std::str::from_utf8(subject)
                    .is_ok_and(|s| rill_protocol::subject::matches(filter, s))
            });
        }
    }

    /// Everything the literal `subject` matches.
    pub fn matches(&self, subject: &[u8]) -> Arc<MatchResult<T>> {
        if let Some(hit) = locks::read(&self.cache).entries.get(subject) {
            return Arc::clone(hit);
        }
        let Ok(text) = std::str::from_utf8(subject) else {
            return Arc::default();
        };
        let (result, generation) = {
            let trie = locks::read(&self.trie);
            let mut result = MatchResult::default();
            let tokens: Vec<&str> = text.split('.').collect();
            collect(&trie.root, &tokens, &mut result);
            (Arc::new(result), trie.generation)
        };
        let mut cache = locks::write(&self.cache);
        if cache.generation == generation {
            if cache.entries.len() >= CACHE_MAX {
                // Cheap bounded eviction: drop an arbitrary half rather than track recency.
                let drop: Vec<Bytes> = cache.entries.keys().take(CACHE_MAX / 2).cloned().collect();
                for k in drop {
                    cache.entries.remove(&k);
                }
            }
            // An owned copy: a slice of the publisher's frame would pin its read buffer.
            cache
                .entries
                .insert(Bytes::copy_from_slice(subject), Arc::clone(&result));
        }
        result
    }

    /// Visits every subscription (for monitoring and shutdown).
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        visit(&locks::read(&self.trie).root, &mut f);
    }
}

fn visit<T>(level: &Level<T>, f: &mut impl FnMut(&T)) {
    let nodes = level
        .literal
        .values()
        .chain(level.star.as_deref())
        .chain(level.tail.as_deref());
    for node in nodes {
        node.plain.iter().for_each(&mut *f);
        node.queues.iter().flat_map(|(_, m)| m).for_each(&mut *f);
        if let Some(next) = &node.next {
            visit(next, f);
        }
    }
}

fn add_node<T: Clone>(node: &Node<T>, result: &mut MatchResult<T>) {
    result.plain.extend(node.plain.iter().cloned());
    for (name, members) in &node.queues {
        match result.queues.iter_mut().find(|(n, _)| n == name) {
            Some((_, all)) => all.extend(members.iter().cloned()),
            None => result.queues.push((name.clone(), members.clone())),
        }
    }
}

fn collect<T: Clone>(level: &Level<T>, tokens: &[&str], result: &mut MatchResult<T>) {
    let Some((first, rest)) = tokens.split_first() else {
        return;
    };
    if let Some(tail) = &level.tail {
        add_node(tail, result);
    }
    let nodes = [level.literal.get(*first), level.star.as_deref()];
    for node in nodes.into_iter().flatten() {
        if rest.is_empty() {
            add_node(node, result);
        } else if let Some(next) = &node.next {
            collect(next, rest, result);
        }
    }
}

fn remove_from<T: PartialEq>(
    level: &mut Level<T>,
    tokens: &[&str],
    queue: Option<&Bytes>,
    sub: &T,
) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return false;
    };
    let node = match *first {
        "*" => level.star.as_deref_mut(),
        ">" => level.tail.as_deref_mut(),
        lit => level.literal.get_mut(lit),
    };
    let Some(node) = node else { return false };
    let removed = if rest.is_empty() {
        remove_sub(node, queue, sub)
    } else {
        match node.next.as_deref_mut() {
            Some(next) => {
                let removed = remove_from(next, rest, queue, sub);
                if next.is_empty() {
                    node.next = None;
                }
                removed
            }
            None => false,
        }
    };
    if removed && node.is_empty() {
        match *first {
            "*" => level.star = None,
            ">" => level.tail = None,
            lit => {
                level.literal.remove(lit);
            }
        }
    }
    removed
}

fn remove_sub<T: PartialEq>(node: &mut Node<T>, queue: Option<&Bytes>, sub: &T) -> bool {
    let list = match queue {
        None => &mut node.plain,
        Some(q) => match node.queues.iter_mut().find(|(name, _)| name == q) {
            Some((_, members)) => members,
            None => return false,
        },
    };
    let Some(pos) = list.iter().position(|s| s == sub) else {
        return false;
    };
    list.swap_remove(pos);
    node.queues.retain(|(_, members)| !members.is_empty());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &MatchResult<u32>) -> Vec<u32> {
        let mut v = r.plain.clone();
        v.sort_unstable();
        v
    }

    #[test]
    fn literal_and_wildcards() {
        let s = Sublist::new();
        s.insert("foo.bar", None, 1);
        s.insert("foo.*", None, 2);
        s.insert("foo.>", None, 3);
        s.insert(">", None, 4);
        s.insert("*.bar", None, 5);
        s.insert("foo", None, 6);
        assert_eq!(
            ids(&s.matches(&Bytes::from("foo.bar"))),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(ids(&s.matches(&Bytes::from("foo.bar.baz"))), vec![3, 4]);
        assert_eq!(ids(&s.matches(&Bytes::from("foo"))), vec![4, 6]);
        assert_eq!(s.count(), 6);
    }

    #[test]
    fn queue_groups_merge_across_nodes() {
        let s = Sublist::new();
        let q = Bytes::from("workers");
        s.insert("jobs.*", Some(&q), 1);
        s.insert("jobs.email", Some(&q), 2);
        s.insert("jobs.email", Some(&Bytes::from("audit")), 3);
        let r = s.matches(&Bytes::from("jobs.email"));
        assert!(r.plain.is_empty());
        assert_eq!(r.queues.len(), 2);
        let workers = r
            .queues
            .iter()
            .find(|(n, _)| n == "workers")
            .map(|(_, m)| m.len());
        assert_eq!(workers, Some(2));
    }

    #[test]
    fn cache_stays_correct_and_nodes_are_pruned() {
        let s = Sublist::new();
        let subject = Bytes::from("a.b.c");
        assert!(s.matches(&subject).is_empty());
        s.insert("a.*.c", None, 1);
        assert_eq!(ids(&s.matches(&subject)), vec![1]);
        s.insert("a.>", None, 2);
        assert_eq!(ids(&s.matches(&subject)), vec![1, 2]);
        assert!(s.remove("a.*.c", None, &1));
        assert!(!s.remove("a.*.c", None, &1));
        assert_eq!(ids(&s.matches(&subject)), vec![2]);
        assert!(s.remove("a.>", None, &2));
        assert!(s.matches(&subject).is_empty());
        assert_eq!(s.count(), 0);
        let trie = s.trie.read().expect("lock");
        assert!(trie.root.is_empty());
    }
}
