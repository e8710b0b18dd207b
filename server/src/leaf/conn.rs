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
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::LeafNodes;
use super::interest::LeafAccount;
use super::link::{JsSides, LeafLink, LinkSetup, Peer, jetstream_denies};
use crate::auth::LinkPermissions;
use crate::auth::jwt::leaf::{LeafCredentials, LeafRefusal};
use crate::client::CloseReason;
use crate::config::{LeafUrl, RemoteLeaf};
use crate::link::Link;
use crate::link::handshake::{Handshake, HandshakeError, Refusal, refuse_logged};
use crate::link::reader::{Pings, Protocol, ReadLoop, Tally};
use crate::link::tls::LinkTls;
use crate::router::{Msg, Origin};
use crate::server::ServerState;
use crate::trace;

/// How long the other side has to complete the handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// A leaf-node handshake on `state`'s server.
fn handshake(state: &ServerState) -> Handshake {
    Handshake::new(RouteDecoder::leaf(Handshake::limits(state)))
}

/// An accepted leaf connection before its handshake.
struct Accepted {
    state: Arc<ServerState>,
    lid: u64,
    addr: SocketAddr,
    prefix: String,
    /// The INFO we send (again, with `connect_info`, once CONNECT is accepted).
    info: LeafInfo,
    /// It came in on the WebSocket port.
    websocket: bool,
}

impl Accepted {
    /// Numbers a connection from `addr` and logs it (`how` ends the log line: empty,
    /// or ` (websocket)`); its INFO names `local` as the address it came in on.
    fn new(
        leafs: &LeafNodes,
        addr: SocketAddr,
        local: Option<SocketAddr>,
        how: &str,
    ) -> Option<Self> {
        let state = leafs.state()?;
        let lid = state.clients.next_cid();
        let prefix = format!("{addr} - lid:{lid}");
        info!("{prefix} - Leafnode connection created{how}");
        let mut info = leafs.own_info(local);
        info.client_id = Some(lid);
        if state.jwt().is_some() {
            // Operator mode: the leaf proves its user key by signing this.
            info.nonce = Some(crate::link::random_id());
        }
        Some(Self {
            state,
            lid,
            addr,
            prefix,
            info,
            websocket: !how.is_empty(),
        })
    }
}

/// The hub's side of a new TCP connection: with `tls {}`, TLS before the INFO
/// (`handshake_first`) or right after it (the leaf starts it on seeing
/// `tls_required`), as nats-server; then [`hub_side`].
pub(super) async fn accept(leafs: Arc<LeafNodes>, mut stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().map_or(addr, crate::bind::peer);
    let Some(accepted) = Accepted::new(&leafs, addr, Some(local), "") else {
        return;
    };
    let Some(tls) = leafs.tls.clone() else {
        return hub_side(&leafs, accepted, tokio::io::split(stream), false).await;
    };
    if !tls.handshake_first && write_info(&mut stream, &accepted.info).await.is_err() {
        return;
    }
    match tls.accept(stream).await {
        Ok(stream) => {
            let halves = tokio::io::split(stream);
            hub_side(&leafs, accepted, halves, !tls.handshake_first).await;
        }
        Err(e) => {
            error!("{} - TLS handshake error: {e}", accepted.prefix);
            info!(
                "{} - Leafnode connection closed: TLS Handshake Failure",
                accepted.prefix
            );
        }
    }
}

async fn write_info<W: AsyncWrite + Unpin>(writer: &mut W, info: &LeafInfo) -> std::io::Result<()> {
    let mut frame = BytesMut::new();
    encode_info(&mut frame, info);
    writer.write_all(&frame).await?;
    // A WebSocket writer sends what it gathered as one message on flush.
    writer.flush().await
}

/// The hub's side of a leaf connection that came in on the WebSocket port (path
/// `/leafnode`): the upgrade is done (TLS with it, for `wss://`), so the INFO goes out
/// as the first message; then [`hub_side`].
pub(super) async fn accept_websocket<R, W>(leafs: Arc<LeafNodes>, halves: (R, W), addr: SocketAddr)
where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    let Some(mut accepted) = Accepted::new(&leafs, addr, None, " (websocket)") else {
        return;
    };
    accepted.info.tls_required = false;
    accepted.info.tls_verify = false;
    hub_side(&leafs, accepted, halves, false).await;
}

