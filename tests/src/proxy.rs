//! A fault-injecting TCP proxy for tests of links between servers (cluster routes, leaf-node
//! links): it forwards a loopback port to a target and, on command, delays bytes, drops them
//! (a silent partition: both ends keep their sockets and hear nothing), cuts every open
//! connection, or refuses new ones. No network namespaces or root needed.
//!
//! Every task is owned by the [`FaultProxy`] and aborted when it is dropped, so a test that
//! fails mid-way leaves nothing running.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the proxy currently does to traffic.
#[derive(Debug, Default)]
struct Faults {
    /// Delay before each forwarded chunk, in microseconds.
    delay_us: AtomicU64,
    /// Discard bytes instead of forwarding them (connections stay open).
    drop: AtomicBool,
    /// Close new connections at once.
    refuse: AtomicBool,
    /// Connections being forwarded now.
    open: AtomicUsize,
}

/// A loopback TCP proxy in front of `target` whose faults tests switch on and off.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    faults: Arc<Faults>,
    /// Bumped by [`FaultProxy::cut`]: every pump watching it closes its connection.
    cuts: watch::Sender<u64>,
    tasks: JoinSet<()>,
}

impl FaultProxy {
    /// Starts a proxy on a port of its own choosing (`127.0.0.1:0`) that forwards to `target`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy port");
        let addr = listener.local_addr().expect("proxy address");
        let faults = Arc::new(Faults::default());
        let (cuts, _) = watch::channel(0);
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(
            listener,
            target,
            Arc::clone(&faults),
            cuts.clone(),
        ));
        FaultProxy {
            addr,
            target,
            faults,
            cuts,
            tasks,
        }
    }

    /// The proxy's own port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `<scheme>://127.0.0.1:<proxy port>`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port())
    }

    /// Where the proxy forwards to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Delays every forwarded chunk by `delay` (both directions; order is kept).
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.faults.delay_us.store(us, Ordering::Relaxed);
    }

    /// Drops (`true`) or forwards (`false`) bytes: a silent partition while on.
    pub fn set_drop(&self, on: bool) {
        self.faults.drop.store(on, Ordering::Relaxed);
    }

    /// Refuses (`true`: accepts and closes at once) or forwards new connections.
    pub fn set_refuse(&self, on: bool) {
        self.faults.refuse.store(on, Ordering::Relaxed);
    }

    /// Closes every connection open now, both sides (new ones are still forwarded).
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Connections being forwarded now.
    pub fn open_connections(&self) -> usize {
        self.faults.open.load(Ordering::Relaxed)
    }

    /// Cuts everything and forwards again: no delay, no drops, no refusals.
    pub fn heal(&self) {
        self.set_delay(Duration::ZERO);
        self.set_drop(false);
        self.set_refuse(false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
        self.cut();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: Arc<Faults>,
    cuts: watch::Sender<u64>,
) {
    // Connections are owned by this set: aborting the accept loop drops them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                if faults.refuse.load(Ordering::Relaxed) {
                    drop(inbound);
                    continue;
                }
                conns.spawn(forward(inbound, target, Arc::clone(&faults), cuts.subscribe()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Forwards one connection until either side closes or the proxy cuts it.
async fn forward(
    inbound: TcpStream,
    target: SocketAddr,
    faults: Arc<Faults>,
    mut cut: watch::Receiver<u64>,
) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    faults.open.fetch_add(1, Ordering::Relaxed);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    cut.mark_unchanged();
    tokio::select! {
        _ = pump(in_read, out_write, &faults) => {}
        _ = pump(out_read, in_write, &faults) => {}
        _ = cut.changed() => {}
    }
    faults.open.fetch_sub(1, Ordering::Relaxed);
}

/// Copies one direction, applying the current faults to each chunk.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, faults: &Faults) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = faults.delay_us.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_micros(delay)).await;
        }
        if faults.drop.load(Ordering::Relaxed) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a port of its own.
    async fn echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        (addr, task)
    }

    async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
        stream.write_all(msg).await.ok()?;
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut got))
            .await
            .ok()?
            .ok()?;
        Some(got)
    }

    #[tokio::test]
    async fn forwards_delays_drops_cuts_and_refuses() {
        let (target, server) = echo().await;
        let proxy = FaultProxy::start(target).await;
        let mut conn = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        assert_eq!(
            round_trip(&mut conn, b"hello").await.as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(proxy.open_connections(), 1);

        proxy.set_delay(Duration::from_millis(20));
        let start = std::time::Instant::now();
        assert!(round_trip(&mut conn, b"slow").await.is_some());
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "delayed both ways"
        );
        proxy.set_delay(Duration::ZERO);

        proxy.set_drop(true);
        assert_eq!(round_trip(&mut conn, b"lost").await, None, "dropped");
        proxy.set_drop(false);

        proxy.cut();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(2), conn.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(_))), "cut closes the connection");

        proxy.set_refuse(true);
        let mut refused = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("the listener still accepts");
        assert_eq!(round_trip(&mut refused, b"x").await, None);
        proxy.heal();
        let mut again = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        assert_eq!(
            round_trip(&mut again, b"back").await.as_deref(),
            Some(&b"back"[..])
        );
        server.abort();
    }
}
