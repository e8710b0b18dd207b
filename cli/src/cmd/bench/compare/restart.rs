//! The restart scenario of `rill bench compare`: what a user waits for when a server with a full
//! stream restarts, and what the stored messages cost in memory afterwards.
//!
//! On a fresh server of each side's command: its resident memory is read (the idle server), a file
//! stream is filled with N messages (async publish, 256 acks in flight; spread over the scenario's
//! subjects in turn), and then
//! 1. the server is killed with SIGKILL (a crash: nothing written since the fill was checkpointed),
//!    started again on the same port and store, and timed from the spawn until `STREAM.INFO`
//!    answers with all N messages ("restart after SIGKILL"); its memory is read once settled;
//! 2. it is stopped with SIGTERM and timed until the process exits ("clean stop");
//! 3. it is started again and timed the same way ("restart after clean stop"), memory read again.
//!
//! A fresh empty server is also stopped with SIGTERM, as the baseline of a clean stop (both include
//! starting the `kill` program, about a millisecond). The server is stopped at the end, so the
//! stream never reaches the shared server of the other scenarios.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::super::js::{self, JsCmd, JsPubArgs, Storage, StreamOpts};
use super::super::report::Report;
use super::super::run::{Common, Target};
use super::server::Server;
use crate::connect::ConnOpts;

/// The stream the scenario fills.
const STREAM: &str = "benchrestart";
/// Time for a server's memory to settle before it is read.
const SETTLE: Duration = Duration::from_millis(500);
/// How often the restarted server is asked whether the stream answers.
const POLL: Duration = Duration::from_millis(1);
/// How long a restart may take before the run fails.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// What one restart run measured (times in ms, memory in KiB).
pub(super) struct Measured {
    /// The fill (phase `pub`).
    pub(super) fill: Report,
    /// Messages stored (acknowledged by the fill).
    pub(super) stored: u64,
    /// Resident memory of the fresh, empty server.
    pub(super) idle_kib: u64,
    /// Spawn until the stream answered, after SIGKILL.
    pub(super) kill_restart_ms: f64,
    /// Resident memory after the crash recovery.
    pub(super) kill_kib: u64,
    /// SIGTERM until exit, with the stream.
    pub(super) stop_ms: f64,
    /// SIGTERM until exit of a fresh empty server.
    pub(super) empty_stop_ms: f64,
    /// Spawn until the stream answered, after the clean stop.
    pub(super) clean_restart_ms: f64,
    /// Resident memory after the clean restart.
    pub(super) clean_kib: u64,
}

/// Runs the scenario with `n` messages of `size` bytes on fresh servers of `template`.
pub(super) async fn run(
    template: &str,
    conn: &ConnOpts,
    (n, size): (u64, usize),
    subjects: u32,
    fill_cap: Duration,
) -> anyhow::Result<Measured> {
    let empty_stop_ms = empty_stop(template).await?;
    let mut server = Server::start(template).await?;
    tokio::time::sleep(SETTLE).await;
    let idle_kib = server.rss_kib(false)?;
    let target = Target::started(&server.url(), conn);
    let fill = fill(&target, (n, size), subjects, fill_cap).await?;
    let stored = fill.phase("pub").map_or(0, |p| p.msgs);
    if stored == 0 {
        bail!("the fill stored no message");
    }
    server.kill();
    let kill_restart_ms = restart(&mut server, &target, stored).await?;
    tokio::time::sleep(SETTLE).await;
    let kill_kib = server.rss_kib(false)?;
    let stop_ms = ms(server
        .stop_timed()
        .context("the server did not stop within 5s")?);
    let clean_restart_ms = restart(&mut server, &target, stored).await?;
    tokio::time::sleep(SETTLE).await;
    let clean_kib = server.rss_kib(false)?;
    server.stop();
    Ok(Measured {
        fill,
        stored,
        idle_kib,
        kill_restart_ms,
        kill_kib,
        stop_ms,
        empty_stop_ms,
        clean_restart_ms,
        clean_kib,
    })
}

/// How long a fresh server with nothing stored takes to stop.
async fn empty_stop(template: &str) -> anyhow::Result<f64> {
    let mut server = Server::start(template).await?;
    tokio::time::sleep(SETTLE).await;
    let took = server
        .stop_timed()
        .context("the empty server did not stop within 5s")?;
    Ok(ms(took))
}

/// Fills the stream with `n` messages over `subjects` subjects and keeps it.
async fn fill(
    target: &Target,
    (n, size): (u64, usize),
    subjects: u32,
    cap: Duration,
) -> anyhow::Result<Report> {
    let args = JsPubArgs {
        stream: StreamOpts {
            stream: STREAM.into(),
            subject: "rill.bench.restart".into(),
            storage: Storage::File,
            replace: false,
            keep: true,
            subjects,
            replicas: 1,
        },
        sync: false,
        window: 256,
        pubs: 1,
        common: Common::quiet(n, size, cap),
    };
    js::run(target, &JsCmd::Pub(args)).await
}

/// Starts the stopped server again and returns the ms from the spawn until the stream answers
/// `STREAM.INFO` with `stored` messages.
async fn restart(server: &mut Server, target: &Target, stored: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    server.respawn()?;
    let deadline = started + RESTART_TIMEOUT;
    loop {
        if let Some(why) = server.exited() {
            bail!("the restarted server exited: {why}");
        }
        if let Ok(client) = target.connect().await
            && answers(&client, stored, deadline).await?
        {
            return Ok(ms(started.elapsed()));
        }
        if Instant::now() > deadline {
            bail!("the stream did not answer within {RESTART_TIMEOUT:?} of the restart");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Asks `STREAM.INFO` until it shows `stored` messages (`true`), or the connection fails (`false`).
async fn answers(
    client: &async_nats::Client,
    stored: u64,
    deadline: Instant,
) -> anyhow::Result<bool> {
    let subject = format!("$JS.API.STREAM.INFO.{STREAM}");
    while Instant::now() < deadline {
        let asked = client.request(subject.clone(), bytes::Bytes::new());
        match tokio::time::timeout(Duration::from_millis(500), asked).await {
            Ok(Ok(reply)) => {
                let info: serde_json::Value = serde_json::from_slice(&reply.payload)?;
                let msgs = info["state"]["messages"].as_u64();
                if msgs == Some(stored) {
                    return Ok(true);
                }
                if let Some(m) = msgs.filter(|&m| m > 0) {
                    bail!("the stream answers with {m} of the {stored} stored messages");
                }
            }
            // Not ready (no responders yet, or JetStream still starting): ask again.
            Ok(Err(_)) | Err(_) => {
                if client.connection_state() != async_nats::connection::State::Connected {
                    return Ok(false);
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(false)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
