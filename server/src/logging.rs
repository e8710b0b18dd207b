//! Log output in nats-server's format, which harnesses parse:
//! `[<pid>] 2026/11/21 20:56:41.203146 [INF] Listening for client connections on 0.0.0.0:4222`.
//!
//! Levels map as nats-server's: `-D` enables DBG, `-V` enables TRC; ERROR is `[ERR]`,
//! WARN `[WRN]`, and [`fatal`] is `[FTL]`. `-T=false` drops the timestamp. `-l` writes to
//! a file instead of stderr. Timestamps are UTC (nats-server uses local time unless
//! `--logtime_utc`; the two agree on UTC machines, and UTC needs no time-zone lookup in a
//! multi-threaded process).
//!
//! Everything can change while the server runs: [`apply`] (called on reload) swaps the
//! level filter through tracing-subscriber's `reload` layer, flips the timestamp flag and
//! switches the output between stderr and a file; [`reopen`] (SIGUSR1) opens the log file
//! again after a rotation tool renamed it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use time::OffsetDateTime;
use time::macros::format_description;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Registry, reload};

use crate::config::{LogConfig, go_error};
use crate::locks;

/// The target of [`fatal`] events, printed as `[FTL]`.
const FATAL_TARGET: &str = "rill_server::fatal";

/// Logs a fatal start-up error as nats-server does (`[FTL] …`); the caller then exits
/// non-zero.
pub fn fatal(message: impl fmt::Display) {
    tracing::error!(target: FATAL_TARGET, "{message}");
}

/// Where log lines go.
#[derive(Debug)]
enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
}

/// State shared by the formatter, the writer and the reload handle.
#[derive(Debug)]
struct Shared {
    logtime: AtomicBool,
    sink: Mutex<Sink>,
}

impl Shared {
    fn sink(&self) -> MutexGuard<'_, Sink> {
        locks::lock(&self.sink)
    }
}

/// Formats events like nats-server.
#[derive(Debug)]
struct NatsFormat {
    pid: u32,
    shared: Arc<Shared>,
}

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "[{}] ", self.pid)?;
        if self.shared.logtime.load(Ordering::Relaxed) {
            let now = OffsetDateTime::now_utc();
            let format = format_description!(
                "[year]/[month]/[day] [hour]:[minute]:[second].[subsecond digits:6]"
            );
            let stamp = now.format(format).map_err(|_| fmt::Error)?;
            write!(writer, "{stamp} ")?;
        }
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR if meta.target() == FATAL_TARGET => "[FTL]",
            Level::ERROR => "[ERR]",
            Level::WARN => "[WRN]",
            Level::INFO => "[INF]",
            Level::DEBUG => "[DBG]",
            Level::TRACE => "[TRC]",
        };
        write!(writer, "{level} ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Writes each formatted line, whole, to the current sink.
#[derive(Debug, Clone)]
struct SinkWriter(Arc<Shared>);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut *self.0.sink() {
            Sink::Stderr => io::stderr().write_all(buf),
            Sink::File { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut *self.0.sink() {
            Sink::Stderr => io::stderr().flush(),
            Sink::File { file, .. } => file.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What [`apply`] and [`reopen`] change.
#[derive(Debug)]
struct Handle {
    filter: reload::Handle<Targets, Registry>,
    shared: Arc<Shared>,
}

static HANDLE: OnceLock<Handle> = OnceLock::new();

fn filter_for(config: &LogConfig) -> Targets {
    let level = match (config.trace, config.debug) {
        (true, _) => Level::TRACE,
        (false, true) => Level::DEBUG,
        _ => Level::INFO,
    };
    // Only rill's own events pass below WARN.
    Targets::new()
        .with_target("rill_server", level)
        .with_default(Level::WARN)
}

/// Opens a log file for appending, or says why not as nats-server does
/// (`error opening file: open x.log: no such file or directory`).
fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "error opening file: open {}: {}",
                    path.display(),
                    go_error(&e)
                ),
            )
        })
}

fn sink_for(config: &LogConfig) -> io::Result<Sink> {
    Ok(match &config.log_file {
        Some(path) => Sink::File {
            path: path.clone(),
            file: open_log(path)?,
        },
        None => Sink::Stderr,
    })
}

/// Installs the global subscriber.
///
/// # Errors
/// When the log file cannot be opened.
pub fn init(config: &LogConfig) -> io::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let shared = Arc::new(Shared {
        logtime: AtomicBool::new(config.logtime),
        sink: Mutex::new(sink_for(config)?),
    });
    let (filter, filter_handle) = reload::Layer::new(filter_for(config));
    let format = NatsFormat {
        pid: std::process::id(),
        shared: Arc::clone(&shared),
    };
    let layer = tracing_subscriber::fmt::layer()
        .event_format(format)
        .with_ansi(false)
        .with_writer(SinkWriter(Arc::clone(&shared)));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    // Already installed (tests, `rill server`): keep the first one.
    if installed.is_ok() {
        let _ = HANDLE.set(Handle {
            filter: filter_handle,
            shared,
        });
    }
    Ok(())
}

/// Applies changed logging options at run time (reload): level, timestamps, log file.
///
/// # Errors
/// When the new log file cannot be opened; the old output stays.
pub fn apply(config: &LogConfig) -> io::Result<()> {
    let Some(handle) = HANDLE.get() else {
        return Ok(());
    };
    let same_file = match &*handle.shared.sink() {
        Sink::Stderr => config.log_file.is_none(),
        Sink::File { path, .. } => config.log_file.as_deref() == Some(path.as_path()),
    };
    if !same_file {
        let sink = sink_for(config)?;
        *handle.shared.sink() = sink;
    }
    handle
        .shared
        .logtime
        .store(config.logtime, Ordering::Relaxed);
    handle
        .filter
        .reload(filter_for(config))
        .map_err(io::Error::other)
}

/// Re-opens the log file (SIGUSR1, `--signal reopen`), so that a renamed file is left
/// alone and logging carries on at the configured path. Logs `File log re-opened` in the
/// new file as nats-server does; does nothing when logging to stderr.
///
/// # Errors
/// When the file cannot be opened again; logging stays on the old file.
pub fn reopen() -> io::Result<()> {
    let Some(handle) = HANDLE.get() else {
        return Ok(());
    };
    {
        let mut sink = handle.shared.sink();
        let Sink::File { path, file } = &mut *sink else {
            return Ok(());
        };
        *file = open_log(path)?;
    }
    tracing::info!("File log re-opened");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_errors_read_like_nats_server() {
        let e = open_log(Path::new("/nonexistent/dir/x.log")).expect_err("no such dir");
        assert_eq!(
            e.to_string(),
            "error opening file: open /nonexistent/dir/x.log: no such file or directory"
        );
    }
}
