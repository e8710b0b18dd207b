//! A connection's session: opened on CONNECT (a clean start drops what was stored, a
//! persistent one restores its subscriptions and their QoS 1 consumers), saved to
//! `$MQTT_sess` whenever its subscriptions change, and on close either kept (3.1.1
//! persistent sessions; MQTT 5 with a session expiry interval, removed once it passes)
//! or dropped with its consumers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::store::{MqttStore, SessionRecord, hash};

/// A connection's handle on its stored session.
#[derive(Debug)]
pub(super) struct Session {
    /// The account's MQTT state.
    pub store: Arc<MqttStore>,
    /// What is stored (kept in step with the connection's subscriptions).
    pub record: SessionRecord,
    /// Consumers made by this session so far (for unique durable names).
    pub made: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when a stored session outlived its expiry interval.
fn expired(r: &SessionRecord) -> bool {
    r.gone_at > 0 && r.expiry != u32::MAX && now_secs() >= r.gone_at + u64::from(r.expiry)
}

impl Session {
    /// Opens the session of `client_id`: a clean start (or an expired session) drops the
    /// stored one; otherwise it is resumed. Returns the session and "session present".
    pub(super) async fn open(
        store: Arc<MqttStore>,
        client_id: &str,
        clean_start: bool,
        expiry: u32,
    ) -> (Self, bool) {
        let stored = match store.load_session(client_id).await {
            Ok(s) => s,
            Err(e) => {
                warn!("MQTT session of \"{client_id}\" could not be read: {e}");
                None
            }
        };
        let resumed = match stored {
            Some(r) if clean_start || expired(&r) => {
                store.drop_session(&r).await;
                None
            }
            other => other,
        };
        let present = resumed.is_some();
        let mut record = resumed.unwrap_or_else(|| SessionRecord {
            id: client_id.to_string(),
            ..SessionRecord::default()
        });
        record.expiry = expiry;
        record.gone_at = 0;
        let session = Self {
            store,
            record,
            made: 0,
        };
        if expiry > 0 {
            session.save().await;
        }
        (session, present)
    }

    /// Writes the record when the session outlives its connection.
    pub(super) async fn save(&self) {
        if self.record.expiry == 0 {
            return;
        }
        if let Err(e) = self.store.save_session(&self.record).await {
            warn!("MQTT session of \"{}\" not saved: {e}", self.record.id);
        }
    }

    /// A fresh durable name and deliver subject for a QoS 1 subscription.
    pub(super) fn next_consumer(&mut self) -> (String, String) {
        self.made += 1;
        let nonce: u32 = rand::random();
        let name = format!("{}_{nonce:08x}{}", hash(&self.record.id), self.made);
        let deliver = format!("$MQTT.sub.{name}");
        (name, deliver)
    }
}

impl Session {
    /// On close: keep the session for its expiry interval, or drop it and its consumers.
    pub(super) async fn close(self) {
        let mut session = self;
        if session.record.expiry == 0 {
            session.store.drop_session(&session.record).await;
            return;
        }
        session.record.gone_at = now_secs();
        session.save().await;
        if session.record.expiry != u32::MAX {
            // Removed when the interval passes, unless the client came back.
            let wait = Duration::from_secs(u64::from(session.record.expiry));
            let (store, id) = (session.store, session.record.id);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Ok(Some(r)) = store.load_session(&id).await
                    && expired(&r)
                {
                    store.drop_session(&r).await;
                }
            });
        }
    }
}
