//! The sending side of one MQTT connection ([`Outlet`]): packets encoded for the
//! connection's protocol version into its [`ClientLink`]'s outbound queue, and the
//! per-connection delivery state every delivering task shares — packet ids of QoS 1
//! messages in flight (and the JetStream ack each one settles), and MQTT 5's outgoing
//! topic aliases and the client's maximum packet size.
//!
//! Deliveries run on the publisher's task (the router calls subscribers synchronously),
//! so this state sits behind a `std` mutex held only to pick a packet id or alias —
//! never across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tracing::debug;

use super::packet::{self, QoS, Version, v5};
use crate::client::{ClientLink, Pushed};
use crate::locks;

/// What a delivery became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Queued for the socket.
    Queued,
    /// Not sent and never will be (too large for the client, or encoding failed):
    /// a QoS 1 message in this state is settled as if delivered.
    Discarded,
    /// Not sent now (no packet id free, connection closing): JetStream sends it again.
    Refused,
}

/// One QoS 1 or 2 message sent and not yet acknowledged (PUBACK, PUBCOMP).
#[derive(Debug, Clone)]
struct Inflight {
    /// The JetStream ack subject that settles it (at PUBACK or PUBREC).
    ack: Bytes,
    /// Its identity across redeliveries: `<stream>.<consumer>.<stream seq>`.
    key: String,
}

#[derive(Debug, Default)]
struct OutState {
    next_pkid: u16,
    inflight: HashMap<u16, Inflight>,
    by_key: HashMap<String, u16>,
    /// Outgoing topic aliases (MQTT 5), by topic.
    aliases: HashMap<String, u16>,
}

/// The MQTT 5 limits the client announced in CONNECT.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientLimits {
    /// Most QoS 1 messages in flight (receive maximum); 65535 when unset.
    pub receive_max: u16,
    /// Largest packet the client accepts; `None` when unset.
    pub max_packet: Option<u32>,
    /// Most topic aliases the client accepts from the server.
    pub alias_max: u16,
}

/// The sending side of one MQTT connection.
#[derive(Debug)]
pub(crate) struct Outlet {
    /// The connection's registry entry and outbound queue.
    pub(crate) link: Arc<ClientLink>,
    /// The connection's protocol version.
    pub(crate) version: Version,
    limits: ClientLimits,
    state: Mutex<OutState>,
    /// Set once DISCONNECT was sent by the server (nothing may follow it).
    disconnected: AtomicBool,
}

