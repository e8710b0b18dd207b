//! An edge gateway: a server at the edge (a factory, a vehicle, a shop) stores its
//! readings in a local JetStream stream and is a leaf node of a central hub. A stream on
//! the hub sources the edge's stream through the leaf connection, from the edge's
//! JetStream domain (`$JS.edge.API`). When the uplink drops, the edge goes on storing;
//! when it is back, the hub's copy catches up: every reading arrives once, none lost,
//! none twice.
//!
//! The example starts both servers itself (the binary in `RILL_SERVER`, default
//! `rill-server` on the `PATH`; `HUB_SERVER` / `EDGE_SERVER` pick one per side, such as
//! `nats-server`) and puts a small relay of its own in the uplink, which it cuts for a
//! while as the edge publishes.
//!
//! ```text
//! cargo build -p rill-server
//! RILL_SERVER=target/debug/rill-server cargo run -p rill-examples --example edge_gateway
//! ```
//!
//! The two servers' configuration, as written to their files:
//!
//! ```text
//! # hub                                    # edge
//! jetstream { domain: hub }                jetstream { domain: edge }
//! leafnodes { listen: "127.0.0.1:7422" }   leafnodes { remotes: [ { url: "nats-leaf://hub:7422" } ] }
//! ```
//!
//! and the hub's stream: `sources: [{ name: EDGE, external: { api: "$JS.edge.API" } }]`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream::{self, stream};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Readings published at the edge.
const READINGS: u32 = 300;
/// The uplink is cut after this many readings...
const CUT_AFTER: u32 = 100;
/// ...this many more are published while it is down...
const WHILE_DOWN: u32 = 50;
/// ...and it stays down this much longer.
const DOWN_FOR: Duration = Duration::from_secs(2);
/// How long the hub may take to catch up.
const CATCH_UP: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("edge_gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(dir: &Path) -> anyhow::Result<()> {
    let server = std::env::var("RILL_SERVER").unwrap_or_else(|_| "rill-server".into());
    let hub_bin = std::env::var("HUB_SERVER").unwrap_or_else(|_| server.clone());
    let edge_bin = std::env::var("EDGE_SERVER").unwrap_or(server);

    // The hub, the uplink relay in front of its leaf port, and the edge dialling the relay.
    // Each server picks its own ports (`-1`); they are read back from its log.
    let hub_conf = format!(
        "server_name: hub\nlisten: \"127.0.0.1:-1\"\n\
         jetstream {{ store_dir: {:?}, domain: hub }}\n\
         leafnodes {{ listen: \"127.0.0.1:-1\" }}\n",
        dir.join("hub")
    );
    let hub_server = Server::start(&hub_bin, &dir.join("hub.conf"), &hub_conf)?;
    let (hub_port, leaf_port) = (hub_server.port("client")?, hub_server.port("leafnode")?);
    let uplink = Uplink::start(([127, 0, 0, 1], leaf_port).into()).await?;
    let edge_conf = format!(
        "server_name: edge\nlisten: \"127.0.0.1:-1\"\n\
         jetstream {{ store_dir: {:?}, domain: edge }}\n\
         leafnodes {{ reconnect: \"200ms\", remotes: [ {{ url: \"nats-leaf://{}\" }} ] }}\n",
        dir.join("edge"),
        uplink.addr
    );
    let edge_server = Server::start(&edge_bin, &dir.join("edge.conf"), &edge_conf)?;
    let edge_port = edge_server.port("client")?;

    let hub = connect(hub_port).await?;
    let edge = connect(edge_port).await?;
    let hub_js = jetstream::new(hub.clone());
    let edge_js = jetstream::new(edge);
    // The hub reaches the edge's JetStream by its domain once the leaf link is up.
    let edge_from_hub = jetstream::with_domain(hub, "edge");
    wait_for("the leaf link", || async {
        edge_from_hub.query_account().await.is_ok()
    })
    .await?;

    edge_js
        .create_stream(stream::Config {
            name: "EDGE".into(),
            subjects: vec!["telemetry.>".into()],
            ..Default::default()
        })
        .await
        .context("create the edge stream")?;
    hub_js
        .create_stream(stream::Config {
            name: "CENTRAL".into(),
            sources: Some(vec![stream::Source {
                name: "EDGE".into(),
                external: Some(stream::External {
                    api_prefix: "$JS.edge.API".into(),
                    delivery_prefix: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .context("create the hub stream sourcing the edge")?;

    // Readings at the edge, each stored (acked) by the edge's own stream; the uplink
    // goes down for a while in the middle.
    for n in 0..READINGS {
        if n == CUT_AFTER {
            uplink.cut();
            println!("uplink cut after reading {n}");
        }
        if n == CUT_AFTER + WHILE_DOWN {
            tokio::time::sleep(DOWN_FOR).await;
            uplink.restore();
            println!("uplink restored");
        }
        let machine = n % 4;
        let reading = format!(
            "{{\"n\":{n},\"machine\":{machine},\"temp\":{}}}",
            20 + n % 9
        );
        edge_js
            .publish(format!("telemetry.machine{machine}"), reading.into())
            .await?
            .await
            .context("stored at the edge")?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let central = hub_js.get_stream("CENTRAL").await?;
    wait_for("the hub to catch up", || async {
        central
            .get_info()
            .await
            .is_ok_and(|i| i.state.messages >= u64::from(READINGS))
    })
    .await?;
    let count = count_readings(&central).await?;
    let missing = (0..READINGS).filter(|n| !count.contains_key(n)).count();
    let twice = count.values().filter(|&&c| c > 1).count();
    println!(
        "{READINGS} readings published at the edge, {} arrived at the hub: \
         {missing} lost, {twice} twice",
        count.values().sum::<u32>()
    );
    ensure!(missing == 0 && twice == 0, "the hub's copy is not exact");
    println!("every reading arrived once");
    Ok(())
}

/// How many times each reading number is in `central`.
async fn count_readings(central: &stream::Stream) -> anyhow::Result<BTreeMap<u32, u32>> {
    let info = central.get_info().await?;
    let mut count = BTreeMap::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let msg = central.get_raw_message(seq).await?;
        let v: serde_json::Value = serde_json::from_slice(&msg.payload)?;
        let n = v["n"].as_u64().context("reading number")?;
        *count.entry(u32::try_from(n)?).or_insert(0) += 1;
    }
    Ok(count)
}

/// A server process, killed when dropped, with the ports it bound.
struct Server {
    child: Child,
    /// `(kind, port)` from its "Listening for <kind> connections on <addr>" log lines.
    listening: Vec<(String, u16)>,
}

impl Server {
    /// Starts `bin` with `conf` and reads its log until it is ready (or has exited). The
    /// rest of the log is drained on a thread so the server never blocks on it.
    fn start(bin: &str, conf_path: &Path, conf: &str) -> anyhow::Result<Server> {
        std::fs::write(conf_path, conf)?;
        let mut child = Command::new(PathBuf::from(bin))
            .arg("-c")
            .arg(conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {bin} (set RILL_SERVER)"))?;
        let mut log = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let mut listening = Vec::new();
        for line in log.by_ref() {
            let line = line?;
            if line.contains("Server is ready") {
                break;
            }
            if let Some((kind, addr)) = line
                .split_once("Listening for ")
                .and_then(|(_, rest)| rest.split_once(" connections on "))
            {
                let port = addr.trim().rsplit(':').next().unwrap_or_default();
                listening.push((kind.to_string(), port.parse()?));
            }
        }
        std::thread::spawn(move || log.for_each(drop));
        Ok(Server { child, listening })
    }

    /// The port this server listens on for `kind` ("client", "leafnode") connections.
    fn port(&self, kind: &str) -> anyhow::Result<u16> {
        self.listening
            .iter()
            .find(|(k, _)| k == kind)
            .map(|&(_, port)| port)
            .with_context(|| format!("the server logged no {kind} listener"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects once the server at `port` accepts clients.
async fn connect(port: u16) -> anyhow::Result<async_nats::Client> {
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        match async_nats::connect(&url).await {
            Ok(client) => return Ok(client),
            Err(e) if tokio::time::Instant::now() > deadline => bail!("connect to {url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Polls `ready` until it holds, for at most [`CATCH_UP`].
async fn wait_for<F, Fut>(what: &str, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while !ready().await {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The uplink: a TCP relay from the edge to the hub's leaf port that can be cut (open
/// connections closed, new ones refused) and restored.
struct Uplink {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Uplink {
    async fn start(hub: SocketAddr) -> anyhow::Result<Uplink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn(relay(listener, hub, Arc::clone(&down), Arc::clone(&conns)));
        Ok(Uplink {
            addr,
            down,
            conns,
            accept,
        })
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for conn in self.conns.lock().expect("uplink").drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn relay(
    listener: TcpListener,
    hub: SocketAddr,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Ok((mut from_edge, _)) = listener.accept().await {
        if down.load(Ordering::SeqCst) {
            continue; // dropped: the edge sees the link fail and retries
        }
        let conn = tokio::spawn(async move {
            if let Ok(mut to_hub) = TcpStream::connect(hub).await {
                let _ = tokio::io::copy_bidirectional(&mut from_edge, &mut to_hub).await;
            }
        });
        conns.lock().expect("uplink").push(conn);
    }
}
