//! One leaf-node connection: the hub's side of the handshake (accept), the leaf's side
//! (after dialling), and the read loop both run once the handshake is done.
//!
//! The read loop hands `LMSG`s to the bound account's router as coming from this leaf
//! link (they reach local subscribers, routes and the other leaf links, never this one),
//! and `LS+`/`LS-` to the account's [`LeafAccount`](super::interest::LeafAccount).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rill_protocol::leaf_info::{encode_connect, encode_info};
use rill_protocol::{
    DecoderLimits, LeafConnect, LeafInfo, RouteDecoder, RouteMsg, RouteOp, encode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use super::LeafNodes;
use super::interest::LeafAccount;
use super::link::{LeafLink, LinkSetup, Peer};
use crate::client::CloseReason;
use crate::config::RemoteLeaf;
use crate::router::{Msg, Origin, Subscriber};
use crate::server::ServerState;
use crate::stats::Stats;

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Longest control line on a leaf link (long subjects and many queue names).
const LEAF_CONTROL_LINE: usize = 64 * 1024;

/// The longest a read pass waits for a backlogged local subscriber to drain.
const STALL: Duration = Duration::from_millis(5);

/// How long the other side has to complete the handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// Why a handshake ended without a link: the close reason and the `-ERR` text to send.
pub(super) type Refusal = (CloseReason, Option<String>);

/// Reads ops during the handshake; what is left over goes to the read loop.
pub(super) struct Handshake {
    buf: BytesMut,
    decoder: RouteDecoder,
}

impl Handshake {
    pub(super) fn new(state: &ServerState) -> Self {
        let config = state.config();
        Self {
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: RouteDecoder::leaf(DecoderLimits {
                max_control_line: config.max_control_line.max(LEAF_CONTROL_LINE),
                max_payload: config.max_pending.max(config.max_payload),
            }),
        }
    }

    /// The next op other than PING/PONG, read until `deadline`.
    async fn next<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        deadline: Instant,
    ) -> Result<RouteOp, Refusal> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(RouteOp::Ping | RouteOp::Pong | RouteOp::Ok)) => continue,
                Ok(Some(op)) => return Ok(op),
                Ok(None) => {}
                Err(_) => return Err((CloseReason::ProtocolViolation, None)),
            }
            match tokio::time::timeout_at(deadline, reader.read_buf(&mut self.buf)).await {
                Err(_) => {
                    return Err((
                        CloseReason::AuthenticationViolation,
                        Some("Authentication Timeout".into()),
                    ));
                }
                Ok(Ok(0)) | Ok(Err(_)) => return Err((CloseReason::ClientClosed, None)),
                Ok(Ok(_)) => {}
            }
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(text: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(text).map_err(|_| (CloseReason::ProtocolViolation, None))
}

/// The hub's side: INFO out, CONNECT in (checked, which binds the account), INFO with
/// `connect_info` out, then the link runs.
pub(super) async fn accept(leafs: Arc<LeafNodes>, stream: TcpStream, addr: SocketAddr) {
    let Some(state) = leafs.state() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let lid = state.clients.next_cid();
    let prefix = format!("{addr} - lid:{lid}");
    info!("{prefix} - Leafnode connection created");
    let local = stream.local_addr().unwrap_or(addr);
    let (mut reader, mut writer) = stream.into_split();
    let mut info = leafs.own_info(Some(local));
    info.client_id = Some(lid);
    let mut frame = BytesMut::new();
    encode_info(&mut frame, &info);
    if writer.write_all(&frame).await.is_err() {
        return;
    }
    let timeout = leafs.auth_timeout().max(HANDSHAKE);
    let mut hs = Handshake::new(&state);
    let bound = match accept_connect(&leafs, &mut hs, &mut reader, Instant::now() + timeout).await {
        Ok(bound) => bound,
        Err((reason, text)) => {
            if let Some(text) = text {
                let mut buf = BytesMut::new();
                encode::err(&mut buf, &text);
                let _ = writer.write_all(&buf).await;
                error!("{prefix} - {text}");
            }
            info!("{prefix} - Leafnode connection closed: {}", reason.as_str());
            return;
        }
    };
    let (account, connect) = bound;
    info.connect_info = true;
    info.remote_account = Some(account.clone());
    info.nonce = None;
    let mut frame = BytesMut::new();
    encode_info(&mut frame, &info);
    if writer.write_all(&frame).await.is_err() {
        return;
    }
    let setup = LinkSetup {
        lid,
        addr,
        solicited: false,
        account,
        peer: Peer {
            server_id: connect.server_id,
            name: connect.name,
        },
        max_pending: state.config().max_pending,
        deny_exports: Vec::new(),
        deny_imports: Vec::new(),
    };
    run(&leafs, &state, setup, reader, writer, hs).await;
}

