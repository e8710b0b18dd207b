//! `rill server`: `ping`, `ls` and `info` ask running servers over the system account
//! (see `system.rs`); otherwise it runs the rill server by executing the `rill-server` binary found next to this `rill`
//! binary (or on PATH) with the given arguments. The CLI deliberately does not link the server crate.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;

/// Arguments of `rill server`: everything is passed through to rill-server.
#[derive(clap::Args, Debug)]
#[command(
    disable_help_flag = true,
    after_help = "rill server ping|ls|info ask the running servers over the system account. Anything else \
                  execs the rill-server binary found next to rill (or on PATH) with every argument passed \
                  through unchanged, so `rill server --help` shows rill-server's own flags."
)]
pub(crate) struct Args {
    /// Arguments for rill-server (e.g. -p 4222 -js -sd ./data)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

fn server_binary() -> PathBuf {
    let name = format!("rill-server{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `rill server ping|ls|info` ask the running servers over the system account; anything else
/// replaces this process with rill-server (on Unix; elsewhere runs it and passes its exit code on).
pub(crate) async fn run(conn: &crate::connect::ConnOpts, args: Args) -> anyhow::Result<()> {
    let first = args.args.first().and_then(|a| a.to_str());
    if matches!(first, Some("ping" | "ls" | "info")) {
        use clap::Parser as _;
        let argv = std::iter::once(OsString::from("rill server")).chain(args.args);
        let cmd = super::system::Cmd::try_parse_from(argv).unwrap_or_else(|e| e.exit());
        return super::system::run(conn, cmd).await;
    }
    exec(args)
}

fn exec(args: Args) -> anyhow::Result<()> {
    let bin = server_binary();
    let mut command = Command::new(&bin);
    command.args(&args.args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let err = command.exec();
        Err(err).with_context(|| format!("cannot run {}", bin.display()))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        std::process::exit(status.code().unwrap_or(1));
    }
}
