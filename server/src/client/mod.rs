//! One client connection: INFO → CONNECT → the read loop that decodes and
//! dispatches ops, plus the writer task that drains its [`Outbound`] queue.
//!
//! The read loop owns the connection's private state (decoder, CONNECT options,
//! ping bookkeeping). What other tasks need to reach — the outbound queue, the
//! subscription table and the counters — lives in the shared [`ClientLink`], which the
//! live-client table ([`Clients`], in `ServerState`) lists for monitoring, reload and
//! shutdown.
//!
//! # Connection kinds: where a new one plugs in
//! - A **client** speaks the NATS client protocol, belongs to one account, and is listed
//!   in `/connz`. The byte stream does not matter: the listener hands [`serve_peer`] any
//!   `AsyncRead`/`AsyncWrite` pair and a [`Peer`] (plain TCP, TLS after INFO or
//!   handshake-first; a WebSocket transport plugs in the same way, with its own accept
//!   loop in its own module).
//! - A **route** or **leaf-node link** is not a client: it has its own module with its
//!   own listener, read loop and table (`/routez`, `/leafz`). What it shares with
//!   clients: a connection id from [`Clients::next_cid`], an [`Outbound`] queue and
//!   writer task for what it sends, and [`crate::router::Subscriber`] — anything the
//!   router delivers to (clients, routes, leaf links, account imports, JetStream) is a
//!   `Subscriber`, so a new kind receives messages by implementing it.
//! - An **MQTT** connection speaks its own protocol in its own module, reaching accounts
//!   and JetStream through the same public handles, and delivers through a `Subscriber`
//!   of its own.
//!
//! Every connection task is spawned by an accept loop that holds a clone of the
//! server's `done` sender, so shutdown waits for it ([`crate::lifecycle`]).

pub mod events;
mod grants;
pub(crate) mod jwt;
pub mod link;
pub mod outbound;
mod peer;
mod perms;
pub mod registry;
mod reload;
mod request_info;
mod trace;

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, trace, warn};

use rill_protocol::headers::HeaderMap;
use rill_protocol::{
    ClientDecoder, ClientOp, Connect, DecoderLimits, ProtocolError, Publish, encode, subject,
};

pub use link::{ClientInfo, ClientLink};
pub use outbound::{CloseReason, Outbound, Pushed, SlowWrite};
pub use peer::{Peer, info_line};
pub use registry::Clients;
use trace::describe;

use crate::account::Account;
use crate::auth::{AuthError, Identity, Permissions, callout, offload};
use crate::locks;
use crate::router::{ByteString, Msg, Subscriber, Subscription};
use crate::server::ServerState;
use crate::stats::Stats;
use crate::trace::record::{Conn, Kind};
use crate::trace::start::Begun;

/// Free space guaranteed before each read.
const READ_MIN_FREE: usize = 16 * 1024;

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Publish-permission results kept per connection before the cache is cleared.
const PERM_CACHE_MAX: usize = 1024;

/// The read-loop side of a connection.
struct Connection {
    link: Arc<ClientLink>,
    state: Arc<ServerState>,
    account: Arc<Account>,
    connect: Connect,
    connected: bool,
    decoder: ClientDecoder,
    pings_out: u32,
    /// When the oldest unanswered PING went out (its PONG measures the round trip).
    ping_sent: Option<Instant>,
    /// A subscriber whose backlog a delivery in this read pass pushed past its
    /// stall threshold; the read loop waits (bounded) for it to drain.
    stall: Option<Arc<dyn Subscriber>>,
    /// Counters of the current read pass, added to the shared atomics once per pass.
    tally: Tally,
    /// INFO nonce and client certificate, for authentication.
    peer: Peer,
    /// The user's permissions; `None` keeps the publish path free of checks.
    perms: Option<Arc<Permissions>>,
    /// Publish-permission results by subject.
    pub_cache: HashMap<Bytes, bool>,
    /// The JWT user's limits and expiry (operator mode).
    jwt: Option<jwt::JwtSession>,
    /// A CONNECT being checked: ops after it wait until it is done.
    pending_connect: Option<Box<Connect>>,
}

