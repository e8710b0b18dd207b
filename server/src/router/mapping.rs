//! An account's subject mappings (`mappings {}`), applied to what its clients publish.
//!
//! Checked against nats-server 2.15.1: the first mapping whose source matches the
//! published subject rewrites it before anything else happens: permissions are checked
//! on the new subject, subscribers and streams see only the new subject, and the result
//! is not mapped again. Messages the server publishes itself (JetStream acks and
//! republish, imports, routes) are not mapped. A weighted mapping may leave a message on
//! its original subject (the remainder of its weights).
//!
//! The list is replaced as a whole on reload; the hot path reads one atomic flag when
//! the account has no mappings, and otherwise takes a short read lock to clone an `Arc`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytestring::ByteString;
use rand::RngExt;
use rill_protocol::mapping::Mapping;

/// The mappings of one account.
#[derive(Debug, Default)]
pub struct Mappings {
    any: AtomicBool,
    state: RwLock<Arc<State>>,
}

#[derive(Debug, Default)]
struct State {
    list: Vec<Mapping>,
    /// The local cluster, for cluster-scoped destinations.
    cluster: Option<String>,
}

impl Mappings {
    /// Replaces the mappings (start and reload). `cluster` is the server's cluster name.
    pub fn set(&self, list: Vec<Mapping>, cluster: Option<String>) {
        let any = !list.is_empty();
        *crate::locks::write(&self.state) = Arc::new(State { list, cluster });
        self.any.store(any, Ordering::Release);
    }

    /// True when the account has at least one mapping.
    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// The subject `subject` is published to after mapping, or `None` when no mapping
    /// applies (or the draw kept the original subject).
    pub fn map(&self, subject: &str) -> Option<ByteString> {
        if self.is_empty() {
            return None;
        }
        let state = Arc::clone(&crate::locks::read(&self.state));
        let mapping = state.list.iter().find(|m| m.matches(subject))?;
        let mut rand = |n: u32| rand::rng().random_range(0..n.max(1));
        mapping
            .select(subject, state.cluster.as_deref(), &mut rand)
            .map(ByteString::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(src: &str, dest: &str) -> Mapping {
        Mapping::new(src, &[(dest.to_owned(), 100, None)]).expect("valid")
    }

    #[test]
    fn the_first_matching_mapping_applies_once() {
        let m = Mappings::default();
        assert!(m.is_empty());
        assert_eq!(m.map("a.x"), None);
        m.set(
            vec![
                mapping("a.*", "b.$1"),
                mapping("a.x", "never"),
                mapping("b.*", "c.$1"),
            ],
            None,
        );
        assert_eq!(m.map("a.x").as_deref(), Some("b.x"));
        assert_eq!(m.map("z"), None);
        m.set(Vec::new(), None);
        assert_eq!(m.map("a.x"), None);
    }
}
