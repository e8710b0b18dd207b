//! Several servers in one cluster on loopback (rill, nats-server, or a mix), for tests and
//! benchmarks of routes and of JetStream clustering.
//!
//! Each server picks its own client, monitoring and cluster ports (`-1`) and the harness reads
//! them back from the server's ports file (`--ports_file_dir`), so nothing is guessed. A
//! restarted node gets the ports it had, so peers and clients find it again. Every child is
//! killed when its [`Node`] is dropped, and its captured logs are printed if the test panics.
//!
//! For JetStream clusters, [`Cluster::jetstream`] starts the servers as both kinds need them,
//! [`api`] asks a `$JS.API` question through elections and [`create_replicated`] creates a
//! replicated stream once every server has heard of the others.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Ports, ServerKind, capture};

/// How long a node may take to write its ports file.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a cluster may take to form a full mesh.
pub const MESH_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a JetStream group may take to form, elect a leader or settle.
pub const ELECTION: Duration = Duration::from_secs(20);

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Which binary.
    pub kind: ServerKind,
    /// Server name (`-n`).
    pub name: String,
    /// Cluster name.
    pub cluster: String,
    /// Seed routes (`--routes`), e.g. another node's [`Node::route_url`].
    pub routes: Vec<String>,
    /// Pass `-js` with a store directory of its own.
    pub jetstream: bool,
    /// Extra arguments after the harness's own.
    pub args: Vec<String>,
    /// Config file text, passed with `-c`.
    pub config: Option<String>,
}

impl NodeSpec {
    /// A node of `kind` called `name` in cluster `C1`, without seeds.
    pub fn new(kind: ServerKind, name: &str) -> NodeSpec {
        NodeSpec {
            kind,
            name: name.to_string(),
            cluster: "C1".to_string(),
            routes: Vec::new(),
            jetstream: false,
            args: Vec::new(),
            config: None,
        }
    }

    /// The same node with seed routes.
    pub fn routes(mut self, routes: impl IntoIterator<Item = String>) -> NodeSpec {
        self.routes.extend(routes);
        self
    }
}

/// One server process of a cluster.
#[derive(Debug)]
pub struct Node {
    spec: NodeSpec,
    dir: tempfile::TempDir,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<u8>>>,
    ports: Ports,
}

impl Node {
    /// Starts a node and waits for its ports file.
    pub async fn start(spec: NodeSpec) -> Node {
        let dir = tempfile::tempdir().expect("node temp dir");
        let mut node = Node {
            spec,
            dir,
            child: None,
            logs: Arc::new(Mutex::new(Vec::new())),
            ports: Ports::default(),
        };
        node.spawn(None).await;
        node
    }

    /// Its ports.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Its HTTP monitoring port.
    pub fn monitor_port(&self) -> u16 {
        self.ports.monitoring.unwrap_or_default()
    }

