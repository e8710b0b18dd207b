//! Runs the `iot_tls_device` example against a TLS server that maps client certificates
//! to users: the device (mapped by its e-mail SAN, allowed only its own subjects plus
//! replies) publishes telemetry and answers commands from an operator.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerOpts, TestServer, sync, target_dir};

use crate::tls::Certs;

const WAIT: Duration = Duration::from_secs(10);

/// The built example, building it first when it is missing.
fn example_bin() -> PathBuf {
    let path = target_dir().join("examples").join("iot_tls_device");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "-p",
                "rill-examples",
                "--example",
                "iot_tls_device",
            ])
            .status()
            .expect("run cargo build for the example");
        assert!(status.success(), "building iot_tls_device failed");
    }
    path
}

#[tokio::test]
async fn iot_device_publishes_telemetry_and_answers_commands_over_mtls() {
    let certs = Certs::generate();
    let config = format!(
        r#"{}
authorization {{ users: [
  {{ user: "device-42@iot.example", permissions: {{
      publish: "devices.42.telemetry", subscribe: "devices.42.cmd", allow_responses: true }} }}
  {{ user: "CN=device-7,O=rill" }}
] }}
"#,
        certs.tls_block("verify_and_map: true")
    );
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        config: Some(config),
        ..ServerOpts::default()
    })
    .await;
    let operator = certs
        .client_cert_opts("unmapped")
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("operator connect: {e}\n{}", server.logs()));
    let mut telemetry = operator
        .subscribe("devices.42.telemetry")
        .await
        .expect("sub");
    sync(&operator).await;

    let device = tokio::process::Command::new(example_bin())
        .args(["--url", &format!("tls://127.0.0.1:{}", server.port())])
        .arg("--ca")
        .arg(certs.path("ca.pem"))
        .arg("--cert")
        .arg(certs.path("client-cert.pem"))
        .arg("--key")
        .arg(certs.path("client-key.pem"))
        .args(["--id", "42", "--count", "5", "--wait", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the example");

    for seq in 1..=5u64 {
        let msg = tokio::time::timeout(WAIT, telemetry.next())
            .await
            .unwrap_or_else(|_| panic!("reading {seq} in time\n{}", server.logs()))
            .expect("open");
        let reading: serde_json::Value = serde_json::from_slice(&msg.payload).expect("json");
        assert_eq!(reading["seq"], seq);
    }
    for cmd in ["reboot", "stop"] {
        let answer = tokio::time::timeout(WAIT, operator.request("devices.42.cmd", cmd.into()))
            .await
            .expect("answer in time")
            .expect("answer");
        assert_eq!(
            String::from_utf8_lossy(&answer.payload),
            format!("ack {cmd}")
        );
    }
    let out = tokio::time::timeout(WAIT, device.wait_with_output())
        .await
        .expect("device exits")
        .expect("device output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("command: reboot"), "{stdout}");
}