impl Outlet {
    /// The outlet of a connection of `version` whose client announced `limits`.
    pub(crate) fn new(link: Arc<ClientLink>, version: Version, limits: ClientLimits) -> Self {
        Self {
            link,
            version,
            limits,
            state: Mutex::new(OutState {
                next_pkid: 1,
                ..OutState::default()
            }),
            disconnected: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutState> {
        locks::lock(&self.state)
    }

    /// Encodes and queues `p`; [`Sent::Discarded`] when it is larger than the client's
    /// maximum packet size (MQTT 5 says to drop it).
    pub(crate) fn send(&self, p: &v5::Packet) -> Sent {
        if self.disconnected.load(Ordering::Acquire) {
            return Sent::Refused;
        }
        let mut buf = BytesMut::with_capacity(64);
        if let Err(e) = packet::encode(self.version, p, &mut buf) {
            debug!("{} - MQTT encode error: {e}", self.link.log_prefix());
            return Sent::Discarded;
        }
        if self
            .limits
            .max_packet
            .is_some_and(|max| buf.len() > max as usize)
        {
            return Sent::Discarded;
        }
        match self.link.outbound.push_raw(&buf) {
            Pushed::Queued | Pushed::Pressure => Sent::Queued,
            Pushed::Closed | Pushed::SlowConsumer => Sent::Refused,
        }
    }

    /// Sends a server DISCONNECT (MQTT 5 only; 3.1.1 has none) and refuses everything after.
    pub(crate) fn disconnect(&self, reason: v5::DisconnectReasonCode) {
        if self.version == Version::V5 {
            self.send(&v5::Packet::Disconnect(v5::Disconnect::new(reason)));
        }
        self.disconnected.store(true, Ordering::Release);
    }

    /// Sends a PUBLISH, putting an MQTT 5 topic alias in place of a topic sent before.
    pub(crate) fn publish(&self, mut p: v5::Publish) -> Sent {
        if self.limits.alias_max > 0 {
            self.apply_alias(&mut p);
        }
        let size = p.payload.len() as u64;
        let sent = self.send(&v5::Packet::Publish(p));
        if sent == Sent::Queued {
            self.link.out_msgs.fetch_add(1, Ordering::Relaxed);
            self.link.out_bytes.fetch_add(size, Ordering::Relaxed);
        }
        sent
    }

    fn apply_alias(&self, p: &mut v5::Publish) {
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        let mut st = self.lock();
        let (alias, known) = match st.aliases.get(&topic) {
            Some(a) => (*a, true),
            None if st.aliases.len() < usize::from(self.limits.alias_max) => {
                let a = u16::try_from(st.aliases.len() + 1).unwrap_or(u16::MAX);
                st.aliases.insert(topic, a);
                (a, false)
            }
            None => return,
        };
        drop(st);
        let props = p.properties.get_or_insert_with(Default::default);
        props.topic_alias = Some(alias);
        if known {
            p.topic = Bytes::new();
        }
    }

    /// A packet id for a QoS 1 delivery identified by `key` that `ack` settles: the same
    /// id (and `dup`) when it is a redelivery of a message still in flight; `None` when
    /// the client's receive maximum (or the 16-bit id space) is used up.
    pub(crate) fn track(&self, key: String, ack: Bytes) -> Option<(u16, bool)> {
        let mut st = self.lock();
        if let Some(&pkid) = st.by_key.get(&key) {
            if let Some(f) = st.inflight.get_mut(&pkid) {
                f.ack = ack;
            }
            return Some((pkid, true));
        }
        let max = usize::from(self.limits.receive_max.max(1));
        if st.inflight.len() >= max {
            return None;
        }
        let mut pkid = st.next_pkid;
        for _ in 0..=u16::MAX {
            if pkid != 0 && !st.inflight.contains_key(&pkid) {
                break;
            }
            pkid = pkid.wrapping_add(1);
        }
        st.next_pkid = pkid.wrapping_add(1);
        st.by_key.insert(key.clone(), pkid);
        st.inflight.insert(pkid, Inflight { ack, key });
        Some((pkid, false))
    }

    /// The client acknowledged `pkid` (PUBACK, PUBCOMP): the JetStream ack subject to
    /// settle, if it was in flight; the packet id is free again.
    pub(crate) fn acked(&self, pkid: u16) -> Option<Bytes> {
        let mut st = self.lock();
        let f = st.inflight.remove(&pkid)?;
        st.by_key.remove(&f.key);
        Some(f.ack)
    }

    /// The client received QoS 2 delivery `pkid` (PUBREC): the JetStream ack subject to
    /// settle, the first time; the packet id stays taken until PUBCOMP.
    pub(crate) fn received(&self, pkid: u16) -> Option<Bytes> {
        let mut st = self.lock();
        let f = st.inflight.get_mut(&pkid)?;
        let ack = std::mem::take(&mut f.ack);
        let key = std::mem::take(&mut f.key);
        st.by_key.remove(&key);
        (!ack.is_empty()).then_some(ack)
    }

    /// Takes `pkid` for a PUBREL sent again on resume (freed by PUBCOMP).
    pub(crate) fn hold_released(&self, pkid: u16) {
        let f = Inflight {
            ack: Bytes::new(),
            key: String::new(),
        };
        self.lock().inflight.insert(pkid, f);
    }

    /// The client's receive maximum (QoS 1 messages in flight at once).
    pub(crate) fn receive_max(&self) -> u16 {
        self.limits.receive_max
    }
}

/// A PUBLISH packet with the given parts (no properties).
pub(crate) fn publish_packet(topic: &str, qos: QoS, retain: bool, payload: Bytes) -> v5::Publish {
    v5::Publish {
        dup: false,
        qos,
        retain,
        topic: Bytes::copy_from_slice(topic.as_bytes()),
        pkid: 0,
        payload,
        properties: None,
    }
}