/// The hub's handshake on a connected (and, with TLS, secured) stream's halves: INFO
/// out unless `info_sent`, CONNECT in (checked, which binds the account), INFO with
/// `connect_info` out, then the link runs.
async fn hub_side<R, W>(
    leafs: &Arc<LeafNodes>,
    accepted: Accepted,
    (mut reader, mut writer): (R, W),
    info_sent: bool,
) where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    if !info_sent && write_info(&mut writer, &accepted.info).await.is_err() {
        return;
    }
    let timeout = leafs.auth_timeout().max(HANDSHAKE);
    let mut hs = handshake(&accepted.state);
    let deadline = Instant::now() + timeout;
    let bound = match accept_connect(leafs, &accepted, &mut hs, &mut reader, deadline).await {
        Ok(bound) => bound,
        Err((refusal, log)) => {
            let prefix = &accepted.prefix;
            return refuse_logged(&mut writer, prefix, "Leafnode", refusal, log.as_deref()).await;
        }
    };
    let Accepted {
        state,
        lid,
        addr,
        mut info,
        ..
    } = accepted;
    let (
        Bound {
            account,
            permissions,
            user,
        },
        connect,
    ) = bound;
    info.connect_info = true;
    info.remote_account = Some(account.clone());
    info.nonce = None;
    if let Some(p) = &permissions {
        (info.import, info.export) = LinkPermissions::info(p);
    }
    if write_info(&mut writer, &info).await.is_err() {
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
        permissions: permissions.as_ref().map(LinkPermissions::hub),
        user: user.map(Arc::new),
    };
    let setup = with_jetstream(&state, setup, connect.domain.as_deref());
    run(leafs, &state, setup, reader, writer, hs).await;
}

/// Adds what the link keeps out for JetStream ([`jetstream_denies`]) to its deny
/// lists, given the other side's domain; logs the domains when they differ, as
/// nats-server does.
fn with_jetstream(state: &ServerState, mut setup: LinkSetup, theirs: Option<&str>) -> LinkSetup {
    let config = state.config();
    let js = config.jetstream.as_ref();
    let ours = js.and_then(|j| j.domain.as_deref());
    let system = state.system_account().is_some_and(|s| s == setup.account);
    let sides = JsSides {
        enabled: js.is_some(),
        ours,
        theirs,
        system,
    };
    let (out, take, differ) = jetstream_denies(sides);
    if differ && !system && (ours.is_some() || theirs.is_some()) {
        info!(
            "{} - lid:{} - JetStream using domains: local {:?}, remote {:?}",
            setup.addr,
            setup.lid,
            ours.unwrap_or_default(),
            theirs.unwrap_or_default()
        );
    }
    setup.deny_exports.extend(out);
    setup.deny_imports.extend(take);
    setup
}

/// Reads CONNECT and checks its credentials: the account the link is bound to and the
/// permissions it keeps to. A refusal comes with the line to log when it is not the
/// error sent: for bad credentials nats-server logs `authentication error` (with
/// ` - User "<name>"` when CONNECT named one) and sends `Authorization Violation`.
async fn accept_connect<R: AsyncRead + Unpin>(
    leafs: &LeafNodes,
    accepted: &Accepted,
    hs: &mut Handshake,
    reader: &mut R,
    deadline: Instant,
) -> Result<(Bound, LeafConnect), (Refusal, Option<String>)> {
    let connect: LeafConnect = hs.connect(reader, deadline).await.map_err(|e| (e, None))?;
    let bound = match accepted.state.jwt() {
        Some(jwt) => leafs.authorize_jwt(jwt, &connect, accepted),
        None => leafs
            .authorize(connect.user.as_deref(), connect.pass.as_deref())
            .map(|account| Bound {
                account,
                permissions: None,
                user: None,
            })
            .ok_or_else(authorization_violation),
    };
    let bound = bound.map_err(|refusal| {
        let log = (refusal.0 == CloseReason::AuthenticationViolation).then(|| {
            match connect.user.as_deref().filter(|u| !u.is_empty()) {
                Some(user) => format!("authentication error - User {user:?}"),
                None => "authentication error".to_string(),
            }
        });
        (refusal, log)
    })?;
    if connect.server_id == leafs.server_id {
        let refusal = (CloseReason::ProtocolViolation, Some("Loop detected".into()));
        return Err((refusal, None));
    }
    Ok((bound, connect))
}