    /// Its cluster (route) port.
    pub fn cluster_port(&self) -> u16 {
        self.ports.cluster.unwrap_or_default()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its kind.
    pub fn kind(&self) -> ServerKind {
        self.spec.kind
    }

    /// `nats://127.0.0.1:<client port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    /// `nats://127.0.0.1:<cluster port>`, for other nodes' `--routes`.
    pub fn route_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.cluster_port())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its store and config directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An async-nats client connected to it.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.unwrap_or_else(|e| {
            panic!(
                "connect to {} ({}): {e}\n{}",
                self.name(),
                self.url(),
                self.logs()
            )
        })
    }

    /// `GET <path>` on its monitoring port, as JSON.
    pub async fn monitor(&self, path: &str) -> Value {
        let body = http_get(self.monitor_port(), path)
            .await
            .unwrap_or_else(|| panic!("GET {path} on {}\n{}", self.name(), self.logs()));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
    }

    /// The number of distinct servers it has a route to, from `/routez`; 0 when it does not
    /// answer.
    pub async fn peers(&self) -> usize {
        let Some(body) = http_get(self.monitor_port(), "/routez").await else {
            return 0;
        };
        let routez: Value = serde_json::from_str(&body).unwrap_or_default();
        let mut ids: Vec<&str> = routez["routes"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["remote_id"].as_str()).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The subjects each route of this node carries interest in, by peer name
    /// (`/routez?subs=1`).
    pub async fn route_interest(&self) -> Vec<(String, Vec<String>)> {
        let Some(body) = http_get(self.monitor_port(), "/routez?subs=1").await else {
            return Vec::new();
        };
        let routez: Value = serde_json::from_str(&body).unwrap_or_default();
        let routes = routez["routes"].as_array().cloned().unwrap_or_default();
        routes
            .iter()
            .map(|r| {
                let name = r["remote_name"].as_str().unwrap_or_default().to_string();
                let subs = r["subscriptions_list"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                (name, subs)
            })
            .collect()
    }

    /// Waits until this node's route to `peer` carries interest in `subject` (the peer
    /// announced a subscription), so a message published here reaches it.
    pub async fn wait_interest(&self, peer: &str, subject: &str) {
        let has = |routes: &[(String, Vec<String>)]| {
            routes
                .iter()
                .any(|(name, subs)| name == peer && subs.iter().any(|s| s == subject))
        };
        self.wait_routes(&format!("interest of {peer} in {subject}"), has)
            .await;
    }

    /// Waits until no route of this node carries interest in `subject`.
    pub async fn wait_no_interest(&self, subject: &str) {
        let none = |routes: &[(String, Vec<String>)]| {
            routes
                .iter()
                .all(|(_, subs)| subs.iter().all(|s| s != subject))
        };
        self.wait_routes(&format!("no interest in {subject}"), none)
            .await;
    }

    async fn wait_routes(&self, what: &str, done: impl Fn(&[(String, Vec<String>)]) -> bool) {
        let deadline = Instant::now() + MESH_TIMEOUT;
        loop {
            let routes = self.route_interest().await;
            if done(&routes) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: no {what} within {MESH_TIMEOUT:?}: {routes:?}\n{}",
                    self.name(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().expect("log lock")).into_owned()
    }

    /// SIGKILL: gone without a word to its peers or clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `"-USR2"` for lame duck) to the running process.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }

    /// True once the process has exited by itself.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Starts it again (after [`Node::kill`]) on the ports it had and the same store.
    pub async fn restart(&mut self) {
        self.kill();
        self.append_log("--- rill-tests: restarting node ---\n");
        let ports = self.ports.clone();
        self.spawn(Some(ports)).await;
    }

    fn append_log(&self, text: &str) {
        self.logs
            .lock()
            .expect("log lock")
            .extend_from_slice(text.as_bytes());
    }

    fn args(&self, ports: Option<Ports>) -> Vec<String> {
        let port = |p: Option<u16>| p.map_or("-1".to_string(), |p| p.to_string());
        let mut args = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port(ports.as_ref().map(|p| p.client)),
            "-m".into(),
            port(ports.as_ref().and_then(|p| p.monitoring)),
            "-n".into(),
            self.spec.name.clone(),
            "--cluster_name".into(),
            self.spec.cluster.clone(),
            "--cluster".into(),
            format!(
                "nats://127.0.0.1:{}",
                port(ports.as_ref().and_then(|p| p.cluster))
            ),
            "--ports_file_dir".into(),
            self.ports_dir().display().to_string(),
        ];
        if !self.spec.routes.is_empty() {
            args.extend(["--routes".into(), self.spec.routes.join(",")]);
        }
        if self.spec.jetstream {
            let store = self.dir.path().join("store");
            args.extend(["-js".into(), "-sd".into(), store.display().to_string()]);
        }
        if let Some(config) = &self.spec.config {
            let path = self.dir.path().join("node.conf");
            std::fs::write(&path, config).expect("write node config");
            args.extend(["-c".into(), path.display().to_string()]);
        }
        args.extend(self.spec.args.iter().cloned());
        args
    }

    fn ports_dir(&self) -> PathBuf {
        self.dir.path().join("ports")
    }

    async fn spawn(&mut self, ports: Option<Ports>) {
        let ports_dir = self.ports_dir();
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("ports dir");
        let bin = self.spec.kind.bin();
        let mut child = Command::new(&bin)
            .args(self.args(ports))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        if let Some(out) = child.stdout.take() {
            capture(out, Arc::clone(&self.logs));
        }
        if let Some(err) = child.stderr.take() {
            capture(err, Arc::clone(&self.logs));
        }
        self.child = Some(child);
        self.ports = self.read_ports().await;
    }

    /// Waits for the ports file of the running child and reads it.
    async fn read_ports(&mut self) -> Ports {
        let deadline = Instant::now() + START_TIMEOUT;
        let pid = self.pid().unwrap_or_default();
        loop {
            if self.exited() {
                panic!("{} exited at start\n{}", self.name(), self.logs());
            }
            if let Some(ports) = Ports::read_file(&self.ports_dir(), pid)
                .filter(|p| p.monitoring.is_some() && p.cluster.is_some())
            {
                return ports;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} wrote no ports file in {START_TIMEOUT:?}\n{}",
                    self.name(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {:?} node {} logs ---\n{}--- end of {} logs ---",
                self.spec.kind,
                self.spec.name,
                self.logs(),
                self.spec.name
            );
        }
    }
}

/// A minimal HTTP/1.1 GET: the body of a 200 answer.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        let chunked = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
        Some(if chunked {
            dechunk(body)?
        } else {
            body.to_string()
        })
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()?
}

