//! [`run`]: a server from start to exit, steered by signals — SIGINT/SIGTERM stop it,
//! SIGUSR2 puts it in lame-duck mode, SIGHUP (or `$SYS.REQ.SERVER.<id>.RELOAD`) reloads
//! the configuration, SIGUSR1 re-opens the log file.

use tracing::info;

use crate::config::Config;
use crate::lifecycle::{Server, StartError, Stop};
use crate::reload::{Reload, apply_reload};
use crate::{files, logging};

/// Runs a server until SIGINT/SIGTERM (graceful) or SIGUSR2 (lame duck); SIGHUP reloads,
/// SIGUSR1 re-opens the log file.
///
/// # Errors
/// [`StartError`] when the server cannot start.
pub async fn run(config: Config, reload: impl Reload) -> Result<(), StartError> {
    // Before the listener, as nats-server does: a harness that sees `Server is ready`
    // finds the pid file already there.
    // Trapped before anything tells the world the server is up (pid file, listeners, ports
    // file): a launcher that sends SIGUSR2 as soon as it can connect (nats.py's does) must
    // not meet the default action, which ends the process. A signal that comes during
    // start-up waits in its stream and takes effect once the server runs.
    let trapped = Trapped::new();
    if let Some(path) = &config.pid_file {
        files::write_pid(path)?;
    }
    let server = Server::start(config).await?;
    files::write_ports(&server)?;
    let how = trapped.wait(&server, &reload).await;
    let config = server.state().config();
    server.shutdown(how).await;
    files::remove_ports(&config);
    Ok(())
}

/// SIGUSR1: re-open the log file (log rotation).
fn reopen_log() {
    if let Err(e) = logging::reopen() {
        tracing::error!("Failed to re-open log file: {e}");
    }
}

/// The signals the server answers, trapped from the start of [`run`].
#[cfg(unix)]
struct Trapped {
    /// `None` when the signal driver could not be set up (then only the process default
    /// actions apply, as before a server traps anything).
    streams: Option<[tokio::signal::unix::Signal; 5]>,
}

#[cfg(unix)]
impl Trapped {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
            SignalKind::hangup(),
        ];
        let streams: Result<Vec<_>, _> = kinds.into_iter().map(signal).collect();
        Self {
            streams: streams.ok().and_then(|v| v.try_into().ok()),
        }
    }

    /// Waits for a stopping signal, reloading on SIGHUP meanwhile.
    async fn wait(self, server: &Server, reload: &impl Reload) -> Stop {
        let Some([mut int, mut term, mut usr1, mut usr2, mut hup]) = self.streams else {
            return std::future::pending().await;
        };
        loop {
            tokio::select! {
                _ = int.recv() => { info!("Trapped \"interrupt\" signal"); return Stop::Graceful }
                _ = term.recv() => { info!("Trapped \"terminated\" signal"); return Stop::Graceful }
                _ = usr1.recv() => { info!("Trapped \"user defined signal 1\" signal"); reopen_log() }
                _ = usr2.recv() => { info!("Trapped \"user defined signal 2\" signal"); return Stop::LameDuck }
                _ = hup.recv() => { info!("Trapped \"hangup\" signal"); apply_reload(server, reload).await }
                () = server.state().reload_requested() => apply_reload(server, reload).await,
            }
        }
    }
}

/// Ctrl-C, where there are no Unix signals.
#[cfg(not(unix))]
struct Trapped;

#[cfg(not(unix))]
impl Trapped {
    fn new() -> Self {
        Trapped
    }

    /// Waits for Ctrl-C.
    async fn wait(self, _server: &Server, _reload: &impl Reload) -> Stop {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Graceful
    }
}
