//! The machinery every benchmark shares: the flags common to all of them ([`Common`]), where to connect
//! ([`Target`]), the count-and-time bound of each loop ([`Bound`]), latency histograms, payloads, the
//! server round trip that proves a publisher's messages were processed ([`sync`]), and the progress
//! line on stderr. It does not own any benchmark itself.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::RequestErrorKind;
use bytes::{BufMut as _, Bytes, BytesMut};
use hdrhistogram::Histogram;

use crate::connect::ConnOpts;
use crate::parse;

/// Flags shared by every `rill bench` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Common {
    /// Number of messages to send (split evenly between publishers or clients)
    #[arg(long, default_value_t = 100_000)]
    pub(crate) msgs: u64,
    /// Payload size in bytes (e.g. 16, 1KiB)
    #[arg(long, default_value = "128", value_parser = parse_size)]
    pub(crate) size: usize,
    /// Stop each phase after this long even if not all messages were sent
    #[arg(long, default_value = "60s", value_parser = parse::duration)]
    pub(crate) duration: Duration,
    /// Print the result as JSON (stable field names)
    #[arg(long)]
    pub(crate) json: bool,
    /// Do not show progress on stderr
    #[arg(long)]
    pub(crate) quiet: bool,
}

impl Common {
    /// Common settings for a run driven by code (the comparison), without progress output.
    pub(crate) fn quiet(msgs: u64, size: usize, duration: Duration) -> Common {
        Common {
            msgs,
            size,
            duration,
            json: false,
            quiet: true,
        }
    }

    /// A bound of `msgs` messages and `duration`, starting now.
    pub(crate) fn bound(&self) -> Bound {
        Bound::new(self.msgs, self.duration)
    }
}

/// A payload size such as `16`, `1KiB` or `1MB`.
fn parse_size(text: &str) -> anyhow::Result<usize> {
    let n = parse::size(text)?;
    usize::try_from(n).context("payload size must not be negative")
}

/// Where a benchmark connects: the global connection options, resolved through contexts or used as given.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    conn: ConnOpts,
    direct: bool,
}

impl Target {
    /// The server chosen by the command line (flags, environment, then the selected context).
    pub(crate) fn from_cli(conn: &ConnOpts) -> Target {
        Target {
            conn: conn.clone(),
            direct: false,
        }
    }

    /// Exactly `url` with the credentials and TLS settings of `template`, ignoring saved
    /// contexts (the comparison talks to servers it started itself).
    pub(crate) fn started(url: &str, template: &ConnOpts) -> Target {
        Target::from_cli(template).at(url)
    }

    /// The same credentials and TLS settings at `url` (another server of a cluster).
    pub(crate) fn at(&self, url: &str) -> Target {
        Target {
            conn: ConnOpts {
                server: Some(url.to_string()),
                context: None,
                ..self.conn.clone()
            },
            direct: true,
        }
    }

    /// The server URL as shown in reports.
    pub(crate) fn display(&self) -> String {
        self.conn
            .server
            .clone()
            .unwrap_or_else(|| crate::connect::DEFAULT_URL.to_string())
    }

    /// A new connection (every publisher, subscriber and client gets its own).
    pub(crate) async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        self.conn.connect_tuned(self.direct, |o| o).await
    }

    /// A subscriber's connection: its message queue holds `capacity` messages (so a subscriber that
    /// falls behind buffers instead of dropping), and every event that loses messages is counted in
    /// `drops`: an async-nats slow-consumer event (messages dropped in the client) or a disconnection
    /// (e.g. the server cut the subscriber off as a slow consumer).
    pub(crate) async fn connect_subscriber(
        &self,
        capacity: usize,
        drops: Arc<AtomicU64>,
    ) -> anyhow::Result<async_nats::Client> {
        let tune = move |o: async_nats::ConnectOptions| {
            o.subscription_capacity(capacity)
                .event_callback(move |event| {
                    if let async_nats::Event::SlowConsumer(_) | async_nats::Event::Disconnected =
                        event
                    {
                        drops.fetch_add(1, Ordering::Relaxed);
                    }
                    std::future::ready(())
                })
        };
        self.conn.connect_tuned(self.direct, tune).await
    }

    /// The request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.conn.timeout
    }
}

/// How far a loop may go: at most `msgs` iterations and never past `deadline`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    /// The message count limit.
    pub(crate) msgs: u64,
    /// The time limit.
    pub(crate) deadline: Instant,
}

impl Bound {
    /// `msgs` messages within `duration` from now.
    pub(crate) fn new(msgs: u64, duration: Duration) -> Bound {
        Bound {
            msgs,
            deadline: Instant::now() + duration,
        }
    }