/// Message counters gathered over one read pass: one atomic add per counter per
/// pass instead of four per message (they showed up at ~8% of CPU in profiles).
#[derive(Debug, Default)]
struct Tally {
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
}

impl Tally {
    fn record(&mut self, size: u64, delivered: u64) {
        self.in_msgs += 1;
        self.in_bytes += size;
        self.out_msgs += delivered;
        self.out_bytes += delivered * size;
    }

    fn flush(&mut self, link: &ClientLink, stats: &Stats) {
        if self.in_msgs == 0 {
            return;
        }
        let t = std::mem::take(self);
        link.touch();
        link.in_msgs.fetch_add(t.in_msgs, Ordering::Relaxed);
        link.in_bytes.fetch_add(t.in_bytes, Ordering::Relaxed);
        Stats::add(&stats.in_msgs, t.in_msgs);
        Stats::add(&stats.in_bytes, t.in_bytes);
        Stats::add(&stats.out_msgs, t.out_msgs);
        Stats::add(&stats.out_bytes, t.out_bytes);
    }
}

/// A connection's write side: the bytes out, and a last word when it closes.
pub trait ClientWriter: AsyncWrite + Unpin + Send + 'static {
    /// Called once, before the shutdown, with why the connection closes (a WebSocket
    /// puts it in its close frame; a socket has nothing to say).
    fn closing(&mut self, _reason: CloseReason) {}
}

impl ClientWriter for tokio::net::tcp::OwnedWriteHalf {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> ClientWriter for tokio::io::WriteHalf<T> {}

impl ClientWriter for tokio::io::DuplexStream {}

/// Serves one connection (plain or TLS) described by `peer` until it closes.
pub async fn serve_peer<R, W>(state: Arc<ServerState>, reader: R, writer: W, mut peer: Peer)
where
    R: AsyncRead + Unpin + Send,
    W: ClientWriter,
{
    let config = state.config();
    let mut link = ClientLink::new(
        peer.cid,
        peer.addr,
        config.max_pending,
        Arc::clone(&state.stats),
    );
    link.websocket = peer.websocket.is_some();
    let link = Arc::new(link);
    Stats::add(&state.stats.total_connections, 1);
    state.clients.register(Arc::clone(&link));
    drop(peer.admission.take());
    debug!("{} - Client connection created", link.log_prefix());

    let writer_link = Arc::clone(&link);
    let deadline = config.write_deadline;
    let writer_task =
        tokio::spawn(async move { writer_link.outbound.run_writer(writer, deadline).await });

    let limits = DecoderLimits {
        max_control_line: config.max_control_line,
        max_payload: config.max_payload,
    };
    let mut conn = Connection {
        account: Arc::clone(state.accounts.global()),
        link: Arc::clone(&link),
        state: Arc::clone(&state),
        connect: Connect::default(),
        connected: false,
        decoder: ClientDecoder::new(limits),
        pings_out: 0,
        ping_sent: None,
        stall: None,
        pending_connect: None,
        tally: Tally::default(),
        peer,
        perms: None,
        pub_cache: HashMap::new(),
        jwt: None,
    };
    if !conn.peer.info_sent {
        conn.send_info();
    }
    let reason = conn.read_loop(reader).await;
    conn.close(reason, writer_task).await;
}

impl Connection {
    fn send_info(&self) {
        self.link
            .outbound
            .push_raw(&info_line(&self.state, &self.peer));
    }

