//! What the two kinds of server-to-server links share: cluster routes
//! ([`crate::route`]) and leaf-node connections ([`crate::leaf`]) speak the same framing
//! (`rill_protocol::route`: `INFO`, `CONNECT`, `±S+`, `±MSG`, `PING`), keep the same
//! counters and forward messages to the other side the same way; only their rules differ
//! (full mesh and one hop for routes; account binding, loop detection and deny lists
//! for leafs).
//!
//! - [`handshake`]: reading ops before the link runs (`INFO`, `CONNECT`), and refusals.
//! - [`reader`]: the read loop a link runs once its handshake is done (PING/PONG, RTT,
//!   stalls on a backlogged subscriber, counters), handing every other op to the kind's
//!   [`Protocol`](reader::Protocol).
//! - [`tls`]: TLS on links, accepting and dialling.
//! - [`forward`]: the remote interest entries, the weighted pick of a queue group's
//!   member, and queueing one message per target link.
//! - here: the [`Link`] trait both link types implement (and their [`Subscriber`] side,
//!   `link_subscriber!`), [`LinkCounters`], the accept loop both listeners run
//!   ([`serve_listener`]), the [`Done`] token their tasks hold so shutdown waits for
//!   them, and host and port helpers for what a listener advertises.

pub(crate) mod forward;
pub(crate) mod handshake;
pub(crate) mod reader;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::client::{CloseReason, Outbound, SlowWrite};
use crate::monitoring::format::go_duration;
use crate::router::Subscriber;
use crate::stats::Stats;
use crate::trace::record::Conn;

/// The shutdown token of one kind of link (routes, leaf nodes): every task of that kind
/// holds a clone of the server's `done` sender, and the server's shutdown waits until
/// all are dropped. The kind's own table keeps the sender only until
/// [`Done::release`] (its shutdown), or the server would wait for the table itself (5 s,
/// then 'Some connections did not close in time').
#[derive(Debug)]
pub(crate) struct Done(Mutex<Option<mpsc::Sender<()>>>);

impl Done {
    pub(crate) fn new(done: mpsc::Sender<()>) -> Self {
        Self(Mutex::new(Some(done)))
    }

    /// A clone for a task to hold while it runs (`None` once the server stops).
    pub(crate) fn hold(&self) -> Option<mpsc::Sender<()>> {
        crate::locks::lock(&self.0).clone()
    }

    /// Drops the table's own sender: the server stops.
    pub(crate) fn release(&self) {
        crate::locks::lock(&self.0).take();
    }
}

/// Messages and bytes in and out of one link, and its last round-trip time.
#[derive(Debug, Default)]
pub(crate) struct LinkCounters {
    /// Messages received.
    pub(crate) in_msgs: AtomicU64,
    /// Payload bytes received.
    pub(crate) in_bytes: AtomicU64,
    /// Messages sent.
    pub(crate) out_msgs: AtomicU64,
    /// Payload bytes sent.
    pub(crate) out_bytes: AtomicU64,
    /// Last round-trip time measured with PING/PONG, in microseconds.
    pub(crate) rtt_us: AtomicU64,
    /// Writes that passed the write deadline with the link kept up (the first makes the
    /// link a slow consumer in nats-server's count).
    pub(crate) slow_writes: AtomicU64,
}

impl LinkCounters {
    /// Last measured round trip.
    pub(crate) fn rtt(&self) -> Duration {
        Duration::from_micros(self.rtt_us.load(Ordering::Relaxed))
    }