/// What an accepted leaf's credentials bind it to.
struct Bound {
    account: String,
    /// The leaf user's permissions (JWT `pub`/`sub`), when it has any.
    permissions: Option<crate::config::Permissions>,
    /// The leaf's JWT user (operator mode).
    user: Option<crate::auth::jwt::JwtUser>,
}

fn authorization_violation() -> Refusal {
    (
        CloseReason::AuthenticationViolation,
        Some("Authorization Violation".into()),
    )
}

impl LeafNodes {
    /// Operator mode: the leaf's user JWT, checked as nats-server does
    /// ([`crate::auth::jwt::leaf`]), binds it to the user's account, within the account
    /// JWT's leaf connection limit.
    fn authorize_jwt(
        &self,
        jwt: &crate::auth::jwt::JwtAuth,
        connect: &LeafConnect,
        accepted: &Accepted,
    ) -> Result<Bound, Refusal> {
        let creds = LeafCredentials {
            jwt: connect.jwt.as_deref(),
            sig: connect.sig.as_deref(),
            nonce: accepted.info.nonce.as_deref(),
            ip: Some(accepted.addr.ip()),
            websocket: accepted.websocket,
        };
        let links = self.links();
        let on_account = |account: &str| links.iter().filter(|l| l.account == account).count();
        let user = jwt.admit_leaf(&creds, on_account).map_err(|e| match e {
            LeafRefusal::Denied(why) => {
                debug!("{} - {why}", accepted.prefix);
                authorization_violation()
            }
            LeafRefusal::TooMany => (
                CloseReason::MaxAccountConnectionsExceeded,
                Some("maximum account active connections exceeded".into()),
            ),
        })?;
        debug!(
            "{} - Authenticated JWT: Leafnode {:?} (claim-name: {:?}) by Account {:?}",
            accepted.prefix, user.key, user.name, user.account
        );
        jwt.ensure_wired(&accepted.state.accounts, &user.account);
        Ok(Bound {
            account: user.account.clone(),
            permissions: user.permissions.clone(),
            user: Some(user),
        })
    }
}

/// A remote being dialled: its settings, the URL tried, its TLS.
pub(super) struct Dialled<'a> {
    pub(super) remote: &'a RemoteLeaf,
    pub(super) url: &'a LeafUrl,
    pub(super) tls: Option<&'a LinkTls>,
}

/// The leaf's side of a TCP connection to a hub: TLS first with the remote's
/// `handshake_first`; else the hub's INFO, then TLS when either side asks for it (the
/// hub's `tls_required`, the remote's `tls {}`); then [`leaf_side`]. The hub's id when
/// a link ran.
pub(super) async fn solicit(
    leafs: &Arc<LeafNodes>,
    to: Dialled<'_>,
    mut stream: TcpStream,
) -> Result<String, String> {
    let state = leafs.state().ok_or("server gone")?;
    let _ = stream.set_nodelay(true);
    let addr = stream.peer_addr().map_err(|e| e.to_string())?;
    let mut hs = handshake(&state);
    let deadline = Instant::now() + HANDSHAKE;
    let host = to.url.host.clone();
    if let Some(tls) = to.tls.filter(|t| t.handshake_first) {
        let stream = tls.connect(&host, stream).await.map_err(tls_error)?;
        let halves = tokio::io::split(stream);
        return leaf_side(leafs, &state, to, (addr, halves), hs, None).await;
    }
    let hub = hub_info(&mut hs, &mut stream, deadline).await?;
    match (to.tls, hub.tls_required) {
        (None, false) => {
            let halves = tokio::io::split(stream);
            leaf_side(leafs, &state, to, (addr, halves), hs, Some(hub)).await
        }
        (Some(tls), _) => {
            let stream = tls.connect(&host, stream).await.map_err(tls_error)?;
            let halves = tokio::io::split(stream);
            leaf_side(leafs, &state, to, (addr, halves), hs, Some(hub)).await
        }
        (None, true) => Err("the hub requires TLS: the remote needs a tls {} block".into()),
    }
}