/// Reads CONNECT and checks its credentials; the bound account's name.
async fn accept_connect<R: AsyncRead + Unpin>(
    leafs: &LeafNodes,
    hs: &mut Handshake,
    reader: &mut R,
    deadline: Instant,
) -> Result<(String, LeafConnect), Refusal> {
    let connect: LeafConnect = match hs.next(reader, deadline).await? {
        RouteOp::Connect(text) => json(&text)?,
        _ => {
            return Err((
                CloseReason::ProtocolViolation,
                Some("Authorization Violation".into()),
            ));
        }
    };
    let account = leafs
        .authorize(connect.user.as_deref(), connect.pass.as_deref())
        .ok_or((
            CloseReason::AuthenticationViolation,
            Some("Authorization Violation".into()),
        ))?;
    if connect.server_id == leafs.server_id {
        return Err((CloseReason::ProtocolViolation, Some("Loop detected".into())));
    }
    Ok((account, connect))
}

/// The leaf's side after dialling `remote` at `addr`: INFO in (declining compression
/// when the hub offers it), CONNECT out, then the link runs until it closes.
pub(super) async fn solicit(
    leafs: &Arc<LeafNodes>,
    remote: &RemoteLeaf,
    url: &crate::config::LeafUrl,
    stream: TcpStream,
) -> Result<String, String> {
    let state = leafs.state().ok_or("server gone")?;
    let _ = stream.set_nodelay(true);
    let addr = stream.peer_addr().map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    let mut hs = Handshake::new(&state);
    let deadline = Instant::now() + HANDSHAKE;
    let hub: LeafInfo = match hs.next(&mut reader, deadline).await {
        Ok(RouteOp::Info(text)) => json(&text).map_err(|_| "bad INFO from the hub".to_string())?,
        Ok(RouteOp::Err(text)) => return Err(text),
        Ok(_) => return Err("expected INFO from the hub".into()),
        Err((reason, _)) => return Err(reason.as_str().to_string()),
    };
    let mut out = BytesMut::new();
    if hub.compression.as_deref().is_some_and(|c| c != "off") {
        // nats-server negotiates S2 with an INFO of the leaf's own; `off` declines it.
        let decline = LeafInfo {
            compression: Some("off".into()),
            ..LeafInfo::default()
        };
        encode_info(&mut out, &decline);
    }
    let account = remote
        .account
        .clone()
        .unwrap_or_else(|| crate::shared::GLOBAL_ACCOUNT.to_string());
    let mut connect = leafs.own_connect(&account, url);
    if let Some(path) = &remote.credentials {
        let (jwt, sig) =
            super::creds::connect_fields(path, hub.nonce.as_deref().unwrap_or_default())?;
        (connect.jwt, connect.sig) = (Some(jwt), Some(sig));
    }
    encode_connect(&mut out, &connect);
    writer.write_all(&out).await.map_err(|e| e.to_string())?;
    let lid = state.clients.next_cid();
    let setup = LinkSetup {
        lid,
        addr,
        solicited: true,
        account,
        peer: Peer {
            server_id: hub.server_id.clone(),
            name: hub.server_name.clone(),
        },
        max_pending: state.config().max_pending,
        deny_exports: remote.deny_exports.clone(),
        deny_imports: remote.deny_imports.clone(),
    };
    info!(
        "{addr} - lid:{lid} - Leafnode connection created for account: {}",
        setup.account
    );
    leafs.learn_urls(&hub.leafnode_urls);
    run(leafs, &state, setup, reader, writer, hs).await;
    Ok(hub.server_id)
}