    fn set_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    fn add_out(&self, bytes: u64) {
        self.out_msgs.fetch_add(1, Ordering::Relaxed);
        self.out_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// True once the link was a slow consumer: a write passed the deadline, or it
    /// closed as one (`reason`).
    pub(crate) fn was_slow(&self, reason: CloseReason) -> bool {
        self.slow_writes.load(Ordering::Relaxed) > 0 || reason.is_slow_consumer()
    }

    fn add_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.in_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A connection to another server, as the shared read loop and forwarding reach it.
pub(crate) trait Link: Subscriber + Send + Sync + 'static {
    /// What we send.
    fn outbound(&self) -> &Outbound;
    /// Its counters.
    fn counters(&self) -> &LinkCounters;
    /// `"<addr> - rid:<n>"` or `"<addr> - lid:<n>"`, as nats-server prefixes log lines.
    fn log_prefix(&self) -> String;

    /// How it appears in message trace events: kind, id and the peer server's name.
    fn trace_conn(&self) -> Conn;

    /// Queues protocol bytes (`±S+`, `±S-`, INFO, PING, PONG).
    fn send(&self, bytes: &[u8]) {
        self.outbound().push_raw(bytes);
    }

    /// True once closing.
    fn is_closed(&self) -> bool {
        self.outbound().is_closed()
    }
}

/// Accepts connections of one kind of link on `listener` until `stop` turns true
/// (`what` names them in accept errors), serving each with `serve(kind, stream,
/// address)` in a task of its own that holds `done` until it ends, so shutdown waits
/// for it. Routes and leaf nodes start up through it.
pub(crate) fn serve_listener<K, F, Fut>(
    listener: TcpListener,
    (stop, done): (watch::Receiver<bool>, mpsc::Sender<()>),
    what: &'static str,
    kind: Arc<K>,
    serve: F,
) where
    K: Send + Sync + 'static,
    F: Fn(Arc<K>, TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(crate::listener::accept_each(
        listener,
        stop,
        done,
        what,
        move |stream, addr, done| {
            let serving = serve(Arc::clone(&kind), stream, addr);
            tokio::spawn(async move {
                serving.await;
                drop(done);
            });
        },
    ));
}

/// The [`Subscriber`] side of a link type (`$owner`: its owner id from `self`). A link
/// is what a backlogged publisher waits on when the link's queue is past its stall
/// threshold (the router reports it like a backlogged subscriber); nothing is delivered
/// to it through a subscription, remote interest lives in the link layer.
macro_rules! link_subscriber {
    ($ty:ty, |$link:ident| $owner:expr) => {
        impl $crate::router::Subscriber for $ty {
            fn owner_id(&self) -> u64 {
                let $link = self;
                $owner
            }

            fn deliver(
                &self,
                _sub: &$crate::router::Subscription,
                _msg: &$crate::router::Msg<'_>,
            ) -> $crate::router::Delivery {
                $crate::router::Delivery::Dropped
            }

            fn drained(&self) -> $crate::shared::BoxFuture<'_, ()> {
                Box::pin(self.outbound.drained())
            }

            fn is_alive(&self) -> bool {
                !self.outbound.is_closed()
            }
        }
    };
}
pub(crate) use link_subscriber;

/// Spawns the writer task of `link` (a route or leaf link): it drains the link's queue
/// into `writer`; a write past `deadline` that wrote something is logged as nats-server
/// logs it (`Slow Consumer Detected: WriteDeadline of 2s exceeded with 19 chunks of
/// 63684 total bytes.`, later ones as `Slow Consumer State: …`) and counted, and the link
/// stays up; one that wrote nothing closes it. A link counts once as a slow consumer,
/// however often it falls behind (as nats-server counts it).
pub(crate) fn spawn_writer<L: Link, W: crate::client::ClientWriter + 'static>(
    link: &Arc<L>,
    writer: W,
    deadline: Duration,
    stats: Arc<Stats>,
) -> tokio::task::JoinHandle<()> {
    let link = Arc::clone(link);
    tokio::spawn(async move {
        let slow = |w: SlowWrite| {
            let first = link.counters().slow_writes.fetch_add(1, Ordering::Relaxed) == 0;
            if first {
                Stats::add(&stats.slow_consumers, 1);
            }
            let what = if first { "Detected" } else { "State" };
            info!(
                "{} - Slow Consumer {what}: WriteDeadline of {} exceeded with {} chunks of {} total bytes.",
                link.log_prefix(),
                go_duration(w.deadline),
                w.chunks,
                w.bytes
            );
        };
        link.outbound()
            .run_link_writer(writer, deadline, &slow)
            .await;
    })
}

/// Logs and counts a link that closed as a slow consumer (`reason`), unless a write past
/// the deadline counted it already.
pub(crate) fn closed_slow<L: Link>(link: &L, reason: CloseReason, stats: &Stats) {
    if !reason.is_slow_consumer() {
        return;
    }
    warn!(
        "{} - Slow Consumer Detected: closed ({})",
        link.log_prefix(),
        reason.as_str()
    );
    if link.counters().slow_writes.load(Ordering::Relaxed) == 0 {
        Stats::add(&stats.slow_consumers, 1);
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host`, or our address on `local` when `host` is unspecified (`0.0.0.0`, `::`).
pub(crate) fn concrete_host(host: &str, local: Option<SocketAddr>) -> String {
    match host {
        "" | "0.0.0.0" | "::" | "[::]" => {
            local.map_or_else(|| "127.0.0.1".to_string(), |a| a.ip().to_string())
        }
        h => h.to_string(),
    }
}

/// The `host`/`port` the other side should dial: `advertise` (`host:port`) when set,
/// else the listen `host` (made concrete for `local`) and `port`.
pub(crate) fn advertised(
    advertise: Option<&str>,
    host: &str,
    port: u16,
    local: Option<SocketAddr>,
) -> (String, u16) {
    if let Some(adv) = advertise
        && let Some((host, port)) = adv.rsplit_once(':')
        && let Ok(port) = port.parse()
    {
        return (host.trim_matches(['[', ']']).to_string(), port);
    }
    (concrete_host(host, local), port)
}

/// A random 22-character id (a made-up cluster name, a loop-detection subject).
pub(crate) fn random_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}