/// The leaf's side of a link to a hub's WebSocket port, once the upgrade is done: the
/// hub's INFO comes as the first message; then [`leaf_side`].
pub(super) async fn solicit_websocket<R, W>(
    leafs: &Arc<LeafNodes>,
    to: Dialled<'_>,
    (addr, halves): (SocketAddr, (R, W)),
) -> Result<String, String>
where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    let state = leafs.state().ok_or("server gone")?;
    let hs = handshake(&state);
    leaf_side(leafs, &state, to, (addr, halves), hs, None).await
}

pub(super) fn tls_error(e: std::io::Error) -> String {
    format!("TLS handshake error: {e}")
}

/// Reads the hub's INFO.
async fn hub_info<R: AsyncRead + Unpin>(
    hs: &mut Handshake,
    reader: &mut R,
    deadline: Instant,
) -> Result<LeafInfo, String> {
    hs.info(reader, deadline).await.map_err(|e| match e {
        HandshakeError::Refused(text) => text,
        e => format!("INFO from the hub: {e}"),
    })
}

/// The leaf's handshake on a connected (and, with TLS, secured) stream's halves to the
/// hub at `addr`: the hub's INFO in (unless read already), declining compression when
/// it offers it, CONNECT out, then the link runs until it closes.
async fn leaf_side<R, W>(
    leafs: &Arc<LeafNodes>,
    state: &Arc<ServerState>,
    to: Dialled<'_>,
    (addr, (mut reader, mut writer)): (SocketAddr, (R, W)),
    mut hs: Handshake,
    hub: Option<LeafInfo>,
) -> Result<String, String>
where
    R: AsyncRead + Unpin + Send,
    W: crate::client::ClientWriter,
{
    let hub = match hub {
        Some(hub) => hub,
        None => hub_info(&mut hs, &mut reader, Instant::now() + HANDSHAKE).await?,
    };
    let (remote, url) = (to.remote, to.url);
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
    writer.flush().await.map_err(|e| e.to_string())?;
    let lid = state.clients.next_cid();
    info!("{addr} - lid:{lid} - Leafnode connection created for account: {account}");
    let permissions = match hub.info_on_connect {
        true => accepted_info(leafs, &mut hs, &mut reader, (addr, lid)).await?,
        false => None,
    };
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
        permissions,
        user: None,
    };
    let setup = with_jetstream(state, setup, hub.domain.as_deref());
    leafs.learn_urls(&hub.leafnode_urls);
    run(leafs, state, setup, reader, writer, hs).await;
    Ok(hub.server_id)
}

