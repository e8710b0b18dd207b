//! [`StoreSource`]: a bare store as a consumer's [`Source`], the test double the consumer actor
//! tests run over instead of a stream actor. Compiled for tests only.

use std::future::Future;
use std::sync::{Arc, Mutex};

use rill_protocol::jsapi::{ApiError, ErrorCode};
use tokio::sync::watch;

use super::Shared;
use super::source::Source;
use crate::jetstream::store::{StoreError, StreamStore};
use crate::locks;

/// A bare [`MemStore`](crate::jetstream::store::MemStore) as a source, for unit tests. Appends
/// bump the watch like a stream would.
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Arc<Mutex<Box<dyn StreamStore>>>,
    last: Arc<watch::Sender<u64>>,
    remove_on_ack: bool,
}

impl StoreSource {
    /// Wraps `store`; with `remove_on_ack` acked messages are removed (work queue).
    pub fn new(store: Box<dyn StreamStore>, remove_on_ack: bool) -> Self {
        let last = store.state().last_seq;
        Self {
            store: Arc::new(Mutex::new(store)),
            last: Arc::new(watch::channel(last).0),
            remove_on_ack,
        }
    }

    /// Appends a message and announces it.
    ///
    /// # Errors
    /// Store errors.
    pub fn append(
        &self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<u64, StoreError> {
        let mut s = locks::lock(&self.store);
        let (seq, _) = s.append(subject, headers, payload)?;
        self.last.send_replace(seq);
        Ok(seq)
    }

    /// Number of stored messages.
    pub fn msgs(&self) -> u64 {
        let s = locks::lock(&self.store);
        s.state().msgs
    }
}

impl Source for StoreSource {
    async fn read<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static,
    {
        let s = locks::lock(&self.store);
        Ok(f(s.as_ref()))
    }

    fn read_after<R, F>(
        &self,
        seen: u64,
        f: F,
    ) -> impl Future<Output = Result<R, ApiError>> + Send + 'static
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static,
    {
        let (source, mut last) = (self.clone(), self.last.subscribe());
        async move {
            let _ = last.wait_for(|v| *v > seen).await;
            source.read(f).await
        }
    }

    fn last_seq_watch(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }

    fn register(&self, _shared: Arc<Shared>) {}

    async fn unregister(&self, _name: String) {}

    async fn remove_acked(&self, seqs: Vec<u64>) -> Result<u64, ApiError> {
        if !self.remove_on_ack {
            return Ok(0);
        }
        let mut s = locks::lock(&self.store);
        let mut n = 0;
        for seq in seqs {
            match s.remove(seq) {
                Ok(()) => n += 1,
                Err(StoreError::NotFound | StoreError::Deleted) => {}
                Err(e) => return Err(ErrorCode::STREAM_STORE_FAILED.err(e)),
            }
        }
        Ok(n)
    }
}
