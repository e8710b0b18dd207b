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
    if let Some(path) = &config.pid_file {
        files::write_pid(path)?;
    }
    let server = Server::start(config).await?;
    files::write_ports(&server)?;
    let how = signals(&server, &reload).await;
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

/// Waits for a stopping signal, reloading on SIGHUP meanwhile.
#[cfg(unix)]
async fn signals(server: &Server, reload: &impl Reload) -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut usr1), Ok(mut usr2), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
    ) else {
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

/// Waits for Ctrl-C.
#[cfg(not(unix))]
async fn signals(_server: &Server, _reload: &impl Reload) -> Stop {
    let _ = tokio::signal::ctrl_c().await;
    Stop::Graceful
}
