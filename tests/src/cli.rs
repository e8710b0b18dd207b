//! Running the built `rill` CLI binary in tests: one-shot commands (`ok`/`fail`), long-running ones
//! (`spawn`, waiting for their "ready" line on stderr), and [`redact`] for snapshot-stable output.
//!
//! Every command runs with the `NATS_*` environment cleared and its own context directory
//! (`RILL_CONFIG_DIR`), so tests neither see the developer's settings nor each other's contexts.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use crate::rill_cli_bin;

/// Environment variables the CLI reads that a test must not inherit.
const CLEARED_ENV: &[&str] = &[
    "NATS_URL",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "NATS_CREDS",
    "NATS_NKEY",
    "NATS_CERT",
    "NATS_KEY",
    "NATS_CA",
    "RILL_CONTEXT",
    "XDG_CONFIG_HOME",
];

/// How long a one-shot command or a spawned command's ready line may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// The result of one CLI run.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// A `rill` runner bound to a server URL (or none) and a private context directory.
#[derive(Debug)]
pub struct Cli {
    url: Option<String>,
    config: tempfile::TempDir,
}

impl Cli {
    /// A runner that passes `-s <url>` before every command.
    pub fn new(url: impl Into<String>) -> Cli {
        Cli {
            url: Some(url.into()),
            config: tempfile::tempdir().expect("create CLI config dir"),
        }
    }

    /// A runner that passes no server (for `--help`, contexts, and connection errors).
    pub fn bare() -> Cli {
        Cli {
            url: None,
            config: tempfile::tempdir().expect("create CLI config dir"),
        }
    }

    /// The directory used as `RILL_CONFIG_DIR`.
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// The command for `args`, with `-s <url>` and a clean environment; stdio is not yet set up.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(rill_cli_bin());
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("RILL_CONFIG_DIR", self.config.path());
        if let Some(url) = &self.url {
            cmd.args(["-s", url]);
        }
        cmd.args(args).kill_on_drop(true);
        cmd
    }

    /// Runs `args` to completion with empty stdin.
    pub async fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with_stdin(args, &[]).await
    }

    /// Runs `args` to completion, feeding `stdin`.
    pub async fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> CliOutput {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rill");
        if let Some(mut input) = child.stdin.take() {
            tokio::io::AsyncWriteExt::write_all(&mut input, stdin)
                .await
                .expect("write rill stdin");
        }
        let out = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("rill {args:?} did not finish within {CLI_TIMEOUT:?}"))
            .expect("wait for rill");
        CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `args`, asserts success and returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "rill {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Runs `args`, asserts failure and returns stderr.
    pub async fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "rill {args:?} unexpectedly succeeded\nstdout:\n{}",
            out.stdout
        );
        out.stderr
    }

    /// Starts a long-running command and waits until a stderr line contains `ready` (e.g.
    /// `"Subscribing on"`), so the caller can publish without racing the subscription.
    pub async fn spawn(&self, args: &[&str], ready: &str) -> Running {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rill");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut seen = String::new();
        let wait = async {
            loop {
                let mut line = String::new();
                if stderr.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return false;
                }
                seen.push_str(&line);
                if line.contains(ready) {
                    return true;
                }
            }
        };
        let found = tokio::time::timeout(CLI_TIMEOUT, wait)
            .await
            .unwrap_or(false);
        assert!(
            found,
            "rill {args:?} never printed {ready:?}; stderr so far:\n{seen}"
        );
        Running { child, stderr }
    }
}

/// A spawned `rill` command.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stderr: BufReader<ChildStderr>,
}

impl Running {
    /// Waits (up to 20 s) for the command to exit on its own and returns its output.
    pub async fn finish(mut self) -> CliOutput {
        let mut stdout = self.child.stdout.take().expect("piped stdout");
        let collect = async {
            let mut out = Vec::new();
            let mut err = String::new();
            let _ = stdout.read_to_end(&mut out).await;
            let _ = self.stderr.read_to_string(&mut err).await;
            let status = self.child.wait().await.expect("wait for rill");
            CliOutput {
                status,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: err,
            }
        };
        tokio::time::timeout(CLI_TIMEOUT, collect)
            .await
            .expect("spawned rill did not exit in time")
    }

    /// Stops the command (SIGKILL).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Makes CLI output snapshot-stable: `:<port>` becomes `:[PORT]`, RFC 3339 times `[TIME]`, and the
/// request round-trip time `[RTT]`.
pub fn redact(text: &str, port: u16) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let len = timestamp_len(rest);
        if len > 0 {
            out.push_str("[TIME]");
            rest = &rest[len..];
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    let out = out.replace(&format!(":{port}"), ":[PORT]");
    out.lines()
        .map(|line| match line.find("rtt ") {
            Some(at) => format!("{}rtt [RTT]", &line[..at]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

/// Length of an RFC 3339 timestamp at the start of `s` (`2026-01-02T03:04:05[.123][Z|+01:00]`), or 0.
fn timestamp_len(s: &str) -> usize {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let b = s.as_bytes();
    if b.len() < SHAPE.len() {
        return 0;
    }
    let fits = SHAPE.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        c => c == got,
    });
    if !fits {
        return 0;
    }
    let mut n = SHAPE.len();
    if b.get(n) == Some(&b'.') {
        n += 1;
        while b.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    match b.get(n) {
        Some(b'Z') => n + 1,
        Some(b'+' | b'-') if b.len() >= n + 6 => n + 6,
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_times_ports_and_rtt() {
        let text =
            "created 2026-11-21T20:56:31.158106236Z on 127.0.0.1:4333\nReceived with rtt 1.2ms\n";
        assert_eq!(
            redact(text, 4333),
            "created [TIME] on 127.0.0.1:[PORT]\nReceived with rtt [RTT]\n"
        );
        assert_eq!(redact("at 2026-01-02T03:04:05+01:00.", 1), "at [TIME].");
    }
}
