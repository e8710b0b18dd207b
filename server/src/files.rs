//! The pid file and the ports file (`<program>_<pid>.ports`) that harnesses read to
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

/// `<dir>/<program>_<pid>.ports`, where `<program>` is the base name the server was
/// invoked as (`argv[0]`), as nats-server names it: started through a link or copy named
/// `nats-server` (the usual drop-in install), it writes `nats-server_<pid>.ports`, which
/// is the file a launcher written for nats-server waits for.
fn ports_path(config: &Config) -> Option<PathBuf> {
    let dir = config.ports_file_dir.as_ref()?;
    let arg0 = std::env::args_os().next();
    let name = program_name(arg0.as_deref().map(Path::new));
    Some(dir.join(format!("{name}_{}.ports", std::process::id())))
}

/// The base name of the invoked program, extension included (`./my.server` →
/// `my.server`); `rill-server` when there is none.
fn program_name(arg0: Option<&Path>) -> String {
    arg0.and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "rill-server".to_string())
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

/// Writes `{"nats": [urls], "monitoring": [urls], "cluster": [urls]}` like nats-server, when
/// `--ports_file_dir` is set (plus rill's `leafnodes` and `mqtt`).
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
    let scheme = if config.https.is_some() {
        "https"
    } else {
        "http"
    };
    let monitoring: Vec<String> = server
        .monitor_addr()
        .map(|addr| {
            url_hosts(&addr.ip().to_string())
                .iter()
                .map(|h| format!("{scheme}://{h}:{}", addr.port()))
                .collect()
        })
        .unwrap_or_default();
    let mut json = serde_json::json!({ "nats": nats, "monitoring": monitoring });
    if let (Some(addr), Some(ws)) = (server.state().websocket_addr(), &config.websocket) {
        let scheme = if ws.tls.is_some() { "wss" } else { "ws" };
        json["websocket"] = url_hosts(&ws.host)
            .iter()
            .map(|h| format!("{scheme}://{h}:{}", addr.port()))
            .collect();
    }
    if let (Some(addr), Some(mqtt)) = (server.state().mqtt_addr(), &config.mqtt) {
        // Not in nats-server's ports file (2.15.1 writes no MQTT entry); an extra key
        // readers of it ignore, with the scheme of the `Listening for MQTT clients` line.
        let scheme = if mqtt.tls.is_some() { "tls" } else { "mqtt" };
        json["mqtt"] = url_hosts(&mqtt.host)
            .iter()
            .map(|h| format!("{scheme}://{h}:{}", addr.port()))
            .collect();
    }
    if let Some(cluster) = server.cluster() {
        let addr = cluster.listen_addr();
        let urls: Vec<String> = url_hosts(&addr.ip().to_string())
            .iter()
            .map(|h| format!("nats://{h}:{}", addr.port()))
            .collect();
        json["cluster"] = serde_json::json!(urls);
    }
    if let Some(addr) = server.leafs().and_then(|l| l.listen_addr()) {
        // Not in nats-server's ports file; an extra key readers of it ignore.
        let urls: Vec<String> = url_hosts(&addr.ip().to_string())
            .iter()
            .map(|h| format!("nats-leaf://{h}:{}", addr.port()))
            .collect();
        json["leafnodes"] = serde_json::json!(urls);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_file_is_named_after_the_invoked_program() {
        let name = |p: &str| program_name(Some(Path::new(p)));
        assert_eq!(name("/usr/local/bin/nats-server"), "nats-server");
        assert_eq!(name("./my.server"), "my.server");
        assert_eq!(name("rill-server"), "rill-server");
        assert_eq!(program_name(None), "rill-server");
    }
}
