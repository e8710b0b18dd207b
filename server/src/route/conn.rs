//! One route connection: the accepting side's handshake, the read loop both sides run
//! once the handshake is done, and its writer task.
//!
//! The read loop owns the connection's private state (decoder, ping bookkeeping, the last
//! account looked up); what other tasks reach lives in the shared [`RouteLink`]. It hands
//! `RMSG`s to the account's router as coming from a route (they reach local subscribers
//! and no other route), and `RS+`/`RS-` to the account's [`AccountLinks`].
//!
//! [`AccountLinks`]: super::interest::AccountLinks

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rill_protocol::{
    DecoderLimits, ProtocolError, RouteConnect, RouteDecoder, RouteInfo, RouteMsg, RouteOp, encode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use super::link::RouteLink;
use super::{Cluster, encode_route_info};
use crate::account::Account;
use crate::auth::check_secret;
use crate::client::CloseReason;
use crate::router::{Msg, Origin, Subscriber};
use crate::server::ServerState;
use crate::stats::Stats;

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Longest route control line (long subjects and many queue names).
const ROUTE_CONTROL_LINE: usize = 64 * 1024;

/// The longest a read pass waits for a backlogged local subscriber to drain.
const STALL: Duration = Duration::from_millis(5);

/// Accepts routes until the server stops accepting.
pub(super) async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    let mut stop = cluster.stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let done = cluster.done.clone();
                    let cluster = Arc::clone(&cluster);
                    tokio::spawn(async move {
                        accept(cluster, stream, addr).await;
                        drop(done);
                    });
                }
                Err(e) => {
                    error!("Error accepting route connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Why a handshake ended without a route.
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    /// The peer said nothing in time.
    #[error("timeout waiting for the route handshake")]
    Timeout,
    /// The peer closed the connection.
    #[error("connection closed during the route handshake")]
    Closed,
    /// A socket error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Bytes that are not the route protocol.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// A well-formed op out of place, or bad JSON.
    #[error("{0}")]
    Unexpected(String),
}

/// The bytes read while handshaking and the decoder, handed on to the read loop (a
/// peer may send `RS+` right behind its INFO).
#[derive(Debug)]
pub(super) struct Handshake {
    buf: BytesMut,
    decoder: RouteDecoder,
}

impl Handshake {
    pub(super) fn new(state: &ServerState) -> Self {
        let config = state.config();
        let limits = DecoderLimits {
            max_control_line: config.max_control_line.max(ROUTE_CONTROL_LINE),
            max_payload: config.max_pending.max(config.max_payload),
        };
        Self {
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: RouteDecoder::new(limits),
        }
    }

    /// The next op, read until `deadline`.
    pub(super) async fn next<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<RouteOp, HandshakeError> {
        loop {
            if let Some(op) = self.decoder.decode(&mut self.buf)? {
                return Ok(op);
            }
            let read = tokio::time::timeout_at(deadline, reader.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => return Err(HandshakeError::Timeout),
                Ok(Ok(0)) => return Err(HandshakeError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// The next op, which must be an INFO (PINGs before it are skipped).
    pub(super) async fn info<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<RouteInfo, HandshakeError> {
        loop {
            match self.next(reader, deadline).await? {
                RouteOp::Info(json) => return parse_json(&json),
                RouteOp::Err(text) => {
                    return Err(HandshakeError::Unexpected(format!("-ERR '{text}'")));
                }
                RouteOp::Ping | RouteOp::Pong | RouteOp::Ok => {}
                other => return Err(HandshakeError::Unexpected(format!("{other:?} before INFO"))),
            }
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(json: &Bytes) -> Result<T, HandshakeError> {
    serde_json::from_slice(json).map_err(|e| HandshakeError::Unexpected(e.to_string()))
}

/// The accepting side: TLS first when configured (as nats-server, before any INFO),
/// then [`accept_on`].
async fn accept(cluster: Arc<Cluster>, stream: TcpStream, addr: SocketAddr) {
    let Some(state) = cluster.state() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let rid = state.clients.next_cid();
    let prefix = format!("{addr} - rid:{rid}");
    info!("{prefix} - Route connection created");
    let local = stream.local_addr().unwrap_or(addr);
    let accepted = Accepted {
        state,
        rid,
        addrs: (addr, local),
        prefix,
    };
    let Some(tls) = &cluster.tls else {
        let (reader, writer) = stream.into_split();
        return accept_on(&cluster, accepted, reader, writer).await;
    };
    debug!("{} - Starting TLS route server handshake", accepted.prefix);
    match tls.accept(stream).await {
        Ok(stream) => {
            let (reader, writer) = tokio::io::split(stream);
            accept_on(&cluster, accepted, reader, writer).await;
        }
        Err(e) => {
            let prefix = &accepted.prefix;
            error!("{prefix} - TLS route handshake error: {e}");
            info!("{prefix} - Router connection closed: TLS Handshake Failure");
        }
    }
}

/// An accepted route connection, before its handshake.
struct Accepted {
    state: Arc<ServerState>,
    rid: u64,
    /// Peer address, our address.
    addrs: (SocketAddr, SocketAddr),
    prefix: String,
}

/// The accepting side's route handshake: INFO out, then the peer's CONNECT (checked)
/// and INFO; then the route runs.
async fn accept_on<R, W>(cluster: &Arc<Cluster>, accepted: Accepted, mut reader: R, mut writer: W)
where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    let Accepted {
        state,
        rid,
        addrs: (addr, local),
        prefix,
    } = accepted;
    let mut frame = BytesMut::new();
    encode_route_info(&mut frame, &cluster.own_info(Some(local)));
    if writer.write_all(&frame).await.is_err() {
        return;
    }
    let timeout = cluster
        .config
        .authorization
        .as_ref()
        .map_or(state.config().auth_timeout, |a| a.timeout);
    let deadline = Instant::now() + timeout.max(Duration::from_secs(2));
    let mut hs = Handshake::new(&state);
    let peer = match accept_handshake(cluster, &mut hs, &mut reader, deadline).await {
        Ok(peer) => peer,
        Err((reason, text)) => {
            if let Some(text) = text {
                let mut buf = BytesMut::new();
                encode::err(&mut buf, &text);
                let _ = writer.write_all(&buf).await;
                cluster.refused(&prefix, &text);
            }
            info!("{prefix} - Router connection closed: {}", reason.as_str());
            return;
        }
    };
    let end = Route {
        cluster,
        state: &state,
        rid,
        addrs: (addr, local),
        solicited: false,
        configured: false,
    }
    .run(reader, writer, hs, peer)
    .await;
    debug!("{prefix} - accepted route ended: {end:?}");
}

/// Reads and checks CONNECT, then reads INFO. On refusal: the close reason and the
/// `-ERR` text to send (none for a silent close).
async fn accept_handshake<R: AsyncRead + Unpin>(
    cluster: &Cluster,
    hs: &mut Handshake,
    reader: &mut R,
    deadline: Instant,
) -> Result<RouteInfo, (CloseReason, Option<String>)> {
    let connect: RouteConnect = match hs.next(reader, deadline).await {
        Ok(RouteOp::Connect(json)) => {
            parse_json(&json).map_err(|_| (CloseReason::ProtocolViolation, None))?
        }
        Ok(_) => {
            return Err((
                CloseReason::ProtocolViolation,
                Some("Authorization Violation".into()),
            ));
        }
        Err(HandshakeError::Timeout) => {
            return Err((
                CloseReason::AuthenticationViolation,
                Some("Authentication Timeout".into()),
            ));
        }
        Err(_) => return Err((CloseReason::ClientClosed, None)),
    };
    if let Some(auth) = &cluster.config.authorization {
        let user_ok = connect.user.as_deref() == Some(auth.user.as_str());
        let pass_ok = connect
            .pass
            .as_deref()
            .is_some_and(|p| check_secret(&auth.password, p));
        if !(user_ok && pass_ok) {
            return Err((
                CloseReason::AuthenticationViolation,
                Some("Authorization Violation".into()),
            ));
        }
    }
    let ours = cluster.name();
    if !cluster.dynamic && !connect.cluster.is_empty() && connect.cluster != ours {
        let text = format!(
            "Rejecting connection, cluster name {:?} does not match {ours:?}",
            connect.cluster
        );
        return Err((CloseReason::ClusterNameConflict, Some(text)));
    }
    let peer = hs
        .info(reader, deadline)
        .await
        .map_err(|_| (CloseReason::ProtocolViolation, None))?;
    if peer.server_id == cluster.server_id {
        return Err((CloseReason::DuplicateRoute, None));
    }
    Ok(peer)
}

/// How a route that passed its handshake ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// It ran and closed; the peer's server id.
    Closed(String),
    /// A route to that server was already up and won.
    Duplicate(String),
}

/// A route whose handshake is done, about to run.
pub(super) struct Route<'a> {
    pub(super) cluster: &'a Arc<Cluster>,
    pub(super) state: &'a Arc<ServerState>,
    pub(super) rid: u64,
    /// Peer address, our address.
    pub(super) addrs: (SocketAddr, SocketAddr),
    pub(super) solicited: bool,
    pub(super) configured: bool,
}

impl Route<'_> {
    /// Registers the route, runs its read loop until it closes, and cleans up.
    pub(super) async fn run<R, W>(
        self,
        reader: R,
        writer: W,
        hs: Handshake,
        peer: RouteInfo,
    ) -> Ended
    where
        R: AsyncRead + Unpin + Send,
        W: crate::client::ClientWriter,
    {
        let config = self.state.config();
        let peer_id = peer.server_id.clone();
        self.cluster
            .adopt_name(peer.cluster.as_deref().unwrap_or_default());
        let link = Arc::new(RouteLink::new(
            self.rid,
            self.addrs,
            config.max_pending,
            self.solicited,
            self.configured,
            peer,
        ));
        let writer_link = Arc::clone(&link);
        let deadline = config.write_deadline;
        let writer_task =
            tokio::spawn(async move { writer_link.outbound.run_writer(writer, deadline).await });
        if !self.cluster.register(&link) {
            link.outbound.close_with(CloseReason::DuplicateRoute);
            let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
            return Ended::Duplicate(peer_id);
        }
        let mut reader_state = Reader {
            cluster: self.cluster,
            state: self.state,
            link: &link,
            decoder: hs.decoder,
            account: None,
            pings_out: 0,
            ping_sent: None,
            stall: None,
            tally: (0, 0, 0),
        };
        let reason = reader_state.run(reader, hs.buf).await;
        link.outbound.close_with(reason);
        self.cluster.unregister(&link);
        let wait = config.write_deadline + Duration::from_millis(100);
        let _ = tokio::time::timeout(wait, writer_task).await;
        let reason = link.outbound.reason();
        self.cluster.closed.add(&link, reason);
        if reason.is_slow_consumer() {
            warn!(
                "{} - Slow Consumer Detected: route closed ({})",
                link.log_prefix(),
                reason.as_str()
            );
            Stats::add(&self.state.stats.slow_consumers, 1);
        }
        info!(
            "{} - Router connection closed: {}",
            link.log_prefix(),
            reason.as_str()
        );
        Ended::Closed(peer_id)
    }
}

/// The read loop's private state.
struct Reader<'a> {
    cluster: &'a Arc<Cluster>,
    state: &'a Arc<ServerState>,
    link: &'a Arc<RouteLink>,
    decoder: RouteDecoder,
    /// The account of the last message (messages of one account come in runs).
    account: Option<(Bytes, Arc<Account>)>,
    pings_out: u32,
    ping_sent: Option<Instant>,
    stall: Option<Arc<dyn Subscriber>>,
    /// Messages in, bytes in, deliveries out in this read pass.
    tally: (u64, u64, u64),
}

impl Reader<'_> {
    async fn run<R: AsyncRead + Unpin>(&mut self, mut reader: R, mut buf: BytesMut) -> CloseReason {
        let cfg = &self.cluster.config;
        let config = self.state.config();
        let interval = cfg.ping_interval.unwrap_or(config.ping_interval);
        let ping_max = cfg.ping_max.unwrap_or(config.ping_max);
        // The first PING goes out soon, as nats-server's does, to measure the RTT.
        let first = Instant::now() + interval.min(Duration::from_secs(1));
        let mut ping = tokio::time::interval_at(first, interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let link = Arc::clone(self.link);
        // Ops that arrived with the handshake.
        if let Err(reason) = self.process(&mut buf) {
            return reason;
        }
        loop {
            let want = self
                .decoder
                .bytes_needed(buf.len())
                .unwrap_or(0)
                .max(16 * 1024);
            if buf.capacity() - buf.len() < want {
                buf.reserve(want.max(READ_CHUNK));
            }
            tokio::select! {
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(_) => {
                        if let Err(reason) = self.process(&mut buf) {
                            return reason;
                        }
                        if let Some(backlogged) = self.stall.take() {
                            let _ = tokio::time::timeout(STALL, backlogged.drained()).await;
                        }
                    }
                    Err(e) => {
                        debug!("{} - read error: {e}", link.log_prefix());
                        return CloseReason::ReadError;
                    }
                },
                _ = ping.tick() => {
                    if self.pings_out >= ping_max {
                        error!("{} - Stale Connection", link.log_prefix());
                        return CloseReason::StaleConnection;
                    }
                    self.pings_out += 1;
                    self.ping_sent = Some(Instant::now());
                    link.send(b"PING\r\n");
                }
                _ = link.outbound.close.notified() => return link.outbound.reason(),
            }
        }
    }

    /// Handles every whole op in `buf`.
    fn process(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        let result = loop {
            match self.decoder.decode(buf) {
                Ok(Some(op)) => self.handle(op),
                Ok(None) => break Ok(()),
                Err(e) => {
                    error!("{} - Route protocol error: {e}", self.link.log_prefix());
                    break Err(CloseReason::ProtocolViolation);
                }
            }
            if self.link.outbound.is_closed() {
                break Err(self.link.outbound.reason());
            }
        };
        self.flush_tally();
        result
    }

    fn handle(&mut self, op: RouteOp) {
        match op {
            RouteOp::Msg(msg) => self.deliver(&msg),
            RouteOp::Sub(sub) => {
                if let Some(links) = self.cluster.hub.get(&sub.account) {
                    links.add_remote(self.link, sub.subject, sub.queue, sub.weight);
                }
            }
            RouteOp::Unsub(sub) => {
                if let Some(links) = self.cluster.hub.get(&sub.account) {
                    links.remove_remote(self.link, sub.subject, sub.queue);
                }
            }
            RouteOp::Ping => self.link.send(b"PONG\r\n"),
            RouteOp::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.link.rtt_us.store(rtt, Ordering::Relaxed);
                }
            }
            RouteOp::Info(json) => match parse_json::<RouteInfo>(&json) {
                Ok(info) => self.cluster.on_info(self.link, info),
                Err(e) => debug!("{} - bad route INFO: {e}", self.link.log_prefix()),
            },
            RouteOp::Err(text) => error!("{} - Route error: '{text}'", self.link.log_prefix()),
            RouteOp::Connect(_) | RouteOp::Ok => {}
        }
    }

    /// Hands a routed message to its account's local subscribers.
    fn deliver(&mut self, routed: &RouteMsg) {
        let Some(account) = self.account(&routed.account) else {
            return;
        };
        let msg = Msg::from_publish(&routed.publish);
        let queues: Vec<&[u8]> = routed.queues.iter().map(|q| &q[..]).collect();
        let fanout = account
            .router
            .publish_from(Origin::Route, &msg, Some(&queues));
        let size = msg.size() as u64;
        self.tally.0 += 1;
        self.tally.1 += size;
        self.tally.2 += fanout.delivered as u64;
        if self.stall.is_none() {
            self.stall = fanout.backlogged;
        }
    }

    /// The account called `name` (cached for runs of one account); `None` when this
    /// server has no such account.
    fn account(&mut self, name: &Bytes) -> Option<Arc<Account>> {
        if let Some((cached, account)) = &self.account
            && cached == name
        {
            return Some(Arc::clone(account));
        }
        let account = self.state.accounts.find(std::str::from_utf8(name).ok()?)?;
        self.account = Some((name.clone(), Arc::clone(&account)));
        Some(account)
    }

    fn flush_tally(&mut self) {
        let (msgs, bytes, delivered) = std::mem::take(&mut self.tally);
        if msgs == 0 {
            return;
        }
        self.link.in_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.link.in_bytes.fetch_add(bytes, Ordering::Relaxed);
        let stats = &self.state.stats;
        Stats::add(&stats.in_msgs, msgs);
        Stats::add(&stats.in_bytes, bytes);
        Stats::add(&stats.out_msgs, delivered);
        Stats::add(&stats.out_bytes, delivered * (bytes / msgs));
    }
}
