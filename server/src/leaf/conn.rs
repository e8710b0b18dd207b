//! One leaf-node connection: the hub's side of the handshake (accept), the leaf's side
//! (after dialling), and the read loop both run once the handshake is done.
//!
//! The read loop hands `LMSG`s to the bound account's router as coming from this leaf
//! link (they reach local subscribers, routes and the other leaf links, never this one),
//! and `LS+`/`LS-` to the account's [`LeafAccount`](super::interest::LeafAccount).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rill_protocol::leaf_info::{encode_connect, encode_info};
use rill_protocol::{LeafConnect, LeafInfo, RouteDecoder, RouteMsg, RouteOp, encode};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::LeafNodes;
use super::interest::LeafAccount;
use super::link::{LeafLink, LinkSetup, Peer};
use crate::client::CloseReason;
use crate::config::RemoteLeaf;
use crate::link::Link;
use crate::link::handshake::{Handshake, HandshakeError, Refusal, refuse};
use crate::link::reader::{Pings, Protocol, ReadLoop, Tally};
use crate::router::{Msg, Origin};
use crate::server::ServerState;
use crate::stats::Stats;

/// How long the other side has to complete the handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// A leaf-node handshake on `state`'s server.
fn handshake(state: &ServerState) -> Handshake {
    Handshake::new(RouteDecoder::leaf(Handshake::limits(state)))
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
    let mut hs = handshake(&state);
    let bound = match accept_connect(&leafs, &mut hs, &mut reader, Instant::now() + timeout).await {
        Ok(bound) => bound,
        Err(refusal) => return refuse(&mut writer, &prefix, "Leafnode", refusal).await,
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
    let connect: LeafConnect = hs.connect(reader, deadline).await?;
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
    let mut hs = handshake(&state);
    let deadline = Instant::now() + HANDSHAKE;
    let hub: LeafInfo = hs.info(&mut reader, deadline).await.map_err(|e| match e {
        HandshakeError::Refused(text) => text,
        e => format!("INFO from the hub: {e}"),
    })?;
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
    let pings = Pings {
        interval: config.ping_interval,
        max: config.ping_max,
    };
    let reading = Reader {
        leafs,
        link: &link,
        account: &account,
        leaf_account: &leaf_account,
    };
    let reason = ReadLoop::new(reading, state, "Leafnode", hs.decoder)
        .run(reader, hs.buf, pings)
        .await;
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

/// What a leaf link's read loop does with the ops it decodes.
struct Reader<'a> {
    leafs: &'a Arc<LeafNodes>,
    link: &'a Arc<LeafLink>,
    account: &'a Arc<crate::account::Account>,
    leaf_account: &'a Arc<LeafAccount>,
}

impl Protocol for Reader<'_> {
    type Link = LeafLink;

    fn link(&self) -> &Arc<LeafLink> {
        self.link
    }

    fn handle(&mut self, op: RouteOp, tally: &mut Tally) {
        match op {
            RouteOp::Msg(msg) => self.deliver(&msg, tally),
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
            RouteOp::Info(text) => {
                if let Ok(info) = serde_json::from_slice::<LeafInfo>(&text) {
                    self.leafs.learn_urls(&info.leafnode_urls);
                }
            }
            RouteOp::Err(text) => error!("{} - Leafnode Error '{text}'", self.link.log_prefix()),
            RouteOp::Connect(_) | RouteOp::Ok | RouteOp::Ping | RouteOp::Pong => {}
        }
    }
}

impl Reader<'_> {
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
    fn deliver(&mut self, leaf_msg: &RouteMsg, tally: &mut Tally) {
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
        tally.record(msg.size(), fanout);
    }
}