/// Registers the link, runs its read loop until it closes, and cleans up.
async fn run<R, W>(
    leafs: &Arc<LeafNodes>,
    state: &Arc<ServerState>,
    setup: LinkSetup,
    reader: R,
    writer: W,
    hs: Handshake,
) where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    let config = state.config();
    let account = state.accounts.get(&setup.account);
    let Some(leaf_account) = leafs.accounts.get(&account.name) else {
        return;
    };
    let link = Arc::new(LeafLink::new(setup));
    let writer_link = Arc::clone(&link);
    let deadline = config.write_deadline;
    let writer_task =
        tokio::spawn(async move { writer_link.outbound.run_writer(writer, deadline).await });
    leafs.register(&link);
    leaf_account.join(&link);
    let mut reader_state = Reader {
        leafs,
        state,
        link: &link,
        account: &account,
        leaf_account: &leaf_account,
        decoder: hs.decoder,
        pings_out: 0,
        ping_sent: None,
        stall: None,
        tally: (0, 0, 0),
    };
    let reason = reader_state.run(reader, hs.buf).await;
    link.outbound.close_with(reason);
    leaf_account.leave(&link);
    leafs.unregister(&link);
    let _ = tokio::time::timeout(
        config.write_deadline + Duration::from_millis(100),
        writer_task,
    )
    .await;
    let reason = link.outbound.reason();
    if reason.is_slow_consumer() {
        warn!(
            "{} - Slow Consumer Detected: leafnode closed ({})",
            link.log_prefix(),
            reason.as_str()
        );
        Stats::add(&state.stats.slow_consumers, 1);
    }
    info!(
        "{} - Leafnode connection closed: {}",
        link.log_prefix(),
        reason.as_str()
    );
}

/// The read loop's private state.
struct Reader<'a> {
    leafs: &'a Arc<LeafNodes>,
    state: &'a Arc<ServerState>,
    link: &'a Arc<LeafLink>,
    account: &'a Arc<crate::account::Account>,
    leaf_account: &'a Arc<LeafAccount>,
    decoder: RouteDecoder,
    pings_out: u32,
    ping_sent: Option<Instant>,
    stall: Option<Arc<dyn Subscriber>>,
    /// Messages in, bytes in, deliveries out in this read pass.
    tally: (u64, u64, u64),
}

impl Reader<'_> {
    async fn run<R: AsyncRead + Unpin>(&mut self, mut reader: R, mut buf: BytesMut) -> CloseReason {
        let config = self.state.config();
        let interval = config.ping_interval;
        // The first PING goes out soon, as nats-server's does, to measure the RTT.
        let first = Instant::now() + interval.min(Duration::from_secs(1));
        let mut ping = tokio::time::interval_at(first, interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let link = Arc::clone(self.link);
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
                    if self.pings_out >= config.ping_max {
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
                    error!("{} - Leafnode protocol error: {e}", self.link.log_prefix());
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
                if sub.subject[..] == *self.leafs.loop_subject.as_bytes() {
                    self.loop_detected();
                    return;
                }
                self.leaf_account
                    .add_remote(self.link, sub.subject, sub.queue, sub.weight);
            }
            RouteOp::Unsub(sub) => {
                self.leaf_account
                    .remove_remote(self.link, sub.subject, sub.queue)
            }
            RouteOp::Ping => self.link.send(b"PONG\r\n"),
            RouteOp::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.link.rtt_us.store(rtt, Ordering::Relaxed);
                }
            }
            RouteOp::Info(text) => {
                if let Ok(info) = serde_json::from_slice::<LeafInfo>(&text) {
                    self.leafs.learn_urls(&info.leafnode_urls);
                }
            }
            RouteOp::Err(text) => error!("{} - Leafnode Error '{text}'", self.link.log_prefix()),
            RouteOp::Connect(_) | RouteOp::Ok => {}
        }
    }

    /// Our own loop-detection subject came back: this link closes a loop.
    fn loop_detected(&self) {
        let text = format!(
            "Loop detected for leafnode account={:?}. Delaying attempt to reconnect for {:?}",
            self.link.account,
            super::LOOP_DELAY
        );
        error!("{} - {text}", self.link.log_prefix());
        let mut buf = BytesMut::new();
        encode::err(&mut buf, "Loop detected");
        self.link.send(&buf);
        self.leafs.note_loop(self.link);
        self.link
            .outbound
            .close_with(CloseReason::ProtocolViolation);
    }

    /// Hands a message from the other side to the bound account.
    fn deliver(&mut self, leaf_msg: &RouteMsg) {
        let msg = Msg::from_publish(&leaf_msg.publish);
        if !self.link.may_take(msg.subject) {
            return;
        }
        let queues: Vec<&[u8]> = leaf_msg.queues.iter().map(|q| &q[..]).collect();
        *crate::locks::lock(&self.link.inbound_queues) = leaf_msg.queues.clone();
        let fanout =
            self.account
                .router
                .publish_from(Origin::Leaf(self.link.lid), &msg, Some(&queues));
        let size = msg.size() as u64;
        self.tally.0 += 1;
        self.tally.1 += size;
        self.tally.2 += fanout.delivered as u64;
        if self.stall.is_none() {
            self.stall = fanout.backlogged;
        }
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
