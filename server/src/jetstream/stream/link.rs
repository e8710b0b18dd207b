//! The types a stream shares with its handle and its consumers: the [`ConsumerLink`] a
//! consumer registers with its stream, the stream's consumer table, and the [`Batch`]
//! that [`super::StreamHandle::load_batch`] answers with. A leaf of `stream/`: the
//! stream actor (`core.rs`) and the handle (`handle.rs`) import it instead of each other.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::jetstream::store::StoredMsg;

/// What a stream knows about one of its consumers. Implemented by the consumer
/// actor's shared part; every method must be cheap and must not block (the stream
/// thread calls them while it holds no lock but may be in the middle of a batch).
pub trait ConsumerLink: Send + Sync + fmt::Debug {
    /// The consumer's name.
    fn name(&self) -> &str;
    /// Its filter subjects (empty = the whole stream).
    fn filters(&self) -> Vec<String>;
    /// Interest retention: does this consumer still need `seq` (not yet acked, or
    /// not yet delivered)? A consumer whose filters do not match the message's
    /// subject is not asked.
    fn needs_ack(&self, seq: u64) -> bool;
    /// The stream is being deleted: stop delivering and release resources.
    /// Must not call back into the stream.
    fn stop(&self);
    /// A mirror's or source's internal consumer: not in the stream's `consumer_count`.
    fn internal(&self) -> bool {
        false
    }
}

/// The stream's consumers, shared by the handle and the stream's actor.
pub(crate) type Consumers = Arc<RwLock<BTreeMap<String, Arc<dyn ConsumerLink>>>>;

/// A message batch from [`super::StreamHandle::load_batch`].
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Messages in sequence order.
    pub msgs: Vec<StoredMsg>,
    /// The stream's last sequence when the batch was read.
    pub last_seq: u64,
}