    async fn read_loop<R: AsyncRead + Unpin>(&mut self, mut reader: R) -> CloseReason {
        let config = self.state.config();
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let start = Instant::now() + config.ping_interval;
        let mut ping = tokio::time::interval_at(start, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let auth_required = self.peer.authenticator(&self.state).required();
        let auth_deadline = tokio::time::sleep(self.peer.auth_timeout(&config));
        let mut auth_deadline = pin!(auth_deadline);
        let link = Arc::clone(&self.link);
        let mut reload = pin!(link.reload.notified());
        loop {
            // Keep a large free tail so each read takes what the socket has (fewer
            // reads and wake-ups); a payload in flight reserves its whole size.
            let want = self
                .decoder
                .bytes_needed(buf.len())
                .unwrap_or(0)
                .max(READ_MIN_FREE);
            if buf.capacity() - buf.len() < want {
                buf.reserve(want.max(READ_CHUNK));
            }
            tokio::select! {
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(_) => {
                        if let Err(reason) = self.process_all(&mut buf).await {
                            return reason;
                        }
                        if let Some(backlogged) = self.stall.take() {
                            // Fast-producer stall, as nats-server: let a backlogged subscriber
                            // drain before reading more from this publisher (TCP backpressure
                            // then slows the publisher), for at most its `max_stall`.
                            let wait = tokio::time::timeout(
                                backlogged.max_stall(),
                                backlogged.drained(),
                            );
                            tokio::select! {
                                _ = wait => {}
                                _ = link.outbound.close.notified() => return link.outbound.reason(),
                            }
                        }
                    }
                    Err(e) => {
                        debug!("{} - read error: {e}", link.log_prefix());
                        return CloseReason::ReadError;
                    }
                },
                _ = ping.tick() => {
                    if let Err(reason) = self.on_ping_timer() {
                        return reason;
                    }
                }
                _ = &mut auth_deadline, if auth_required && !self.connected => {
                    self.fail(&ProtocolError::AuthenticationTimeout);
                    return CloseReason::AuthenticationViolation;
                }
                () = &mut reload => {
                    reload.set(link.reload.notified());
                    if let Err(reason) = self.on_reload() {
                        return reason;
                    }
                }
                _ = link.outbound.close.notified() => return link.outbound.reason(),
            }
        }
    }

    fn on_ping_timer(&mut self) -> Result<(), CloseReason> {
        if self.pings_out >= self.state.config().ping_max {
            self.fail(&ProtocolError::StaleConnection);
            Stats::add(&self.state.stats.stale_connections, 1);
            return Err(CloseReason::StaleConnection);
        }
        self.pings_out += 1;
        self.ping_sent.get_or_insert_with(Instant::now);
        self.link.outbound.push_raw(b"PING\r\n");
        Ok(())
    }

    /// [`Connection::process`], checking a CONNECT (which may take a while: bcrypt runs
    /// off the workers) before the ops after it.
    async fn process_all(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        self.process(buf)?;
        while let Some(connect) = self.pending_connect.take() {
            self.on_connect(*connect).await?;
            self.process(buf)?;
        }
        Ok(())
    }

    /// Decodes and handles every whole op in `buf`, up to a CONNECT.
    fn process(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        let result = self.process_ops(buf);
        self.tally.flush(&self.link, &self.state.stats);
        result
    }

    fn process_ops(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        while self.pending_connect.is_none() {
            match self.decoder.decode(buf) {
                Ok(Some(op)) => self.handle(op)?,
                Ok(None) => return Ok(()),
                // A publish subject that is not text: refused, the op consumed.
                Err(e) if !e.closes_connection() => self.fail(&e),
                Err(e) => {
                    self.fail(&e);
                    return Err(match e {
                        ProtocolError::MaxPayload => CloseReason::MaxPayloadExceeded,
                        _ => CloseReason::ProtocolViolation,
                    });
                }
            }
            if self.link.outbound.is_closed() {
                return Err(self.link.outbound.reason());
            }
        }
        Ok(())
    }

    fn handle(&mut self, op: ClientOp) -> Result<(), CloseReason> {
        if tracing::enabled!(tracing::Level::TRACE) {
            trace!("{} - <<- [{}]", self.link.log_prefix(), describe(&op));
        }
        let auth_required = !self.connected && self.peer.authenticator(&self.state).required();
        if auth_required && !matches!(op, ClientOp::Connect(_)) {
            self.fail(&ProtocolError::AuthorizationViolation);
            return Err(CloseReason::AuthenticationViolation);
        }
        match op {
            ClientOp::Pub(publish) => {
                if publish.headers().is_some() && !self.connect.headers {
                    self.fail(&ProtocolError::HeadersNotSupported);
                    return Err(CloseReason::ProtocolViolation);
                }
                self.check_jwt_payload(&publish)?;
                self.on_pub(&publish);
            }
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => {
                self.link.touch();
                self.on_sub(subject, queue, sid);
            }
            ClientOp::Unsub { sid, max } => {
                self.link.touch();
                self.on_unsub(&sid, max);
            }
            ClientOp::Ping => {
                self.link.outbound.push_raw(b"PONG\r\n");
            }
            ClientOp::Pong => {
                self.pings_out = 0;
                // The answer to our PING: its round trip (an unasked PONG measures nothing).
                if let Some(sent) = self.ping_sent.take() {
                    self.link.set_rtt(sent.elapsed());
                }
            }
            ClientOp::Connect(connect) => {
                if connect.protocol >= 1 {
                    // As nats-server: a client of protocol 1 answers INFO with CONNECT at
                    // once, so the time since INFO went out is a first round trip.
                    let since = SystemTime::now().duration_since(self.link.started);
                    self.link.set_rtt(since.unwrap_or_default());
                }
                self.pending_connect = Some(connect);
            }
            ClientOp::Info | ClientOp::Ok => {}
        }
        Ok(())
    }

