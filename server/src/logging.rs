//! Log output in nats-server's format, which harnesses parse:
//! `[<pid>] 2026/11/21 20:56:41.203146 [INF] Listening for client connections on 0.0.0.0:4222`.
//!
//! Levels map as nats-server's: `-D` enables DBG, `-V` enables TRC; ERROR is `[ERR]`,
//! WARN `[WRN]`. `-T=false` drops the timestamp. `-l` writes to a file instead of stderr.

use std::fmt;
use std::fs::OpenOptions;
use std::sync::Mutex;

use time::OffsetDateTime;
use time::macros::format_description;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogConfig;

/// Formats events like nats-server.
#[derive(Debug)]
struct NatsFormat {
    pid: u32,
    logtime: bool,
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
        if self.logtime {
            let now = OffsetDateTime::now_utc();
            let format = format_description!(
                "[year]/[month]/[day] [hour]:[minute]:[second].[subsecond digits:6]"
            );
            let stamp = now.format(format).map_err(|_| fmt::Error)?;
            write!(writer, "{stamp} ")?;
        }
        let level = match *event.metadata().level() {
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

/// Installs the global subscriber. Only rill's own events pass below INFO.
///
/// # Errors
/// When the log file cannot be opened.
pub fn init(config: &LogConfig) -> std::io::Result<()> {
    let level = match (config.trace, config.debug) {
        (true, _) => Level::TRACE,
        (false, true) => Level::DEBUG,
        _ => Level::INFO,
    };
    let format = NatsFormat {
        pid: std::process::id(),
        logtime: config.logtime,
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("rill_server", level)
        .with_default(Level::WARN);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let builder = tracing_subscriber::fmt::layer()
        .event_format(format)
        .with_ansi(false);
    let result = match &config.log_file {
        Some(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            tracing_subscriber::registry()
                .with(builder.with_writer(Mutex::new(file)))
                .with(filter)
                .try_init()
        }
        None => tracing_subscriber::registry()
            .with(builder.with_writer(std::io::stderr))
            .with(filter)
            .try_init(),
    };
    // Already installed (tests, `rill server`): keep the first one.
    let _ = result;
    Ok(())
}