/// The body of a chunked HTTP answer (nats-server chunks larger monitoring pages, such
/// as `/routez` with pooled routes).
fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// A set of nodes started as one cluster: the first is the seed every other node routes to,
/// and gossip completes the mesh.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts one node of each `kind` (named `n1`, `n2`, …) and waits for the full mesh.
    pub async fn start(kinds: &[ServerKind]) -> Cluster {
        Cluster::start_with(kinds, |spec| spec).await
    }

    /// As [`Cluster::start`], with each node's spec adjusted by `adjust` first.
    pub async fn start_with(
        kinds: &[ServerKind],
        adjust: impl Fn(NodeSpec) -> NodeSpec,
    ) -> Cluster {
        let mut nodes: Vec<Node> = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let mut spec = adjust(NodeSpec::new(*kind, &format!("n{}", i + 1)));
            if let Some(seed) = nodes.first() {
                spec.routes.push(seed.route_url());
            }
            nodes.push(Node::start(spec).await);
        }
        let cluster = Cluster { nodes };
        cluster.wait_mesh().await;
        cluster
    }

    /// `n` JetStream servers of `kind` (`n1`, `n2`, …). nats-server wants a configured route
    /// on every member of a JetStream cluster: the seed gets one that leads nowhere.
    pub async fn jetstream(kind: ServerKind, n: usize) -> Cluster {
        Cluster::jetstream_with(kind, n, |spec| spec).await
    }

    /// As [`Cluster::jetstream`], with each node's spec adjusted by `adjust` first.
    pub async fn jetstream_with(
        kind: ServerKind,
        n: usize,
        adjust: impl Fn(NodeSpec) -> NodeSpec,
    ) -> Cluster {
        Cluster::start_with(&vec![kind; n], |mut spec| {
            spec.jetstream = true;
            if spec.name == "n1" {
                spec.routes.push("nats://127.0.0.1:1".to_string());
            }
            adjust(spec)
        })
        .await
    }

    /// Waits until every running node has a route to every other running node.
    pub async fn wait_mesh(&self) {
        let running = self.nodes.iter().filter(|n| n.pid().is_some()).count();
        self.wait_peers(running.saturating_sub(1)).await;
    }

    /// Waits until every running node (not killed) has routes to exactly `n` other servers.
    pub async fn wait_peers(&self, n: usize) {
        let deadline = Instant::now() + MESH_TIMEOUT;
        loop {
            let mut done = true;
            for node in self.nodes.iter().filter(|n| n.pid().is_some()) {
                done &= node.peers().await == n;
            }
            if done {
                return;
            }
            if Instant::now() > deadline {
                let mut report = String::new();
                for node in &self.nodes {
                    let peers = node.peers().await;
                    report.push_str(&format!("{}: {peers} peers\n", node.name()));
                }
                panic!("no mesh of {n} peers each within {MESH_TIMEOUT:?}:\n{report}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Node `i` (0-based).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Every node's client URL, for clients that fail over between them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }
}

/// A `$JS.API` request's JSON answer, asked again while the cluster settles (no answer
/// within 5 s, or 503 while a leader is elected), for at most [`ELECTION`]. Only for
/// requests that may be repeated: see [`api_once`].
pub async fn api(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let deadline = Instant::now() + ELECTION;
    loop {
        let req = client.request(subject.to_string(), body.to_string().into());
        if let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_secs(5), req).await {
            let v: Value = serde_json::from_slice(&msg.payload).expect("JSON reply");
            if v["error"]["code"] != 503 {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "no answer to {subject}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `$JS.API` request sent once, its JSON answer awaited for up to [`ELECTION`]: for
/// requests whose repetition answers differently (a delete, a purge), once the stream has
/// a leader. A loaded machine may answer one later than [`api`]'s 5 s, and asking again
/// then would see the first request's effect.
pub async fn api_once(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let req = client.request(subject.to_string(), body.to_string().into());
    match tokio::time::timeout(ELECTION, req).await {
        Ok(Ok(msg)) => serde_json::from_slice(&msg.payload).expect("JSON reply"),
        Ok(Err(e)) => panic!("{subject}: {e}"),
        Err(_) => panic!("{subject}: no answer within {ELECTION:?}"),
    }
}

/// Creates the stream `name` from the config `body` (replicated: `num_replicas` > 1) and
/// returns the create's answer. Asked again while the servers have not all heard of each
/// other yet: both kinds answer `no suitable peers for placement` (10005) then. Any other
/// error fails the test.
pub async fn create_replicated(client: &async_nats::Client, name: &str, body: &str) -> Value {
    let deadline = Instant::now() + ELECTION;
    loop {
        let created = api(client, &format!("$JS.API.STREAM.CREATE.{name}"), body).await;
        if created["error"].is_null() {
            return created;
        }
        let settling = created["error"]["err_code"] == 10005 && Instant::now() < deadline;
        assert!(settling, "create {name}: {created}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
