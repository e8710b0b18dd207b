//! The bridge between consumer actors and the JetStream service: a stream's
//! [`StreamHandle`] as a [`Source`], the stream-side [`ConsumerLink`], and starting,
//! restoring and stopping consumers.
//!
//! Owns no state: the consumers live in `JetStream::consumers` (a [`Registry`]) and in
//! each stream's link registry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rill_protocol::jsapi::{
    ApiError, ConsumerConfig, ConsumerName, ErrorCode, RetentionPolicy, StorageType, StreamConfig,
    Timestamp,
};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{ConsumerHandle, Outbox, Persist, Shared, Source, StartSpec, StoredConsumer, start};
use crate::config::SyncInterval;
use crate::jetstream::JetStream;
use crate::jetstream::store::{StdFs, StreamStore, meta};
use crate::jetstream::stream::{ConsumerLink, StreamHandle};

impl Source for StreamHandle {
    async fn read<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static,
    {
        self.call(move |core| Ok(f(core.store()))).await
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
        let stream = self.clone();
        async move { StreamHandle::read_after(&stream, seen, f).await }
    }

    fn last_seq_watch(&self) -> watch::Receiver<u64> {
        StreamHandle::last_seq_watch(self)
    }

    async fn remove_acked(&self, seqs: Vec<u64>) -> Result<u64, ApiError> {
        StreamHandle::remove_acked(self, seqs).await
    }

    fn register(&self, shared: Arc<Shared>) {
        self.register_consumer(Arc::new(Link(shared)));
    }

    async fn unregister(&self, name: String) {
        let _ = self.unregister_consumer(&name).await;
    }
}

/// A consumer as its stream sees it.
#[derive(Debug)]
struct Link(Arc<Shared>);

impl ConsumerLink for Link {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn filters(&self) -> Vec<String> {
        self.0.filters()
    }

    fn needs_ack(&self, seq: u64) -> bool {
        self.0.needs(seq)
    }

    fn stop(&self) {
        self.0.request_stop();
    }

    fn internal(&self) -> bool {
        self.0.direct
    }
}

/// With `sync: always`, how long deliveries and plain acks (which nobody waits for) may
/// stay unsynced: a crash in that window only means redelivery. Acks sent as requests
/// are synced before they are answered.
const ALWAYS_SYNC_WINDOW: Duration = Duration::from_millis(100);

/// Builds the start spec of consumer `config.name` on `stream` for `js`.
///
/// # Errors
/// `CONSUMER_CREATE` when the name breaks the name rule (a create checked it already; a
/// stored config read back from disk is checked here).
pub(crate) fn spec(
    js: &JetStream,
    stream: StreamHandle,
    scfg: &StreamConfig,
    config: ConsumerConfig,
    created: Timestamp,
    restored: bool,
) -> Result<StartSpec<StreamHandle>, ApiError> {
    let name =
        ConsumerName::new(config.name.clone()).map_err(|e| ErrorCode::CONSUMER_CREATE.err(e))?;
    let durable = config.is_durable();
    let persist = (scfg.storage == StorageType::File && durable).then(|| Persist {
        vfs: StdFs::shared(),
        root: js.root.clone(),
    });
    Ok(StartSpec {
        stream: stream.name().clone(),
        name,
        config,
        created,
        source: stream,
        outbox: Outbox::new(Arc::clone(&js.account)),
        persist,
        registry: js.consumers.clone(),
        interest: scfg.retention == RetentionPolicy::Interest,
        remove_acked: scfg.retention != RetentionPolicy::Limits,
        sync_interval: match js.config().sync {
            SyncInterval::Always => ALWAYS_SYNC_WINDOW,
            SyncInterval::Every(d) => d,
        },
        restored,
        store: None,
    })
}

/// Restores every stored consumer of every file stream (call after the streams).
pub(crate) async fn restore(js: &JetStream) {
    for handle in js.streams() {
        let Ok(scfg) = handle.config().await else {
            continue;
        };
        if scfg.storage != StorageType::File {
            continue;
        }
        let listed = match meta::list_consumers(StdFs::shared().as_ref(), &js.root, &scfg.name) {
            Ok(l) => l,
            Err(e) => {
                warn!("Could not list consumers of stream \"{}\": {e}", scfg.name);
                continue;
            }
        };
        for (name, bytes) in listed {
            let stored = bytes.map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<StoredConsumer>(&b).map_err(|e| e.to_string())
            });
            let stored = match stored {
                Ok(s) => s,
                Err(e) => {
                    warn!(
                        "Could not restore consumer \"{}\" > \"{name}\": {e}",
                        scfg.name
                    );
                    continue;
                }
            };
            let spec = spec(
                js,
                handle.clone(),
                &scfg,
                stored.config,
                stored.created,
                true,
            );
            let started = match spec {
                Ok(spec) => start(spec).await.map(drop),
                Err(e) => Err(e),
            };
            match started {
                Ok(_) => info!("  Restored consumer \"{}\" > \"{name}\"", scfg.name),
                Err(e) => warn!(
                    "Could not restore consumer \"{}\" > \"{name}\": {}",
                    scfg.name, e.description
                ),
            }
        }
    }
}

/// Answers every consumer's waiting pulls `409 Server Shutdown` (before clients close).
pub(crate) async fn release_waiting(js: &JetStream) {
    for h in js.consumers.all() {
        h.release_waiting().await;
    }
}

/// Stops every consumer, flushing its state (server shutdown).
pub(crate) async fn shutdown(js: &JetStream) {
    let all: Vec<ConsumerHandle> = js.consumers.all();
    for h in all {
        h.stop(false).await;
    }
}
