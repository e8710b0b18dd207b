//! Items 1, 2 and 8 of issue 14: the version clients gate features on, the ports file a
//! launcher waits for, and the words a launcher looks for in a config error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rill_tests::raw::Conn;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

use super::BOTH;
use crate::monitoring::get_json;

/// `(major, minor)` of a `major.minor.patch` version.
fn major_minor(version: &str) -> (u32, u32) {
    let mut parts = version
        .split('.')
        .map(|p| p.parse::<u32>().expect("number"));
    let major = parts.next().expect("major");
    let minor = parts.next().expect("minor");
    assert!(parts.next().is_some(), "{version} has no patch");
    (major, minor)
}

#[tokio::test]
async fn info_varz_and_account_info_agree_on_the_version_and_api_level() {
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts {
            kind,
            monitoring: true,
            ..ServerOpts::default()
        })
        .await;
        let http = server.monitoring_port();
        let conn = Conn::connect(server.port()).await;
        let info = conn.info().clone();
        let version = info["version"].as_str().expect("version");
        let (major, minor) = major_minor(version);
        assert_eq!(major, 2, "{kind:?}: clients gate features on major 2");
        // Clients refuse consumers, KV and metadata below these (nats.js, nats.py).
        assert!(minor >= 10, "{kind:?}: {version}");
        let level = info["api_lvl"].as_u64().unwrap_or(0);
        let account = server
            .client()
            .await
            .request("$JS.API.INFO", "".into())
            .await
            .expect("account info");
        let account: Value = serde_json::from_slice(&account.payload).expect("json");
        assert_eq!(
            account["api"]["level"].as_u64().unwrap_or(0),
            level,
            "{kind:?}"
        );
        let varz = get_json(http, "/varz").await;
        assert_eq!(varz["version"], info["version"], "{kind:?}");
        if kind == ServerKind::Rill {
            assert_eq!(version, rill_protocol::compat::NATS_VERSION);
            assert_eq!(level, u64::from(rill_protocol::compat::API_LEVEL));
            let own = env!("CARGO_PKG_VERSION");
            assert_eq!(info["rill_version"], own);
            assert_eq!(varz["rill_version"], own);
            assert!(server.logs().contains(&format!("Version:  {own}")));
            assert!(
                server
                    .logs()
                    .contains(&format!("Implements nats-server {version}"))
            );
        }
    }
}

/// A stream created through the API carries `_nats.ver` / `_nats.level` of the version
/// rill reports, not rill's own version.
#[tokio::test]
async fn stream_metadata_reports_the_implemented_version() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let reply = client
        .request(
            "$JS.API.STREAM.CREATE.V",
            r#"{"name":"V","subjects":["v.>"]}"#.into(),
        )
        .await
        .expect("create");
    let reply: Value = serde_json::from_slice(&reply.payload).expect("json");
    let metadata = &reply["config"]["metadata"];
    assert_eq!(metadata["_nats.ver"], rill_protocol::compat::NATS_VERSION);
    assert_eq!(
        metadata["_nats.level"],
        rill_protocol::compat::API_LEVEL.to_string()
    );
}

/// The executable called `name` on PATH.
fn on_path(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not on PATH"))
}

fn real_binary(kind: ServerKind) -> PathBuf {
    match kind {
        ServerKind::Rill => kind.bin(),
        ServerKind::Nats => on_path("nats-server"),
    }
}

/// Waits for `<dir>/<name>` to exist.
fn wait_for(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Started through a link named `nats-server` (the usual drop-in install), both servers
/// write `nats-server_<pid>.ports`, the file launchers written for nats-server wait for.
#[test]
fn ports_file_is_named_after_the_invoked_program() {
    for kind in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("nats-server");
        std::os::unix::fs::symlink(real_binary(kind), &link).expect("symlink");
        let ports = dir.path().join("ports");
        std::fs::create_dir(&ports).expect("ports dir");
        let mut child = Command::new(&link)
            .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(&ports)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn through the link");
        let expected = ports.join(format!("nats-server_{}.ports", child.id()));
        let found = wait_for(&expected);
        let listing: Vec<_> = std::fs::read_dir(&ports)
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found,
            "{kind:?}: {expected:?} not written; found {listing:?}"
        );
    }
}

/// A syntax error is reported as `<program>: Parse error on line N: ...` by both servers
/// (nats.py's launcher and others look for "Parse error"); rill keeps its position and
/// wording after the prefix.
#[test]
fn config_syntax_errors_say_parse_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("invalid.conf");
    std::fs::write(&conf, "{\n  \"port\": : \"invalid syntax\"\n}").expect("write");
    for kind in BOTH {
        let out = Command::new(kind.bin())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{kind:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Parse error on line 2: "),
            "{kind:?}: {stderr}"
        );
        if kind == ServerKind::Rill {
            insta::assert_snapshot!(
                "parse_error",
                stderr.replace(&*dir.path().to_string_lossy(), "DIR")
            );
        }
    }
}
