//! Drop-in fidelity: the server started the way deployment scripts and client test suites
//! start nats-server — real config files with `include` and variables (also from the
//! environment), flags over the file, pid and log files, `-t`, `-v`, bad input, a busy
//! port, `--signal reload` and log reopen — with the same checks run on nats-server where
//! they prove parity.
//!
//! These tests spawn the binaries themselves (the harness's `TestServer` owns the child's
//! environment and output): each child logs to a `-l` file in its own temp directory,
//! which is what the checks read.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

/// How long a server may take to say it is ready, or a command to exit.
const WAIT: Duration = Duration::from_secs(10);

const BOTH: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

fn exe_name(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Rill => "rill-server",
        ServerKind::Nats => "nats-server",
    }
}

/// What a finished command printed.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `kind`'s binary to completion in `dir` (killed after [`WAIT`]).
fn run(kind: ServerKind, dir: &Path, args: &[&str]) -> Output {
    let (out, err) = (dir.join("cmd.stdout"), dir.join("cmd.stderr"));
    let mut child = Command::new(kind.bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", kind.bin().display()));
    let status = wait_exit(&mut child, || {
        format!("{} {args:?} did not exit", exe_name(kind))
    });
    Output {
        code: status.code(),
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

/// Waits up to [`WAIT`] for `child` to exit; kills it and panics with `stuck()` if not.
fn wait_exit(child: &mut Child, stuck: impl Fn() -> String) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}", stuck());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server started with `-l <dir>/server.log`; killed on drop, its log printed on panic.
struct Running {
    kind: ServerKind,
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Running {
    /// Starts `kind` in `dir` with `args` (plus `-l server.log`, `-P`) and `envs`, and
    /// waits for `Server is ready` in the log file.
    fn start(kind: ServerKind, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut all = args.to_vec();
        all.extend(["-l", "server.log"]);
        Running::spawn(kind, dir, &all, envs, "server.log")
    }

    /// Starts `kind` with `args` (plus `-P`) whose config logs to `log` (relative to
    /// `dir`), and waits for `Server is ready` there.
    fn spawn(
        kind: ServerKind,
        dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &str,
    ) -> Running {
        let child = Command::new(kind.bin())
            .args(args)
            .arg("-P")
            .arg(dir.join("server.pid"))
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", kind.bin().display()));
        let running = Running {
            kind,
            child,
            dir: dir.to_path_buf(),
            log: dir.join(log),
        };
        running.wait_log("Server is ready");
        running
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("server.pid")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log file holds `needle`; returns the whole log.
    fn wait_log(&self, needle: &str) -> String {
        wait_file(&self.log, needle)
    }

    /// The client port it bound, from its `Listening for client connections on <host>:<port>`
    /// line: the tests let the server pick it (`-p -1`, `listen: 127.0.0.1:-1`) rather than
    /// choose one that another test's server may take first.
    fn port(&self) -> u16 {
        let log = self.log_text();
        log.lines()
            .find_map(|l| l.split_once("Listening for client connections on "))
            .and_then(|(_, addr)| addr.trim().rsplit(':').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{:?} logged no client port:\n{log}", self.kind))
    }

    /// `<exe> --signal <cmd>=<pid file>`, as scripts do.
    fn signal(&self, command: &str) {
        let spec = format!("{command}={}", self.pid_file().display());
        let out = run(self.kind, &self.dir, &["--signal", &spec]);
        assert_eq!(out.code, Some(0), "--signal {spec}: {out:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {:?} log ---\n{}--- end ---",
                self.kind,
                self.log_text()
            );
        }
    }
}

fn wait_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The INFO JSON the server sends first.
fn info(port: u16) -> Value {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read INFO");
    let json = line.strip_prefix("INFO ").expect("INFO line");
    serde_json::from_str(json.trim()).expect("INFO json")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Log lines without the `[pid] date time ` prefix (the date and time are absent with
/// `-T=false`).
fn messages(log: &str) -> Vec<String> {
    log.lines().map(message).collect()
}

fn message(line: &str) -> String {
    let Some((_pid, rest)) = line.split_once("] ") else {
        return line.to_string();
    };
    if rest.starts_with('[') {
        return rest.to_string();
    }
    let mut parts = rest.splitn(3, ' ');
    let (_date, _time) = (parts.next(), parts.next());
    parts.next().unwrap_or_default().to_string()
}

#[test]
fn config_with_include_and_variables_from_file_and_environment() {
    for kind in BOTH {
        let dir = tempdir();
        write(
            dir.path(),
            "limits.conf",
            "# included\nPAYLOAD = 2048\nmax_payload: $PAYLOAD\n",
        );
        write(
            dir.path(),
            "main.conf",
            "NAME: \"drop-in\"\nhost: 127.0.0.1\nport: $DROPIN_PORT\n\
             include \"limits.conf\"\nserver_name: $NAME\n",
        );
        let server = Running::start(
            kind,
            dir.path(),
            &["-c", "main.conf"],
            &[("DROPIN_PORT", "-1")],
        );
        let port = server.port();
        let info = info(port);
        assert_eq!(info["port"], u64::from(port), "{kind:?}");
        assert_eq!(info["max_payload"], 2048, "{kind:?}");
        assert_eq!(info["server_name"], "drop-in", "{kind:?}");
        let log = server.log_text();
        let listening = format!("Listening for client connections on 127.0.0.1:{port}");
        assert!(log.contains(&listening), "{kind:?}:\n{log}");
        let using = "[INF] Using configuration file: main.conf";
        assert!(log.contains(using), "{kind:?}:\n{log}");
    }
}

#[test]
fn flags_override_the_config_file() {
    for kind in BOTH {
        let dir = tempdir();
        write(
            dir.path(),
            "s.conf",
            "listen: 127.0.0.1:4443\nmax_payload: 4KB\n",
        );
        let server = Running::start(kind, dir.path(), &["-c", "s.conf", "-p", "-1"], &[]);
        let port = server.port();
        assert_ne!(port, 4443, "{kind:?}: the flag overrides the file");
        let info = info(port);
        assert_eq!(info["port"], port, "{kind:?}");
        assert_eq!(info["max_payload"], 4096, "{kind:?}");
    }
}

/// The harness's own way: `-a 127.0.0.1 -p <port>` on the command line and a config that
/// says `port: 4443`; a real client works and sees the file's other settings.
#[tokio::test]
async fn harness_port_wins_over_the_file() {
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            config: Some("port: 4443\nmax_payload: 4KB\n".into()),
            ..ServerOpts::default()
        })
        .await;
        let client = server.client().await;
        assert_eq!(client.server_info().port, server.port(), "{kind:?}");
        assert_eq!(client.server_info().max_payload, 4096, "{kind:?}");
        let mut sub = client.subscribe("drop.in").await.expect("subscribe");
        client
            .publish("drop.in", "hi".into())
            .await
            .expect("publish");
        let msg = sub.next().await.expect("message");
        assert_eq!(&msg.payload[..], b"hi");
    }
}

#[test]
fn pid_file_and_log_file() {
    for kind in BOTH {
        let dir = tempdir();
        let server = Running::start(kind, dir.path(), &["-a", "127.0.0.1", "-p", "-1"], &[]);
        let port = server.port();
        let pid = std::fs::read_to_string(server.pid_file()).expect("pid file");
        assert_eq!(pid.trim(), server.child.id().to_string(), "{kind:?}");
        let log = server.log_text();
        let prefix = format!("[{pid}] ");
        let lines = messages(&log);
        let listening = format!("[INF] Listening for client connections on 127.0.0.1:{port}");
        assert!(lines.contains(&listening), "{kind:?}:\n{log}");
        assert!(lines.contains(&"[INF] Server is ready".to_string()));
        assert!(
            log.lines().all(|l| l.starts_with(&prefix)),
            "{kind:?}:\n{log}"
        );
    }
}

#[test]
fn logtime_false_drops_timestamps() {
    for kind in BOTH {
        let dir = tempdir();
        let server = Running::start(
            kind,
            dir.path(),
            &["-a", "127.0.0.1", "-p", "-1", "-T=false"],
            &[],
        );
        let pid = server.child.id();
        let log = server.log_text();
        assert!(
            log.contains(&format!("[{pid}] [INF] Server is ready")),
            "{kind:?}:\n{log}"
        );
    }
}

#[test]
fn check_mode_and_version() {
    let dir = tempdir();
    write(dir.path(), "ok.conf", "listen: 127.0.0.1:4222\n");
    write(dir.path(), "bad.conf", "port: 4222\nunknown_key: 1\n");
    for kind in BOTH {
        let name = exe_name(kind);
        let ok = run(kind, dir.path(), &["-t", "-c", "ok.conf"]);
        assert_eq!(ok.code, Some(0), "{ok:?}");
        let valid = format!("{name}: configuration file ok.conf is valid");
        assert!(ok.stderr.starts_with(&valid), "{ok:?}");
        let bad = run(kind, dir.path(), &["-t", "-c", "bad.conf"]);
        assert_eq!(bad.code, Some(1), "{bad:?}");
        let no_file = run(kind, dir.path(), &["-t"]);
        assert_eq!(no_file.code, Some(1), "{no_file:?}");
        let version = run(kind, dir.path(), &["-v"]);
        assert_eq!(version.code, Some(0));
        let v = version.stdout.trim();
        let number = v.strip_prefix(&format!("{name}: v")).expect("version line");
        assert_eq!(number.split('.').count(), 3, "{v}");
    }
    let ok = run(ServerKind::Rill, dir.path(), &["-t", "-c", "ok.conf"]);
    insta::assert_snapshot!("check_ok", ok.stderr);
}

#[test]
fn bad_config_is_reported_with_its_position() {
    let dir = tempdir();
    write(dir.path(), "unknown.conf", "port: 4222\nunknown_key: 1\n");
    write(
        dir.path(),
        "syntax.conf",
        "port: 4222\nfoo {\n  bar = [1, 2\n",
    );
    write(
        dir.path(),
        "type.conf",
        "port: 4222\nmax_payload: \"abc\"\n",
    );
    // Same text as nats-server, word for word, for the unknown key.
    let mut texts = Vec::new();
    for kind in BOTH {
        let out = run(kind, dir.path(), &["-c", "unknown.conf"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        texts.push(out.stderr.trim().replace(exe_name(kind), "<server>"));
    }
    assert_eq!(texts[0], texts[1]);
    let mut report = Vec::new();
    for file in ["unknown.conf", "syntax.conf", "type.conf", "missing.conf"] {
        let out = run(ServerKind::Rill, dir.path(), &["-c", file]);
        assert_eq!(out.code, Some(1), "{out:?}");
        report.push(out.stderr.trim().to_string());
    }
    insta::assert_snapshot!("bad_config", report.join("\n"));
}

#[test]
fn bad_command_line_fails_clearly() {
    let dir = tempdir();
    let mut report = Vec::new();
    for args in [&["--bogus"][..], &["-p", "abc"], &["extra"]] {
        let out = run(ServerKind::Rill, dir.path(), args);
        assert_ne!(out.code, Some(0), "{out:?}");
        report.push(format!("{args:?} => {}", out.stderr.trim()));
    }
    insta::assert_snapshot!("bad_command_line", report.join("\n"));
}

#[test]
fn busy_port_is_fatal_like_nats_server() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let dir = tempdir();
    let want = format!(
        "[FTL] Error listening on port: 127.0.0.1:{port}, \
         \"listen tcp 127.0.0.1:{port}: bind: address already in use\""
    );
    for kind in BOTH {
        let out = run(kind, dir.path(), &["-a", "127.0.0.1", "-p", &port]);
        assert_eq!(out.code, Some(1), "{kind:?}: {out:?}");
        let lines = messages(&out.stderr);
        assert_eq!(lines.last(), Some(&want), "{kind:?}:\n{}", out.stderr);
    }
}

#[test]
fn busy_monitoring_port_is_fatal_like_nats_server() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let dir = tempdir();
    let want = format!(
        "[FTL] Can't start monitoring: can't listen to the monitor port: \
         listen tcp 127.0.0.1:{port}: bind: address already in use"
    );
    for kind in BOTH {
        let out = run(
            kind,
            dir.path(),
            &["-a", "127.0.0.1", "-p", "-1", "-m", &port],
        );
        assert_eq!(out.code, Some(1), "{kind:?}: {out:?}");
        let lines = messages(&out.stderr);
        assert_eq!(lines.last(), Some(&want), "{kind:?}:\n{}", out.stderr);
    }
}

#[test]
fn missing_tls_files_fail_like_nats_server() {
    let dir = tempdir();
    let conf =
        "listen: 127.0.0.1:4222\ntls {\n  cert_file: \"nope.pem\"\n  key_file: \"nope.key\"\n}\n";
    write(dir.path(), "tls.conf", conf);
    let mut texts = Vec::new();
    for kind in BOTH {
        let out = run(kind, dir.path(), &["-c", "tls.conf"]);
        assert_eq!(out.code, Some(1), "{kind:?}: {out:?}");
        texts.push(out.stderr.trim().replace(exe_name(kind), "<server>"));
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(
        texts[0],
        "<server>: tls.conf:2:1: error parsing X509 certificate/key pair: \
         open nope.pem: no such file or directory"
    );
}

#[test]
fn unwritable_pid_file_is_fatal_like_nats_server() {
    let dir = tempdir();
    let want =
        "[FTL] Could not write pidfile: open /nonexistent/rill/s.pid: no such file or directory";
    for kind in BOTH {
        let args = [
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-P",
            "/nonexistent/rill/s.pid",
        ];
        let out = run(kind, dir.path(), &args);
        assert_eq!(out.code, Some(1), "{kind:?}: {out:?}");
        let lines = messages(&out.stderr);
        assert_eq!(lines.last().map(String::as_str), Some(want), "{out:?}");
    }
}

#[test]
fn store_dir_that_is_a_file_is_fatal() {
    let dir = tempdir();
    write(dir.path(), "afile", "not a directory");
    for kind in BOTH {
        for store in ["afile", "afile/sub"] {
            let args = ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", store];
            let out = run(kind, dir.path(), &args);
            assert_eq!(out.code, Some(1), "{kind:?}: {out:?}");
            let lines = messages(&out.stderr);
            let want = "[FTL] Can't start JetStream: storage directory is not a directory";
            assert_eq!(lines.last().map(String::as_str), Some(want), "{out:?}");
        }
    }
}

#[test]
fn signal_reload_turns_on_debug_logging() {
    for kind in BOTH {
        let dir = tempdir();
        write(dir.path(), "s.conf", "listen: 127.0.0.1:-1\ndebug: false\n");
        let server = Running::start(kind, dir.path(), &["-c", "s.conf"], &[]);
        let port = server.port();
        drop(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
        let conf = format!("listen: 127.0.0.1:{port}\ndebug: true\n");
        write(dir.path(), "s.conf", &conf);
        server.signal("reload");
        server.wait_log("Reloaded server configuration");
        let log = server.log_text();
        assert!(
            !log.contains("[DBG]"),
            "{kind:?}: debug before reload:\n{log}"
        );
        assert!(log.contains("[INF] Reloaded: debug = true"), "{log}");
        drop(TcpStream::connect(("127.0.0.1", port)).expect("connect"));
        server.wait_log("Client connection created");
        let log = server.log_text();
        let dbg = log
            .lines()
            .find(|l| l.contains("Client connection created"));
        assert!(dbg.is_some_and(|l| l.contains("[DBG]")), "{log}");
    }
}

#[test]
fn reload_moves_the_log_file() {
    for kind in BOTH {
        let dir = tempdir();
        write(
            dir.path(),
            "s.conf",
            "listen: 127.0.0.1:-1\nlog_file: first.log\n",
        );
        let server = Running::spawn(kind, dir.path(), &["-c", "s.conf"], &[], "first.log");
        let conf = format!(
            "listen: 127.0.0.1:{}\nlog_file: second.log\n",
            server.port()
        );
        write(dir.path(), "s.conf", &conf);
        server.signal("reload");
        let second = wait_file(
            &dir.path().join("second.log"),
            "Reloaded server configuration",
        );
        assert!(!second.contains("Server is ready"), "{kind:?}: {second}");
        let first = server.wait_log("Reloaded: log_file = second.log");
        assert!(first.contains("Server is ready"), "{kind:?}: {first}");
    }
}

#[test]
fn reload_with_a_broken_file_keeps_the_server_running() {
    for kind in BOTH {
        let dir = tempdir();
        write(
            dir.path(),
            "s.conf",
            "listen: 127.0.0.1:-1\nmax_payload: 2000\n",
        );
        let server = Running::start(kind, dir.path(), &["-c", "s.conf"], &[]);
        let conf = format!("listen: 127.0.0.1:{}\nmax_payload: 2000\n", server.port());
        write(dir.path(), "s.conf", &format!("{conf}foo {{\n"));
        server.signal("reload");
        server.wait_log("[ERR] Failed to reload server configuration: ");
        assert_eq!(info(server.port())["max_payload"], 2000, "{kind:?}");
    }
}

#[test]
fn reload_without_a_config_file_is_refused() {
    for kind in BOTH {
        let dir = tempdir();
        let server = Running::start(kind, dir.path(), &["-a", "127.0.0.1", "-p", "-1"], &[]);
        server.signal("reload");
        server.wait_log(
            "[ERR] Failed to reload server configuration: \
             can only reload config when a file is provided using -c or --config",
        );
    }
}

#[test]
fn reload_keeps_fixed_settings_and_applies_the_rest() {
    let dir = tempdir();
    write(dir.path(), "s.conf", "listen: 127.0.0.1:-1\n");
    let server = Running::start(ServerKind::Rill, dir.path(), &["-c", "s.conf"], &[]);
    let port = server.port();
    // A port the reload asks for and must not move to (never bound by anyone here).
    let other = port.checked_add(1).unwrap_or(port - 1);
    let conf = format!("listen: 127.0.0.1:{other}\nlogtime: false\nmax_payload: 2000\n");
    write(dir.path(), "s.conf", &conf);
    server.signal("reload");
    let log = server.wait_log("Reloaded server configuration");
    let lines = messages(&log);
    let start = lines
        .iter()
        .position(|l| l.contains("Trapped \"hangup\" signal"))
        .expect("hangup trapped");
    let mut tail = lines[start..].join("\n");
    tail = tail.replace(&port.to_string(), "<port>");
    tail = tail.replace(&other.to_string(), "<new port>");
    insta::assert_snapshot!("reload_lines", tail);
    let info = info(port);
    assert_eq!(info["max_payload"], 2000);
    assert_eq!(info["port"], port, "the listener stays where it was");
}

#[test]
fn sigusr1_reopens_the_log_file() {
    for kind in BOTH {
        let dir = tempdir();
        let server = Running::start(kind, dir.path(), &["-a", "127.0.0.1", "-p", "-1"], &[]);
        let rotated = dir.path().join("server.log.1");
        std::fs::rename(&server.log, &rotated).expect("rotate");
        server.signal("reopen");
        let fresh = server.wait_log("File log re-opened");
        assert!(!fresh.contains("Server is ready"), "{kind:?}: {fresh}");
        let old = wait_file(&rotated, "Trapped \"user defined signal 1\" signal");
        assert!(old.contains("Server is ready"), "{kind:?}: {old}");
    }
}

#[test]
fn unsupported_feature_warns_and_the_server_runs() {
    let dir = tempdir();
    let conf = "listen: 127.0.0.1:-1\ngateway {\n  port: 7222\n}\ncluster {}\n";
    write(dir.path(), "s.conf", conf);
    let server = Running::start(ServerKind::Rill, dir.path(), &["-c", "s.conf"], &[]);
    let port = server.port();
    let log = server.log_text();
    let warnings: Vec<String> = messages(&log)
        .into_iter()
        .filter(|l| l.starts_with("[WRN]"))
        .collect();
    insta::assert_snapshot!("unsupported_warnings", warnings.join("\n"));
    assert_eq!(info(port)["port"], u64::from(port));
}

/// nats-server listens on IPv4 and IPv6 at once for the default host (`0.0.0.0`; `ss`
/// shows `*:<port>`), so a client whose resolver gives `localhost` as `::1` first reaches it
/// (nats.js `tls - custom ca` connects that way). /connz shows each peer's own address.
#[tokio::test]
async fn the_default_host_takes_ipv4_and_ipv6_clients_as_nats_server() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this host: only the IPv4 half can be checked");
        return;
    }
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            monitoring: true,
            args: vec!["-a".into(), "0.0.0.0".into()],
            ..ServerOpts::default()
        })
        .await;
        let port = server.port();
        let mut clients = Vec::new();
        for host in ["127.0.0.1", "[::1]"] {
            let client = async_nats::connect(format!("nats://{host}:{port}"))
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: connect to {host}: {e}"));
            client.flush().await.expect("flush");
            clients.push(client);
        }
        let connz = rill_tests::cluster::http_get(server.monitoring_port(), "/connz")
            .await
            .expect("/connz");
        let connz: Value = serde_json::from_str(&connz).expect("json");
        let mut ips: Vec<&str> = connz["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .filter_map(|c| c["ip"].as_str())
            .collect();
        ips.sort_unstable();
        assert_eq!(ips, ["127.0.0.1", "::1"], "{kind:?}");
    }
}

/// SIGUSR2 sent the moment the server says `Server is ready` (nats.py's launcher sends it
/// as soon as it has connected, in its lame-duck tests) puts the server in lame-duck mode;
/// rill trapped its signals only after writing the ports file, so such a signal met the
/// default action and ended the process (status: signal 12).
#[test]
fn sigusr2_right_after_ready_means_lame_duck_as_nats_server() {
    for kind in BOTH {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let conf = dir.path().join("ldm.conf");
            std::fs::write(
                &conf,
                "lame_duck_grace_period: \"100ms\"\nlame_duck_duration: \"30s\"\n",
            )
            .expect("config");
            let mut child = Command::new(kind.bin())
                .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
                .arg(&conf)
                .arg("--ports_file_dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", kind.bin().display()));
            let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
            let mut log = Vec::new();
            for line in lines.by_ref() {
                let line = line.expect("log line");
                let ready = line.contains("Server is ready");
                log.push(line);
                if ready {
                    break;
                }
            }
            let sent = Command::new("kill")
                .args(["-USR2", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
            let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
            let status = wait_exit(&mut child, || {
                format!("{} still running after SIGUSR2", exe_name(kind))
            });
            log.extend(rest.join().expect("log reader"));
            let log = log.join("\n");
            assert!(
                status.success(),
                "{}: {status:?} after SIGUSR2\n{log}",
                exe_name(kind)
            );
            assert!(log.contains("Entering lame duck mode"), "{log}");
        }
    }
}
