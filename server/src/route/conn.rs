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
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::{RouteConnect, RouteDecoder, RouteInfo, RouteMsg, RouteOp};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::link::RouteLink;
use super::{Cluster, encode_route_info};
use crate::account::Account;
use crate::auth::check_secret;
use crate::client::CloseReason;
use crate::link::Link;
use crate::link::handshake::{Handshake, Refusal, parse_json, refuse};
use crate::link::reader::{Pings, Protocol, ReadLoop, Tally};
use crate::router::{Msg, Origin};
use crate::server::ServerState;
use crate::trace;

/// A route handshake on `state`'s server.
pub(super) fn handshake(state: &ServerState) -> Handshake {
    Handshake::new(RouteDecoder::new(Handshake::limits(state)))
}

/// The accepting side: TLS first when configured (as nats-server, before any INFO),
/// then [`accept_on`].
pub(super) async fn accept(cluster: Arc<Cluster>, stream: TcpStream, addr: SocketAddr) {
    let Some(state) = cluster.state() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let rid = state.clients.next_cid();
    let prefix = format!("{addr} - rid:{rid}");
    info!("{prefix} - Route connection created");
    let local = stream.local_addr().map_or(addr, crate::bind::peer);
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
    let mut frame = bytes::BytesMut::new();
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
    let mut hs = handshake(&state);
    let peer = match accept_handshake(cluster, &mut hs, &mut reader, deadline).await {
        Ok(peer) => peer,
        Err(refusal) => return refuse(&mut writer, &prefix, "Router", refusal).await,
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
) -> Result<RouteInfo, Refusal> {
    let connect: RouteConnect = hs.connect(reader, deadline).await?;
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
    let peer: RouteInfo = hs
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
        let writer_task = crate::link::spawn_writer(
            &link,
            writer,
            config.write_deadline,
            Arc::clone(&self.state.stats),
        );
        if !self.cluster.register(&link) {
            link.outbound.close_with(CloseReason::DuplicateRoute);
            let _ = tokio::time::timeout(Duration::from_secs(1), writer_task).await;
            return Ended::Duplicate(peer_id);
        }
        let cfg = &self.cluster.config;
        let pings = Pings {
            interval: cfg.ping_interval.unwrap_or(config.ping_interval),
            max: cfg.ping_max.unwrap_or(config.ping_max),
        };
        let reading = Reader {
            cluster: self.cluster,
            state: self.state,
            link: &link,
            account: None,
        };
        let reason = ReadLoop::new(reading, self.state, "Route", hs.decoder)
            .run(reader, hs.buf, pings)
            .await;
        link.outbound.close_with(reason);
        self.cluster.unregister(&link);
        let wait = config.write_deadline + Duration::from_millis(100);
        let _ = tokio::time::timeout(wait, writer_task).await;
        let reason = link.outbound.reason();
        self.cluster.closed.add(&link, reason);
        crate::link::closed_slow(&*link, reason, &self.state.stats);
        info!(
            "{} - Router connection closed: {}",
            link.log_prefix(),
            reason.as_str()
        );
        Ended::Closed(peer_id)
    }
}

/// What a route's read loop does with the ops it decodes.
struct Reader<'a> {
    cluster: &'a Arc<Cluster>,
    state: &'a Arc<ServerState>,
    link: &'a Arc<RouteLink>,
    /// The account of the last message (messages of one account come in runs).
    account: Option<(Bytes, Arc<Account>)>,
}

impl Protocol for Reader<'_> {
    type Link = RouteLink;

    fn link(&self) -> &Arc<RouteLink> {
        self.link
    }

    fn handle(&mut self, op: RouteOp, tally: &mut Tally) {
        match op {
            RouteOp::Msg(msg) => self.deliver(&msg, tally),
            RouteOp::Sub(sub) => {
                if let Some(links) = self.cluster.hub.get_or_make(&sub.account) {
                    links.add_remote(self.link, sub.subject, sub.queue, sub.weight);
                }
            }
            RouteOp::Unsub(sub) => {
                if let Some(links) = self.cluster.hub.get(&sub.account) {
                    links.remove_remote(self.link, sub.subject, sub.queue);
                }
            }
            RouteOp::Info(json) => match parse_json::<RouteInfo>(&json) {
                Ok(info) => self.cluster.on_info(self.link, info),
                Err(e) => debug!("{} - bad route INFO: {e}", self.link.log_prefix()),
            },
            RouteOp::Err(text) => error!("{} - Route error: '{text}'", self.link.log_prefix()),
            RouteOp::Connect(_) | RouteOp::Ok | RouteOp::Ping | RouteOp::Pong => {}
        }
    }
}

impl Reader<'_> {
    /// Hands a routed message to its account's local subscribers.
    fn deliver(&mut self, routed: &RouteMsg, tally: &mut Tally) {
        let Some(account) = self.account(&routed.account) else {
            return;
        };
        let msg = crate::link::forward::arrived(Msg::from_publish(&routed.publish));
        let begun = trace::start::begin(self.state, &account, || self.link.trace_conn(), &msg);
        let msg = msg.with_trace(begun.trace());
        let queues: Vec<&[u8]> = routed.queues.iter().map(|q| &q[..]).collect();
        let fanout = account
            .router
            .publish_from(Origin::Route, &msg, Some(&queues));
        tally.record(msg.size(), fanout);
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
}
