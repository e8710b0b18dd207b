//! The routing trie against the protocol crate's reference matcher: for random
//! filters (with `*` and `>`), random inserts and removals, and random subjects,
//! `Sublist::matches` returns exactly the subscriptions whose filter `matches`.

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use rill_protocol::subject::matches;
use rill_server::router::Sublist;

fn token() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just("dd".to_string())
    ]
}

fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![4 => token(), 1 => Just("*".to_string())], 1..4),
        any::<bool>(),
    )
        .prop_map(|(mut tokens, tail)| {
            if tail {
                tokens.push(">".into());
            }
            tokens.join(".")
        })
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, Option<String>),
    Remove(usize),
    Match(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (filter(), prop::option::of(prop_oneof![Just("q1".to_string()), Just("q2".to_string())]))
            .prop_map(|(f, q)| Op::Insert(f, q)),
        1 => any::<usize>().prop_map(Op::Remove),
        3 => subject().prop_map(Op::Match),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn trie_agrees_with_reference_matcher(ops in prop::collection::vec(op(), 1..80)) {
        let list = Sublist::new();
        let mut live: Vec<(u32, String, Option<String>)> = Vec::new();
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::Insert(f, q) => {
                    let queue = q.clone().map(Bytes::from);
                    list.insert(&f, queue.as_ref(), next);
                    live.push((next, f, q));
                    next += 1;
                }
                Op::Remove(i) if !live.is_empty() => {
                    let (id, f, q) = live.swap_remove(i % live.len());
                    let queue = q.map(Bytes::from);
                    prop_assert!(list.remove(&f, queue.as_ref(), &id));
                }
                Op::Remove(_) => {}
                Op::Match(s) => {
                    let result = list.matches(&Bytes::from(s.clone()));
                    let got: BTreeSet<u32> = result.plain.iter().copied()
                        .chain(result.queues.iter().flat_map(|(_, m)| m.iter().copied()))
                        .collect();
                    let want: BTreeSet<u32> = live.iter().filter(|(_, f, _)| matches(f, &s)).map(|(id, _, _)| *id).collect();
                    prop_assert_eq!(got, want, "subject {}", s);
                    let groups: BTreeSet<&str> = live.iter()
                        .filter(|(_, f, q)| q.is_some() && matches(f, &s))
                        .filter_map(|(_, _, q)| q.as_deref()).collect();
                    prop_assert_eq!(result.queues.len(), groups.len());
                }
            }
            prop_assert_eq!(list.count(), live.len());
        }
    }
}
