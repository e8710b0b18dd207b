//! `rill bench mqtt`: MQTT throughput against any MQTT server — one publisher and one subscriber on
//! one topic at QoS 0 or 1, both through `rumqttc` (the rumqtt project's client; the server already
//! uses its packet code) — and the parts `rill bench compare`'s MQTT scenarios add: an idle MQTT
//! connection for the memory-per-connection row, and the wait for a listener to accept.
//!
//! The report has two phases: `pub` (messages the publisher handed to its connection, flow
//! controlled by the client's bounded request queue and, at QoS 1, by its in-flight window) and
//! `sub` (messages the subscriber received, timed from the first publish to the last arrival).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::report::{Phase, Report};
use super::run::{Common, payload};

/// Requests the publisher's client may queue before `publish` waits.
const CLIENT_QUEUE: usize = 1024;
/// The largest packet either client accepts or sends.
const MAX_PACKET: usize = 1 << 20;
/// How long a connection or subscription may take to be acknowledged.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `rill bench mqtt`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct MqttArgs {
    /// The server's MQTT listener
    #[arg(long, default_value = "127.0.0.1:1883", value_name = "HOST:PORT")]
    pub(crate) mqtt: String,
    /// Topic to publish and subscribe on
    #[arg(long, default_value = "rill/bench")]
    pub(crate) topic: String,
    /// QoS of the publishes and the subscription: 0 (at most once) or 1 (at least once)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub(crate) qos: u8,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// Runs one publisher and one subscriber and reports both sides.
pub(crate) async fn run(args: &MqttArgs) -> anyhow::Result<Report> {
    let (host, port) = parse_addr(&args.mqtt)?;
    let qos = if args.qos == 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let c = &args.common;
    let bound = c.bound();
    let tag: u32 = rand::random();
    let (sub, mut sub_loop) = client(&host, port, &format!("rill-bench-sub-{tag:08x}"));
    sub.subscribe(args.topic.as_str(), qos).await?;
    wait_for(&mut sub_loop, |p| matches!(p, Packet::SubAck(_)), "SUBACK").await?;
    let receiver = tokio::spawn(receive(sub_loop, c.msgs, bound.deadline()));
    let (publisher, mut pub_loop) = client(&host, port, &format!("rill-bench-pub-{tag:08x}"));
    wait_for(
        &mut pub_loop,
        |p| matches!(p, Packet::ConnAck(_)),
        "CONNACK",
    )
    .await?;
    let driver = tokio::spawn(async move {
        loop {
            if let Err(e) = pub_loop.poll().await {
                return e;
            }
        }
    });
    let body = payload(c.size);
    let start = Instant::now();
    let mut sent = 0;
    while sent < c.msgs && !bound.expired() {
        if driver.is_finished() {
            break;
        }
        publisher
            .publish_bytes(args.topic.as_str(), qos, false, body.clone())
            .await
            .context("publish")?;
        sent += 1;
    }
    let pub_elapsed = start.elapsed();
    let received = receiver.await.context("subscriber task")?;
    let publisher_error = driver.is_finished();
    driver.abort();
    if let Ok(e) = driver.await
        && publisher_error
    {
        bail!("publisher connection failed: {e}");
    }
    let (received, last) = received?;
    let sub_elapsed = last.map_or(Duration::ZERO, |l| l.duration_since(start));
    Ok(Report {
        bench: "mqtt".into(),
        url: format!("mqtt://{host}:{port}"),
        params: json!({"topic": args.topic, "qos": args.qos, "msgs": c.msgs, "size": c.size}),
        phases: vec![
            Phase::new("pub", sent, c.msgs, c.size, pub_elapsed),
            Phase::new("sub", received, sent, c.size, sub_elapsed),
        ],
    })
}

/// A clean-session MQTT 3.1.1 client and its event loop (nothing is sent until it is polled).
fn client(host: &str, port: u16, id: &str) -> (AsyncClient, EventLoop) {
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    AsyncClient::new(opts, CLIENT_QUEUE)
}

