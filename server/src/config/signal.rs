//! `--signal <cmd>[=<pid>]`: send a signal to a running server, as nats-server does.
//!
//! Commands map to signals: `stop` → KILL, `quit` → INT, `term` → TERM, `reopen` → USR1,
//! `reload` → HUP, `ldm` (lame duck mode) → USR2. The target is a pid, a pid file, or,
//! when absent, the single running process with this executable's name. The signal is
//! sent with the system `kill` command, so no `unsafe` or extra crate is needed.

use std::path::Path;
use std::process::Command;

use super::error::ConfigError;

/// A parsed `--signal` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRequest {
    /// The command as given (`reload`, `ldm`, …).
    pub command: String,
    /// The signal name for `kill -s` (`HUP`, `USR2`, …).
    pub signal: &'static str,
    /// Pid or pid file; `None` finds the process by name.
    pub target: Option<String>,
}

impl SignalRequest {
    /// Parses `<cmd>[=<pid|pidfile>]`.
    ///
    /// # Errors
    /// An unknown command.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let (command, target) = match spec.split_once('=') {
            Some((c, t)) => (c, Some(t.to_string())),
            None => (spec, None),
        };
        let signal = match command {
            "stop" => "KILL",
            "quit" => "INT",
            "term" => "TERM",
            "reopen" => "USR1",
            "reload" => "HUP",
            "ldm" => "USR2",
            _ => return Err(ConfigError::Signal(format!("unknown signal \"{command}\""))),
        };
        Ok(Self {
            command: command.to_string(),
            signal,
            target,
        })
    }

    /// Resolves the target and sends the signal.
    ///
    /// # Errors
    /// No such process, several candidates, an unreadable pid file, or `kill` failing.
    pub fn send(&self) -> Result<u32, ConfigError> {
        let pid = match &self.target {
            Some(t) => resolve_pid(t)?,
            None => find_by_name()?,
        };
        let out = Command::new("kill")
            .args(["-s", self.signal, &pid.to_string()])
            .output()
            .map_err(|e| ConfigError::Signal(format!("cannot run kill: {e}")))?;
        if out.status.success() {
            Ok(pid)
        } else {
            // `kill: (42): No such process` reads as nats-server's `no such process`.
            let text = String::from_utf8_lossy(&out.stderr);
            let last = text.trim().rsplit(": ").next().unwrap_or_default();
            let why = super::go_error(&std::io::Error::other(last.to_string()));
            Err(ConfigError::Signal(format!(
                "signal \"{}\" {pid}: {why}",
                self.command
            )))
        }
    }
}

/// A pid, or the path of a file holding one.
fn resolve_pid(target: &str) -> Result<u32, ConfigError> {
    if let Ok(pid) = target.parse::<u32>() {
        return Ok(pid);
    }
    let text = std::fs::read_to_string(target)
        .map_err(|_| ConfigError::Signal(format!("invalid pid: {target}")))?;
    text.trim().parse().map_err(|_| {
        ConfigError::Signal(format!("invalid pid in file {target}: {:?}", text.trim()))
    })
}

/// The one running process (other than this one) whose name is this executable's name.
fn find_by_name() -> Result<u32, ConfigError> {
    let me = std::process::id();
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "rill-server".into());
    let pids = processes_named(&name, me);
    match pids.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(ConfigError::Signal(format!("no {name} processes running"))),
        many => {
            let list: Vec<String> = many.iter().map(u32::to_string).collect();
            Err(ConfigError::Signal(format!(
                "multiple {name} processes running:\n{}",
                list.join("\n")
            )))
        }
    }
}

/// Pids whose `/proc/<pid>/comm` equals `name` (comm is cut at 15 bytes).
fn processes_named(name: &str, except: u32) -> Vec<u32> {
    let comm_name: String = name.chars().take(15).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| *pid != except)
        .filter(|pid| {
            std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
                .is_ok_and(|c| c.trim_end() == comm_name)
        })
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_signals() {
        let table = [
            ("stop", "KILL"),
            ("quit", "INT"),
            ("term", "TERM"),
            ("reopen", "USR1"),
            ("reload", "HUP"),
            ("ldm", "USR2"),
        ];
        for (cmd, sig) in table {
            assert_eq!(SignalRequest::parse(cmd).map(|r| r.signal), Ok(sig));
        }
        let r = SignalRequest::parse("ldm=/var/run/x.pid").expect("parses");
        assert_eq!(r.target.as_deref(), Some("/var/run/x.pid"));
        assert!(SignalRequest::parse("foo=1").is_err());
    }

    #[test]
    fn pid_files_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.pid");
        std::fs::write(&file, "1234\n").expect("write");
        assert_eq!(resolve_pid(file.to_str().expect("utf8")), Ok(1234));
        assert_eq!(resolve_pid("42"), Ok(42));
        assert!(resolve_pid("/nonexistent/pid").is_err());
    }

    #[test]
    fn signal_reaches_a_child_process() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let req = SignalRequest::parse(&format!("term={}", child.id())).expect("parses");
        assert_eq!(req.send(), Ok(child.id()));
        let status = child.wait().expect("wait");
        assert!(!status.success());
        let gone = SignalRequest::parse(&format!("reload={}", child.id())).expect("parses");
        let e = gone.send().expect_err("the process is gone");
        assert_eq!(
            e.to_string(),
            format!("signal \"reload\" {}: no such process", child.id())
        );
    }
}