    fn ok(&self) {
        if self.connect.verbose {
            self.link.outbound.push_raw(b"+OK\r\n");
        }
    }

    async fn on_connect(&mut self, mut connect: Connect) -> Result<(), CloseReason> {
        trace!(
            "{} - <<- [CONNECT {}]",
            self.link.log_prefix(),
            serde_json::to_string(&connect).unwrap_or_default()
        );
        self.peer.complete_connect(&mut connect);
        if connect.protocol > 1 || connect.protocol < 0 {
            self.fail(&ProtocolError::InvalidClientProtocol);
            return Err(CloseReason::ProtocolViolation);
        }
        if connect.no_responders && !connect.headers {
            self.fail(&ProtocolError::NoRespondersRequiresHeaders);
            return Err(CloseReason::ProtocolViolation);
        }
        let auth = self.peer.authenticator(&self.state);
        let costly = auth.is_costly(&connect);
        let (creds, nonce, cert) = (
            connect.clone(),
            self.peer.nonce.clone(),
            self.peer.cert.clone(),
        );
        let from = (Some(self.peer.addr.ip()), self.peer.conn_type());
        let rules = Arc::clone(&auth);
        let check = move || auth.authenticate_client(&creds, nonce.as_deref(), cert.as_ref(), from);
        let mut outcome = offload::check(costly, check).await;
        if let Some(plan) = rules.callout_plan(&connect, &outcome) {
            outcome = self.callout(&plan, &connect).await;
        }
        let identity = match outcome {
            Ok(identity) => identity,
            Err(e) => {
                error!("{} - authentication error: {e}", self.link.log_prefix());
                self.state
                    .events()
                    .auth_error(&self.link, &self.account.name);
                self.fail(&ProtocolError::AuthorizationViolation);
                return Err(CloseReason::AuthenticationViolation);
            }
        };
        self.account = self.state.accounts.get(&identity.account);
        self.link.set_perms(identity.permissions.clone());
        self.perms = identity.permissions;
        self.start_jwt(identity.jwt)?;
        self.link.echo.store(connect.echo, Ordering::Relaxed);
        self.link.headers.store(connect.headers, Ordering::Relaxed);
        {
            let mut info = locks::write(&self.link.info);
            info.name = connect.name.clone().unwrap_or_default();
            info.lang = connect.lang.clone().unwrap_or_default();
            info.version = connect.version.clone().unwrap_or_default();
            info.user = identity.user;
            info.account = identity.account;
            info.protocol = connect.protocol;
        }
        self.link.touch();
        self.connect = connect;
        self.connected = true;
        self.ok();
        self.state
            .events()
            .client_connected(&self.link, &self.account.name);
        Ok(())
    }

    /// Hands the client's authentication to the auth callout service of `plan`.
    async fn callout(
        &self,
        plan: &callout::Plan,
        connect: &Connect,
    ) -> Result<Identity, AuthError> {
        let host = self.peer.addr.ip().to_string();
        let client = callout::Client {
            connect,
            nonce: self.peer.nonce.as_deref(),
            host: &host,
            cid: self.link.cid,
            conn_type: self.peer.conn_type(),
            mqtt_id: None,
        };
        callout::authorize(&self.state, plan, &client)
            .await
            .map_err(AuthError::Callout)
    }