/// Polls `events` until a packet `want` matches, within [`SETUP_TIMEOUT`].
async fn wait_for(
    events: &mut EventLoop,
    want: impl Fn(&Packet) -> bool,
    what: &str,
) -> anyhow::Result<()> {
    let wait = async {
        loop {
            if let Event::Incoming(p) = events.poll().await?
                && want(&p)
            {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, wait)
        .await
        .with_context(|| format!("no {what} within {SETUP_TIMEOUT:?}"))?
        .with_context(|| format!("waiting for {what}"))
}

/// Counts the subscriber's messages until `expected` arrived or `deadline` passed; returns the count
/// and when the last one arrived.
async fn receive(
    mut events: EventLoop,
    expected: u64,
    deadline: tokio::time::Instant,
) -> anyhow::Result<(u64, Option<Instant>)> {
    let mut n = 0;
    let mut last = None;
    while n < expected {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => break,
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                n += 1;
                last = Some(Instant::now());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e).context("subscriber connection"),
        }
    }
    Ok((n, last))
}

/// `host:port`.
fn parse_addr(addr: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("{addr:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("bad port in {addr:?}"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// An idle MQTT 3.1.1 connection to `127.0.0.1:port`: CONNECT sent (keep-alive 10 minutes, so the
/// server does not drop it while it is measured), CONNACK received and accepted, then nothing.
pub(crate) async fn idle_connection(port: u16, id: String) -> anyhow::Result<TcpStream> {
    let handshake = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut connect = v4::Connect::new(id);
        connect.keep_alive = 600;
        let mut buf = BytesMut::new();
        connect.write(&mut buf)?;
        stream.write_all(&buf).await?;
        let mut read = BytesMut::new();
        loop {
            match v4::Packet::read(&mut read, MAX_PACKET) {
                Ok(v4::Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {
                    return Ok(stream);
                }
                Ok(other) => bail!("server refused an idle MQTT connection: {other:?}"),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => bail!("bad CONNACK: {e}"),
            }
            if stream.read_buf(&mut read).await? == 0 {
                bail!("server closed an idle MQTT connection during its handshake");
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, handshake)
        .await
        .context("idle MQTT connection handshake timed out")?
}

/// Waits until something accepts TCP connections on `127.0.0.1:port` (a server's MQTT listener may
/// open after its client port).
pub(crate) async fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens for MQTT on port {port} after {SETUP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The `mqtt {}` block that `rill bench compare` adds to the servers of its MQTT scenarios, with a
/// JetStream store (MQTT needs JetStream) unless the command already turns JetStream on (nats-server
/// refuses a `store_dir` given both in a file and by `-sd`); `{store}` is substituted like in the
/// server command.
pub(crate) fn server_conf(port: u16, command_has_jetstream: bool) -> String {
    let mqtt = format!("mqtt {{ host: 127.0.0.1, port: {port} }}\n");
    if command_has_jetstream {
        return mqtt;
    }
    format!("jetstream {{ store_dir: \"{{store}}\" }}\n{mqtt}")
}

/// True when a server command line turns JetStream on itself (`-js`, `--jetstream`).
pub(crate) fn enables_jetstream(command: &str) -> bool {
    command
        .split_whitespace()
        .any(|a| matches!(a, "-js" | "--js" | "-jetstream" | "--jetstream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:1883").expect("addr"),
            ("127.0.0.1".into(), 1883)
        );
        assert_eq!(
            parse_addr("[::1]:8883").expect("addr"),
            ("::1".into(), 8883)
        );
        assert!(parse_addr("localhost").is_err());
        assert!(parse_addr("h:x").is_err());
    }

    #[test]
    fn compare_config_has_the_port_and_a_store_unless_the_command_has_one() {
        assert_eq!(
            server_conf(18830, false),
            "jetstream { store_dir: \"{store}\" }\nmqtt { host: 127.0.0.1, port: 18830 }\n"
        );
        assert_eq!(
            server_conf(18830, true),
            "mqtt { host: 127.0.0.1, port: 18830 }\n"
        );
        assert!(enables_jetstream("nats-server -p {port} -js -sd {store}"));
        assert!(enables_jetstream("rill-server --jetstream"));
        assert!(!enables_jetstream("rill-server -a 127.0.0.1 -p {port}"));
    }
}
