//! The pid file and the ports file (`<exe>_<pid>.ports`) that harnesses read to
//! find a server started on a random port.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::lifecycle::{Server, StartError};

/// Writes the process id to `path`.
pub(crate) fn write_pid(path: &Path) -> Result<(), StartError> {
    std::fs::write(path, std::process::id().to_string()).map_err(|source| StartError::File {
        what: "pidfile",
        path: path.display().to_string(),
        source,
    })
}

fn ports_path(config: &Config) -> Option<PathBuf> {
    let dir = config.ports_file_dir.as_ref()?;
    let exe = std::env::current_exe().ok();
    let name = exe
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(|s| s.to_str())
        .unwrap_or("rill-server");
    Some(dir.join(format!("{name}_{}.ports", std::process::id())))
}

/// The hosts a listener on `host` can be reached at, as URLs need them.
fn url_hosts(host: &str) -> Vec<String> {
    match host {
        "0.0.0.0" | "" => vec!["127.0.0.1".into()],
        "::" | "[::]" => vec!["127.0.0.1".into(), "[::1]".into()],
        h if h.contains(':') && !h.starts_with('[') => vec![format!("[{h}]")],
        h => vec![h.to_string()],
    }
}

/// Writes `{"nats": [urls], "monitoring": [urls]}` like nats-server, when `--ports_file_dir` is set.
pub(crate) fn write_ports(server: &Server) -> Result<(), StartError> {
    let config = server.state().config();
    let Some(path) = ports_path(&config) else {
        return Ok(());
    };
    let port = server.addr().port();
    let nats: Vec<String> = url_hosts(&config.host)
        .iter()
        .map(|h| format!("nats://{h}:{port}"))
        .collect();
    let monitoring: Vec<String> = server
        .monitor_addr()
        .map(|addr| {
            url_hosts(&addr.ip().to_string())
                .iter()
                .map(|h| format!("http://{h}:{}", addr.port()))
                .collect()
        })
        .unwrap_or_default();
    let json = serde_json::json!({ "nats": nats, "monitoring": monitoring });
    std::fs::write(&path, json.to_string()).map_err(|source| StartError::File {
        what: "ports file",
        path: path.display().to_string(),
        source,
    })
}

/// Removes the ports file on shutdown, as nats-server does.
pub(crate) fn remove_ports(config: &Config) {
    if let Some(path) = ports_path(config) {
        let _ = std::fs::remove_file(path);
    }
}