    fn on_pub(&mut self, publish: &Publish) {
        // As nats-server: a `*` or `>` token in a publish subject is routed literally
        // (it reaches only wildcard subscriptions) and is an error only in pedantic
        // mode; the error does not stop delivery. A subject with an empty token is
        // never delivered; a request to one gets no-responders, as from nats-server.
        // Verbose clients get +OK after the -ERR, before delivery.
        if self.connect.pedantic && subject::validate_publish(publish.subject()).is_err() {
            self.fail(&ProtocolError::InvalidPublishSubject);
        }
        // The account's `mappings {}` rewrite the subject first; permissions and
        // routing see only the new one (as nats-server).
        let mapped = self.account.router.mappings().map(publish.subject());
        let subject = mapped.as_deref().unwrap_or(publish.subject());
        let begun = self.begin_trace(publish);
        if self.perms.is_some() && !self.can_publish(subject) {
            let violation = ProtocolError::PublishViolation(subject.to_owned());
            if let Some(trace) = begun.trace() {
                trace.refused(violation.to_string());
            }
            self.fail(&violation);
            return;
        }
        self.ok();
        if matches!(begun, Begun::Dropped) {
            return;
        }
        let trace = begun.trace();
        let mut msg = Msg::from_publish(publish).with_trace(trace);
        if let Some(mapped) = &mapped {
            msg = msg.with_subject(mapped);
            trace.inspect(|t| t.mapped(mapped));
        }
        if subject::has_empty_token(subject.as_bytes()) {
            self.answer_unrouted(subject, &msg);
            return;
        }
        let size = msg.size() as u64;
        let echo = self.link.echo.load(Ordering::Relaxed);
        let fanout = self.account.router.publish(self.link.cid, echo, &msg);
        if self.stall.is_none() {
            self.stall = fanout.backlogged;
        }
        let delivered = fanout.delivered as u64;
        self.tally.record(size, delivered);
        if delivered == 0 {
            self.answer_unrouted(subject, &msg);
        }
    }

    /// Starts the trace of `publish` when its headers ask for one (see [`crate::trace`]).
    fn begin_trace(&self, publish: &Publish) -> Begun {
        if publish.headers().is_none() {
            return Begun::Plain;
        }
        let conn = || {
            let name = locks::read(&self.link.info).name.clone();
            Conn::new(Kind::Client, self.link.cid, name)
        };
        crate::trace::start::begin(
            &self.state,
            &self.account,
            conn,
            &Msg::from_publish(publish),
        )
    }

    /// A request nobody received gets no-responders when the client asked for them.
    fn answer_unrouted(&self, subject: &str, msg: &Msg<'_>) {
        if let Some(reply) = msg.reply_text()
            && self.connect.no_responders
            && self.connect.headers
        {
            self.no_responders(subject, &reply);
        }
    }

    /// Checks publish permissions (cached per subject) and `allow_responses` grants.
    fn can_publish(&mut self, subject: &str) -> bool {
        let Some(perms) = &self.perms else {
            return true;
        };
        let allowed = match self.pub_cache.get(subject.as_bytes()) {
            Some(&ok) => ok,
            None => {
                let ok = perms.can_publish(subject);
                if self.pub_cache.len() >= PERM_CACHE_MAX {
                    self.pub_cache.clear();
                }
                self.pub_cache
                    .insert(Bytes::copy_from_slice(subject.as_bytes()), ok);
                ok
            }
        };
        allowed || (perms.responses().is_some() && self.link.take_response(subject.as_bytes()))
    }

    /// Sends the 503 status to the requester's own inbox subscription.
    fn no_responders(&self, subject: &str, reply: &ByteString) {
        let mut headers = HeaderMap::with_status(503, None);
        headers.append("Nats-Subject", subject);
        let headers = headers.to_bytes();
        let empty = Bytes::new();
        let msg = Msg::new(reply, None, Some(&headers), &empty);
        self.account.router.publish_to_owner(self.link.cid, &msg);
    }

