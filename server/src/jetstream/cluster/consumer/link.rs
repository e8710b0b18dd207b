//! How a replicated consumer shows in the registry of each replica of its stream,
//! wherever its leader runs it: a [`GroupLink`] under the consumer's name, so that
//! every replica counts it (`consumer_count`), an interest stream stores only what a
//! consumer's filter wants, and interest retention keeps what it has not acked yet.
//!
//! On the server whose member leads, the running actor's own link stands in for it
//! (more current: it knows acks before they are committed); when that member hands
//! the leadership back, the group link takes its place again. A server holding a
//! replica of the stream but no member of the consumer's group (a consumer of fewer
//! replicas than its limits stream) registers a link without state: counted, never
//! in the way of removing a message.

use std::sync::Arc;

use crate::jetstream::stream::{ConsumerLink, StreamHandle};
use crate::locks;

use super::state::{Committed, needs};

/// A replicated consumer in a stream replica's registry.
#[derive(Debug)]
pub struct GroupLink {
    name: String,
    filters: Vec<String>,
    /// The member's committed state, or `None` on a server without a member.
    state: Option<Committed>,
}

impl GroupLink {
    /// Registers (or replaces) the link of consumer `name` with `filters` in `stream`.
    pub fn register(
        stream: &StreamHandle,
        name: &str,
        filters: Vec<String>,
        state: Option<Committed>,
    ) {
        let link = GroupLink {
            name: name.to_string(),
            filters,
            state,
        };
        stream.register_consumer(Arc::new(link));
    }
}

impl ConsumerLink for GroupLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn filters(&self) -> Vec<String> {
        self.filters.clone()
    }

    fn needs_ack(&self, seq: u64) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| needs(&locks::read(s), seq))
    }

    /// The member (or the meta group's removal) stops the consumer, not the stream.
    fn stop(&self) {}
}
