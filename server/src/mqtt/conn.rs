//! One MQTT connection: CONNECT (see `connect`), then the read loop that decodes packets
//! and dispatches them, with the keep-alive deadline (1.5 × the client's keep-alive, as
//! MQTT says), and the close path that publishes the will and releases the session.
//!
//! The read loop owns the connection's private state: its subscriptions, incoming topic
//! aliases, QoS 2 packet ids awaiting PUBREL, and the will. What deliveries from other
//! tasks need is in the shared [`Outlet`].

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::debug;

use super::MqttService;
use super::connect::{self, Accepted};
use super::deliver::ack_now;
use super::outlet::Outlet;
use super::packet::{self, CodecError, QoS, Version, v5};
use super::session::Session;
use super::store::Held2;
use crate::account::Account;
use crate::auth::Permissions;
use crate::auth::jwt::JwtUser;
use crate::client::{ClientLink, CloseReason, Peer};
use crate::locks;
use crate::router::Subscription;
use crate::stats::Stats;

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// Topic aliases a client may set on its publishes (MQTT 5).
pub(super) const TOPIC_ALIAS_MAX: u16 = 64;

/// An MQTT subscription as the connection keeps it.
#[derive(Debug)]
pub(super) struct Held {
    /// The QoS granted.
    pub qos: QoS,
    /// Its router subscriptions (two for a filter ending in `/#`).
    pub subs: Vec<Arc<Subscription>>,
}

/// The read-loop side of an MQTT connection.
#[derive(Debug)]
pub(super) struct MqttConn {
    pub service: Arc<MqttService>,
    pub link: Arc<ClientLink>,
    pub outlet: Arc<Outlet>,
    pub account: Arc<Account>,
    pub perms: Option<Arc<Permissions>>,
    pub client_id: String,
    pub keep_alive: Duration,
    pub will: Option<v5::LastWill>,
    /// Subscriptions by MQTT filter.
    pub subs: HashMap<String, Held>,
    /// Incoming topic aliases (MQTT 5).
    pub aliases: HashMap<u16, Bytes>,
    /// QoS 2 publishes received and not yet released, by packet id.
    pub qos2: HashMap<u16, Held2>,
    /// Largest packet accepted.
    pub max_packet: usize,
    /// The stored session (subscriptions, QoS 1 consumers).
    pub session: Option<Session>,
    /// The device's JWT user (operator mode): its expiry ends the connection, and it is
    /// re-checked after an account JWT update.
    pub jwt: Option<Arc<JwtUser>>,
}

/// Serves one accepted connection (plain or TLS) until it closes.
pub(super) async fn serve<R, W>(service: Arc<MqttService>, mut reader: R, writer: W, mut peer: Peer)
where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    let state = Arc::clone(&service.state);
    let config = state.config();
    let link = Arc::new(ClientLink::new(
        peer.cid,
        peer.addr,
        config.max_pending,
        Arc::clone(&state.stats),
    ));
    let writer_link = Arc::clone(&link);
    let deadline = config.write_deadline;
    let writer_task =
        tokio::spawn(async move { writer_link.outbound.run_writer(writer, deadline).await });
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let Some(accepted) = connect::accept(&service, &link, &peer, &mut reader, &mut buf).await
    else {
        link.outbound
            .close_with(CloseReason::AuthenticationViolation);
        let _ = tokio::time::timeout(config.write_deadline, writer_task).await;
        return;
    };
    let Some(mut conn) = MqttConn::start(service, link, accepted, config.max_payload).await else {
        let _ = tokio::time::timeout(config.write_deadline, writer_task).await;
        return;
    };
    // Registered now: it counts as a client.
    drop(peer.admission.take());
    let reason = conn.read_loop(&mut reader, &mut buf).await;
    conn.close(reason, writer_task).await;
}