    fn on_sub(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        let text = std::str::from_utf8(&subject).unwrap_or("");
        let queue_ok = queue
            .as_ref()
            .is_none_or(|q| std::str::from_utf8(q).is_ok());
        if subject::validate_filter(text).is_err() || !queue_ok {
            // nats-server sends no +OK after a refused SUB.
            self.fail(&ProtocolError::InvalidSubject);
            return;
        }
        if let Some(perms) = &self.perms {
            let q = queue.as_ref().and_then(|q| std::str::from_utf8(q).ok());
            if !perms.can_subscribe(text, q) {
                self.fail(&ProtocolError::SubscribeViolation {
                    subject: text.to_string(),
                    queue: q.map(str::to_string),
                });
                return;
            }
        }
        let max_subs = self.state.config().max_subscriptions;
        let mut subs = locks::lock(&self.link.subs);
        if subs.contains_key(&sid) {
            // nats-server keeps the first subscription for a reused sid.
            drop(subs);
            self.ok();
            return;
        }
        if self.subs_at_limit(max_subs, subs.len()) {
            drop(subs);
            self.fail(&ProtocolError::MaxSubscriptions);
            return;
        }
        let owner: Arc<dyn Subscriber> = Arc::clone(&self.link) as Arc<dyn Subscriber>;
        let sub = Subscription::new(sid.clone(), subject, queue, owner);
        subs.insert(sid, Arc::clone(&sub));
        drop(subs);
        self.account.router.subscribe(&sub);
        self.ok();
    }

    fn on_unsub(&mut self, sid: &Bytes, max: Option<u64>) {
        let sub = locks::lock(&self.link.subs).get(sid).cloned();
        if let Some(sub) = sub {
            let removed = match max {
                Some(max) if max > 0 => self.account.router.auto_unsubscribe(&sub, max),
                _ => self.account.router.unsubscribe(&sub),
            };
            if removed {
                locks::lock(&self.link.subs).remove(sid);
            }
        }
        self.ok();
    }

    /// `"<account>/user:<name>"`, as nats-server names a client in violation logs.
    fn who(&self) -> String {
        let user = self.link.user_name();
        format!("\"{}/user:{user}\"", self.account.name)
    }

    /// Reports a protocol error: the `-ERR` line (if nats-server sends one) and a log
    /// line; the caller closes the connection when the error says so.
    fn fail(&self, err: &ProtocolError) {
        let prefix = self.link.log_prefix();
        match err {
            ProtocolError::AuthorizationViolation | ProtocolError::AuthenticationTimeout => {
                error!("{prefix} - {err}");
            }
            // nats-server logs permission violations as errors, naming the user.
            ProtocolError::PublishViolation(subject) => {
                error!(
                    "{prefix} - {} - Publish Violation - Subject \"{subject}\"",
                    self.who()
                );
            }
            ProtocolError::SubscribeViolation { subject, .. } => {
                error!(
                    "{prefix} - {} - Subscription Violation - Subject \"{subject}\"",
                    self.who()
                );
            }
            e if e.closes_connection() => error!("{prefix} - {err}"),
            _ => debug!("{prefix} - {err}"),
        }
        if let Some(text) = err.err_text() {
            let mut buf = BytesMut::with_capacity(text.len() + 10);
            encode::err(&mut buf, &text);
            self.link.outbound.push_raw(&buf);
        }
    }

    async fn close(self, reason: CloseReason, writer: tokio::task::JoinHandle<()>) {
        self.link.outbound.close_with(reason);
        let subs: Vec<Arc<Subscription>> = locks::lock(&self.link.subs)
            .drain()
            .map(|(_, v)| v)
            .collect();
        for sub in &subs {
            self.account.router.unsubscribe(sub);
        }
        self.state.clients.unregister(self.link.cid);
        let deadline = self.state.config().write_deadline + Duration::from_millis(100);
        if tokio::time::timeout(deadline, writer).await.is_err() {
            warn!("{} - writer did not finish in time", self.link.log_prefix());
        }
        let reason = self.link.outbound.reason();
        if self.connected {
            let events = self.state.events();
            events.client_disconnected(&self.link, &self.account.name, reason.as_str());
        }
        match reason {
            r if r.is_slow_consumer() => {
                info!("{} - Slow Consumer: {}", self.link.log_prefix(), r.as_str())
            }
            _ => debug!(
                "{} - Client connection closed: {}",
                self.link.log_prefix(),
                reason.as_str()
            ),
        }
    }
}