/// The hub's answer to our CONNECT, when its INFO said it would send one
/// (`info_on_connect`): an INFO with `connect_info` (its `import`/`export`, when our
/// credentials carry permissions, are what the link keeps to, as nats-server's leafs
/// do), or the `-ERR` that refuses us (logged as nats-server's leafs log it). Waiting
/// for it also keeps our interest from going out before the permissions are known.
async fn accepted_info<R: AsyncRead + Unpin>(
    leafs: &LeafNodes,
    hs: &mut Handshake,
    reader: &mut R,
    (addr, lid): (SocketAddr, u64),
) -> Result<Option<LinkPermissions>, String> {
    match hs
        .info::<LeafInfo, _>(reader, Instant::now() + HANDSHAKE)
        .await
    {
        Ok(info) => {
            leafs.learn_urls(&info.leafnode_urls);
            Ok(LinkPermissions::leaf(
                info.import.as_ref(),
                info.export.as_ref(),
            ))
        }
        Err(HandshakeError::Refused(text)) => {
            error!("{addr} - lid:{lid} - Leafnode Error '{text}'");
            info!("{addr} - lid:{lid} - Leafnode connection closed: Client Closed");
            Err(format!("-ERR '{text}'"))
        }
        Err(e) => Err(format!("INFO from the hub after CONNECT: {e}")),
    }
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
    let expires = setup.user.as_ref().and_then(|u| u.expires);
    let link = Arc::new(LeafLink::new(setup));
    let expiry = expires.map(|at| expire_at(Arc::clone(&link), at));
    let writer_task = crate::link::spawn_writer(
        &link,
        writer,
        config.write_deadline,
        Arc::clone(&state.stats),
    );
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
    if let Some(timer) = expiry {
        timer.abort();
    }
    leaf_account.leave(&link);
    leafs.unregister(&link);
    let _ = tokio::time::timeout(
        config.write_deadline + Duration::from_millis(100),
        writer_task,
    )
    .await;
    let reason = link.outbound.reason();
    crate::link::closed_slow(&*link, reason, &state.stats);
    info!(
        "{} - Leafnode connection closed: {}",
        link.log_prefix(),
        reason.as_str()
    );
}

/// Ends a hub's link to a leaf whose user JWT expires at `at` (unix seconds), as
/// nats-server 2.15.1: the leaf is sent `-ERR 'User Authentication Expired'` and the
/// link closes with "Authentication Expired".
fn expire_at(link: Arc<LeafLink>, at: i64) -> tokio::task::JoinHandle<()> {
    let left = u64::try_from(at - crate::auth::jwt::token::now()).unwrap_or(0);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(left)).await;
        debug!(
            "{} - User Authentication Expired - Account:{}",
            link.log_prefix(),
            link.account
        );
        link.outbound
            .push_raw(b"-ERR 'User Authentication Expired'\r\n");
        link.outbound.close_with(CloseReason::AuthenticationExpired);
    })
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
                if self.subscription_violation(&sub.subject) {
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

    /// A leaf asked for a literal subject this hub does not send it (its deny list, the
    /// JetStream API of its account among them): as nats-server, the hub answers with a
    /// permissions violation and closes the link. Wildcard interest is kept and
    /// filtered message by message; a leaf does not police its hub (nats-server's
    /// spokes ignore what they would not send).
    fn subscription_violation(&self, subject: &[u8]) -> bool {
        let wildcard = rill_protocol::subject::has_wildcard_bytes(subject);
        if self.link.solicited || wildcard || self.link.may_send(subject) {
            return false;
        }
        let subject = String::from_utf8_lossy(subject);
        error!(
            "{} - Subscription Violation on {subject:?} - Check other side configuration",
            self.link.log_prefix()
        );
        let mut buf = BytesMut::new();
        encode::err(
            &mut buf,
            &format!("Permissions Violation for Subscription to {subject:?}"),
        );
        self.link.send(&buf);
        self.link
            .outbound
            .close_with(CloseReason::ProtocolViolation);
        true
    }

    /// Hands a message from the other side to the bound account.
    fn deliver(&mut self, leaf_msg: &RouteMsg, tally: &mut Tally) {
        let msg = Msg::from_publish(&leaf_msg.publish);
        if !self.link.may_take(msg.subject.as_bytes()) {
            return;
        }
        let msg = crate::link::forward::arrived(msg);
        let begun = match self.leafs.state() {
            Some(state) => {
                trace::start::begin(&state, self.account, || self.link.trace_conn(), &msg)
            }
            None => trace::start::Begun::Plain,
        };
        let msg = msg.with_trace(begun.trace());
        let queues: Vec<&[u8]> = leaf_msg.queues.iter().map(|q| &q[..]).collect();
        let fanout =
            self.account
                .router
                .publish_from(Origin::Leaf(self.link.lid), &msg, Some(&queues));
        tally.record(msg.size(), fanout);
    }
}