impl MqttConn {
    /// Registers the connection, takes over an older one with the same client id, opens
    /// its session and answers CONNACK; `None` (after a refusing CONNACK) when the
    /// account's JetStream cannot hold MQTT state.
    async fn start(
        service: Arc<MqttService>,
        link: Arc<ClientLink>,
        a: Accepted,
        max: usize,
    ) -> Option<Self> {
        let state = Arc::clone(&service.state);
        let account = state.accounts.get(&a.identity.account);
        let store = match service.store(&account).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{} - MQTT state unavailable: {e}", link.log_prefix());
                connect::refuse(&link, a.version, v5::ConnectReturnCode::ServerUnavailable);
                link.outbound.close_with(CloseReason::ServerShutdown);
                return None;
            }
        };
        let outlet = Arc::new(Outlet::new(Arc::clone(&link), a.version, a.limits));
        {
            let mut info = locks::write(&link.info);
            info.user = a.identity.user.clone();
            info.mqtt_client = Some(a.client_id.clone());
            info.account.clone_from(&a.identity.account);
        }
        Stats::add(&state.stats.total_connections, 1);
        state.clients.register(Arc::clone(&link));
        if let Some(old) = service.claim(&account.name, &a.client_id, &outlet) {
            old.disconnect(v5::DisconnectReasonCode::SessionTakenOver);
            old.link.outbound.close_with(CloseReason::ClientClosed);
        }
        debug!(
            "{} - MQTT client connected: {}",
            link.log_prefix(),
            a.client_id
        );
        let (session, present) =
            Session::open(store, &a.client_id, a.clean_start, a.session_expiry).await;
        let mut conn = Self {
            service,
            link,
            outlet,
            account,
            perms: a.identity.permissions.clone(),
            client_id: a.client_id.clone(),
            keep_alive: a.keep_alive,
            will: a.will.clone(),
            subs: HashMap::new(),
            aliases: HashMap::new(),
            qos2: HashMap::new(),
            max_packet: max,
            session: Some(session),
            jwt: a.identity.jwt.clone(),
        };
        conn.connack(&a, present);
        conn.restore_subscriptions().await;
        conn.resend_pubrels().await;
        Some(conn)
    }

    fn connack(&self, a: &Accepted, session_present: bool) {
        let properties = (a.version == Version::V5).then(|| v5::ConnAckProperties {
            session_expiry_interval: None,
            receive_max: None,
            // Absent means QoS 2.
            max_qos: self.service.config().reject_qos2_publish.then_some(1),
            retain_available: Some(1),
            max_packet_size: u32::try_from(self.max_packet).ok(),
            assigned_client_identifier: a.assigned.then(|| a.client_id.clone()),
            topic_alias_max: Some(TOPIC_ALIAS_MAX),
            reason_string: None,
            user_properties: Vec::new(),
            wildcard_subscription_available: Some(1),
            subscription_identifiers_available: Some(1),
            shared_subscription_available: Some(1),
            server_keep_alive: None,
            response_information: None,
            server_reference: None,
            authentication_method: None,
            authentication_data: None,
        });
        self.outlet.send(&v5::Packet::ConnAck(v5::ConnAck {
            session_present,
            code: v5::ConnectReturnCode::Success,
            properties,
        }));
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        buf: &mut BytesMut,
    ) -> Ended {
        // Packets that came with CONNECT.
        if let Err(end) = self.process(buf).await {
            return end;
        }
        let grace = self.keep_alive + self.keep_alive / 2;
        let link = Arc::clone(&self.link);
        let idle = tokio::time::sleep(grace);
        let mut idle = pin!(idle);
        let expiry = self.jwt.as_deref().and_then(crate::client::jwt::expiry);
        let expired = tokio::time::sleep_until(expiry.unwrap_or_else(tokio::time::Instant::now));
        let mut expired = pin!(expired);
        loop {
            if buf.capacity() - buf.len() < READ_CHUNK / 2 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                read = reader.read_buf(buf) => match read {
                    Ok(0) => return Ended::Lost(CloseReason::ClientClosed),
                    Ok(_) => {
                        if !grace.is_zero() {
                            idle.as_mut().reset(tokio::time::Instant::now() + grace);
                        }
                        if let Err(end) = self.process(buf).await {
                            return end;
                        }
                    }
                    Err(e) => {
                        debug!("{} - read error: {e}", link.log_prefix());
                        return Ended::Lost(CloseReason::ReadError);
                    }
                },
                () = &mut idle, if !grace.is_zero() => {
                    debug!("{} - MQTT keep-alive expired", link.log_prefix());
                    self.outlet.disconnect(v5::DisconnectReasonCode::KeepAliveTimeout);
                    return Ended::Lost(CloseReason::StaleConnection);
                }
                _ = link.outbound.close.notified() => return Ended::Lost(link.outbound.reason()),
                () = &mut expired, if expiry.is_some() => {
                    debug!("{} - User Authentication Expired", link.log_prefix());
                    return Ended::Lost(CloseReason::AuthenticationExpired);
                }
                () = link.reload_asked() => {
                    if let Some(user) = &self.jwt {
                        let (state, prefix) = (&self.service.state, link.log_prefix());
                        if let Err(reason) = crate::client::jwt::recheck_quietly(state, &prefix, user) {
                            return Ended::Lost(reason);
                        }
                    }
                }
            }
        }
    }

    /// Decodes and handles every whole packet in `buf`.
    async fn process(&mut self, buf: &mut BytesMut) -> Result<(), Ended> {
        loop {
            match packet::decode(self.outlet.version, buf, self.max_packet) {
                Ok(Some(p)) => self.handle(p).await?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.malformed(&e)),
            }
        }
    }

    fn malformed(&self, e: &CodecError) -> Ended {
        debug!("{} - MQTT: {e}", self.link.log_prefix());
        let reason = match e {
            CodecError::TooLarge => v5::DisconnectReasonCode::PacketTooLarge,
            _ => v5::DisconnectReasonCode::MalformedPacket,
        };
        self.outlet.disconnect(reason);
        Ended::Lost(CloseReason::ProtocolViolation)
    }

    async fn handle(&mut self, p: v5::Packet) -> Result<(), Ended> {
        match p {
            v5::Packet::Publish(p) => self.on_publish(p)?,
            v5::Packet::PubAck(a) => self.on_puback(a.pkid),
            v5::Packet::PubRel(r) => self.on_pubrel(r.pkid).await,
            v5::Packet::PubRec(r) => self.on_pubrec(r.pkid),
            v5::Packet::PubComp(c) => self.on_pubcomp(c.pkid),
            v5::Packet::Subscribe(s) => self.on_subscribe(s).await,
            v5::Packet::Unsubscribe(u) => self.on_unsubscribe(u).await,
            v5::Packet::PingReq(_) => {
                self.outlet.send(&v5::Packet::PingResp(v5::PingResp));
            }
            v5::Packet::Disconnect(d) => return Err(Ended::Disconnected(d)),
            _ => {
                self.outlet
                    .disconnect(v5::DisconnectReasonCode::ProtocolError);
                return Err(Ended::Lost(CloseReason::ProtocolViolation));
            }
        }
        Ok(())
    }

    /// The client acknowledged a QoS 1 delivery: settle it in JetStream.
    fn on_puback(&mut self, pkid: u16) {
        if let Some(ack) = self.outlet.acked(pkid) {
            ack_now(&self.account, &ack);
        }
    }

    /// The client received a QoS 2 delivery (PUBREC): settle it in JetStream, record
    /// the PUBREL owed (sent again if the session resumes before PUBCOMP), send it.
    fn on_pubrec(&mut self, pkid: u16) {
        if let Some(ack) = self.outlet.received(pkid) {
            ack_now(&self.account, &ack);
            if let Some(session) = &self.session {
                session.store.owe_pubrel(&self.client_id, pkid);
            }
        }
        self.outlet
            .send(&v5::Packet::PubRel(v5::PubRel::new(pkid, None)));
    }

    /// The client completed a QoS 2 delivery (PUBCOMP): its packet id is free again.
    fn on_pubcomp(&mut self, pkid: u16) {
        self.outlet.acked(pkid);
        if let Some(session) = &self.session {
            session.store.settle_pubrel(&self.client_id, pkid);
        }
    }

    /// A resumed session's PUBRELs still owed (MQTT 4.4: sent again on reconnect).
    async fn resend_pubrels(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        for pkid in session.store.owed_pubrels(&self.client_id).await {
            self.outlet.hold_released(pkid);
            self.outlet
                .send(&v5::Packet::PubRel(v5::PubRel::new(pkid, None)));
        }
    }

    async fn close(mut self, ended: Ended, writer: tokio::task::JoinHandle<()>) {
        let (reason, will) = match &ended {
            Ended::Disconnected(d) => (
                CloseReason::ClientClosed,
                d.reason_code == v5::DisconnectReasonCode::DisconnectWithWillMessage,
            ),
            Ended::Lost(r) => (*r, true),
        };
        if will && let Some(w) = self.will.take() {
            self.publish_will(w);
        }
        self.link.outbound.close_with(reason);
        for (_, held) in self.subs.drain() {
            for sub in &held.subs {
                self.account.router.unsubscribe(sub);
            }
        }
        locks::lock(&self.link.subs).clear();
        if let Some(session) = self.session.take() {
            session.close().await;
        }
        let state = &self.service.state;
        state.clients.unregister(self.link.cid);
        self.service
            .release(&self.account.name, &self.client_id, self.link.cid);
        let deadline = state.config().write_deadline + Duration::from_millis(100);
        let _ = tokio::time::timeout(deadline, writer).await;
        debug!(
            "{} - MQTT client connection closed: {}",
            self.link.log_prefix(),
            self.link.outbound.reason().as_str()
        );
    }
}

/// How the read loop ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The client sent DISCONNECT.
    Disconnected(v5::Disconnect),
    /// The connection was lost or closed by the server.
    Lost(CloseReason),
}