    /// True once the time limit has passed.
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The tokio form of the deadline.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.deadline)
    }
}

/// How many of `total` messages worker `i` of `n` handles (the first `total % n` get one more).
pub(crate) fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n.max(1) as u64;
    let i = i as u64;
    total / n + u64::from(i < total % n)
}

/// A latency histogram in nanoseconds (1 ns to 10 min, 3 significant figures).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Records `elapsed` into `hist`, clamping to the histogram's range.
pub(crate) fn record(hist: &mut Histogram<u64>, elapsed: Duration) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    hist.saturating_record(ns.max(1));
}

/// A payload of `size` bytes: 8 zero bytes (the "not stamped" mark of [`stamped`]) and then a
/// repeating letter pattern.
pub(crate) fn payload(size: usize) -> Bytes {
    (0..size)
        .map(|i| if i < 8 { 0 } else { b'a' + (i % 26) as u8 })
        .collect()
}

/// A payload whose first 8 bytes carry the send time as nanoseconds after `epoch`, plus one (zero
/// means "not stamped"). Payloads shorter than 8 bytes cannot carry a stamp and are returned as is.
pub(crate) fn stamped(base: &Bytes, epoch: Instant) -> Bytes {
    if base.len() < 8 {
        return base.clone();
    }
    let ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
    let mut buf = BytesMut::with_capacity(base.len());
    buf.put_u64_le(ns);
    buf.put_slice(&base[8..]);
    buf.freeze()
}

/// The latency of a message stamped by [`stamped`], or `None` when it carries no stamp.
pub(crate) fn stamp_latency(payload: &[u8], epoch: Instant) -> Option<Duration> {
    let head: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    let sent = u64::from_le_bytes(head);
    if sent == 0 {
        return None;
    }
    let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Some(Duration::from_nanos(now.saturating_sub(sent - 1)))
}

/// Waits until the server has processed everything `client` sent so far: a request to a subject
/// nobody serves is answered with a no-responders status only after the server handled every earlier
/// message of the connection. (async-nats's `flush` only empties the client's own buffer.)
pub(crate) async fn sync(client: &async_nats::Client, timeout: Duration) -> anyhow::Result<()> {
    let subject = format!("_rill_bench_sync.{}", client.new_inbox().replace('.', "_"));
    let request = async_nats::Request::new().timeout(Some(timeout));
    match client.send_request(subject, request).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(e).context("round trip to the server after publishing"),
    }
}

/// A shared message counter with an optional progress line on stderr.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    count: Arc<AtomicU64>,
}

impl Progress {
    /// A counter; when `show` is set, a task prints `label: n/total` to stderr until [`Ticker::finish`].
    pub(crate) fn start(label: &str, total: u64, show: bool) -> (Progress, Ticker) {
        let progress = Progress {
            count: Arc::new(AtomicU64::new(0)),
        };
        let task = show.then(|| {
            let count = Arc::clone(&progress.count);
            tokio::spawn(tick(label.to_string(), total, count))
        });
        (progress, Ticker { task })
    }

    /// Adds `n` messages.
    pub(crate) fn add(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub(crate) fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The progress printing task (if any) of a [`Progress`].
#[derive(Debug)]
pub(crate) struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    /// Stops printing and clears the progress line.
    pub(crate) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            if std::io::stderr().is_terminal() {
                eprint!("\r\x1b[2K");
            }
        }
    }
}

async fn tick(label: String, total: u64, count: Arc<AtomicU64>) {
    let tty = std::io::stderr().is_terminal();
    let period = if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    };
    let started = Instant::now();
    loop {
        tokio::time::sleep(period).await;
        let n = count.load(Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64();
        let line = format!("{label}: {n}/{total} msgs, {rate:.0} msgs/s");
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

/// Whether progress should be shown for these flags.
pub(crate) fn show_progress(common: &Common) -> bool {
    !common.quiet && !common.json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        let parts: Vec<u64> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(parts, vec![4, 3, 3]);
        assert_eq!(share(5, 0, 0), 5);
    }

    #[test]
    fn stamps_round_trip() {
        let epoch = Instant::now();
        let base = payload(16);
        assert_eq!(
            stamp_latency(&base, epoch),
            None,
            "plain payloads carry no stamp"
        );
        let msg = stamped(&base, epoch);
        assert_eq!(msg.len(), 16);
        assert_eq!(&msg[8..], &base[8..]);
        assert!(stamp_latency(&msg, epoch).is_some());
        assert_eq!(stamped(&payload(4), epoch).len(), 4);
    }
}
