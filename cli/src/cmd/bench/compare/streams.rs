//! The many-streams scenarios of `rill bench compare`: on a fresh server of each side's command,
//! `rill bench streams` creates N streams (or KV buckets) and keeps them, and the server's process
//! is read before and after: resident memory per stream and OS threads added. The server is stopped
//! afterwards, so the streams never reach the shared server of the other scenarios.

use std::time::Duration;

use anyhow::Context as _;

use super::super::js::Storage;
use super::super::report::Report;
use super::super::run::{Common, Target};
use super::super::streams::{self as bench_streams, StreamsArgs};
use super::server::Server;
use crate::connect::ConnOpts;

/// What one many-streams run measured.
pub(super) struct Measured {
    /// The `create` phase (rate and latency).
    pub(super) report: Report,
    /// Growth of resident memory per stream, KiB.
    pub(super) kib_per_stream: f64,
    /// OS threads added by the streams.
    pub(super) threads_added: f64,
    /// Resident memory with the streams, KiB.
    pub(super) rss_kib: u64,
}

/// Creates `n` streams (KV buckets with `kv`) on a fresh server of `template`.
pub(super) async fn run(
    template: &str,
    conn: &ConnOpts,
    kv: bool,
    n: u64,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<Measured> {
    let mut server = Server::start(template).await?;
    tokio::time::sleep(SETTLE).await;
    let (rss0, threads0) = (server.rss_kib(false)?, server.threads()?);
    let args = StreamsArgs {
        prefix: if kv { "benchkv" } else { "benchstream" }.into(),
        kv,
        storage: Storage::Memory,
        clients: 16,
        keep: true,
        common: Common::quiet(n, 0, duration),
    };
    let target = Target::started(&server.url(), conn);
    let report = tokio::time::timeout(timeout, bench_streams::run(&target, &args))
        .await
        .with_context(|| format!("no result within {timeout:?}"))??;
    tokio::time::sleep(SETTLE).await;
    let (rss1, threads1) = (server.rss_kib(false)?, server.threads()?);
    server.stop();
    let created = report.phase("create").map_or(0, |p| p.msgs).max(1);
    Ok(Measured {
        kib_per_stream: rss1.saturating_sub(rss0) as f64 / created as f64,
        threads_added: threads1.saturating_sub(threads0) as f64,
        rss_kib: rss1,
        report,
    })
}

/// Time for a server's memory and threads to settle before they are read.
const SETTLE: Duration = Duration::from_millis(500);
