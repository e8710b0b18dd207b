//! Binding listeners as nats-server does.
//!
//! A wildcard host (`0.0.0.0`, the default, or `::`) listens on IPv4 and IPv6 at once:
//! one IPv6 socket with `IPV6_V6ONLY` off (nats-server 2.15.1 shows `*:4222` in `ss`
//! for both), so `localhost` reaches the server whichever address the client's resolver
//! tries first. Where the host has no IPv6, the wildcard falls back to IPv4 alone. Other
//! hosts bind the first of their addresses that works.
//!
//! Everything that shows the listen address (log lines, INFO, the ports file) gets it as
//! configured — `0.0.0.0:4222`, not `[::]:4222` — with the port the kernel picked, and
//! a peer that came in over IPv4 is shown as an IPv4 address ([`peer`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Pending connections the kernel queues per listener: std's default of 128 drops SYNs
/// when hundreds of clients connect at once (nats-server, through Go, gets the
/// kernel's `somaxconn`).
const BACKLOG: i32 = 4096;

/// A bound listener and its address as configured.
#[derive(Debug)]
pub struct Bound {
    /// The listener, ready to accept.
    pub listener: TcpListener,
    /// The configured host with the bound port (`0.0.0.0:4222` for the dual-stack
    /// wildcard).
    pub addr: SocketAddr,
}

/// Binds `host:port` (port 0: the kernel picks one).
///
/// # Errors
/// The error of the last address tried (the port is taken, the host is not local), or
/// `InvalidInput` when the host resolves to nothing.
pub async fn listen(host: &str, port: u16) -> io::Result<Bound> {
    if let Some(shown) = wildcard(host) {
        let dual = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        let listener = match socket(dual, false) {
            Ok(l) => l,
            // No IPv6 on this host: the IPv4 wildcard alone.
            Err(_) if shown.is_ipv4() => socket(SocketAddr::new(shown, port), true)?,
            Err(e) => return Err(e),
        };
        let port = listener.local_addr()?.port();
        return Ok(Bound {
            listener,
            addr: SocketAddr::new(shown, port),
        });
    }
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match socket(addr, true) {
            Ok(listener) => {
                let addr = listener.local_addr()?;
                return Ok(Bound { listener, addr });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on")))
}

/// A peer's address as nats-server shows it: an IPv4 client of a dual-stack listener
/// arrives as `::ffff:a.b.c.d` and is shown as `a.b.c.d`.
pub fn peer(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The address to show for a wildcard host, or `None` for a specific one.
fn wildcard(host: &str) -> Option<IpAddr> {
    match host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "::" => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        _ => None,
    }
}

/// A listening socket on `addr`; `v6only` matters only for IPv6 addresses.
fn socket(addr: SocketAddr, v6only: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6only)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_default_host_takes_ipv4_and_ipv6_clients() {
        let bound = listen("0.0.0.0", 0).await.expect("bind");
        assert_eq!(bound.addr.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let port = bound.addr.port();
        for client in ["127.0.0.1", "::1"] {
            let Ok(stream) = tokio::net::TcpStream::connect((client, port)).await else {
                // A host without IPv6 loopback: only IPv4 is required of it.
                assert_eq!(client, "::1", "IPv4 must connect");
                continue;
            };
            let (_, from) = bound.listener.accept().await.expect("accept");
            assert_eq!(peer(from).ip(), stream.local_addr().expect("local").ip());
        }
    }

    #[tokio::test]
    async fn a_specific_host_listens_there_only() {
        let bound = listen("127.0.0.1", 0).await.expect("bind");
        assert_eq!(bound.addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let refused = tokio::net::TcpStream::connect(("::1", bound.addr.port())).await;
        assert!(refused.is_err());
    }

    #[test]
    fn wildcards_are_recognised() {
        assert!(wildcard("0.0.0.0").is_some_and(|ip| ip.is_ipv4()));
        assert!(wildcard("[::]").is_some_and(|ip| ip.is_ipv6()));
        assert!(wildcard("::").is_some());
        assert_eq!(wildcard("127.0.0.1"), None);
        assert_eq!(wildcard("localhost"), None);
    }
}
