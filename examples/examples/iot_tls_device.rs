//! An IoT device that talks to rill over mutual TLS.
//!
//! It connects with a client certificate, publishes `--count` telemetry readings as JSON on
//! `devices.<id>.telemetry`, and answers commands sent as requests to `devices.<id>.cmd`
//! with `ack <command>`. The command `stop` ends the program (so does `--wait` seconds
//! without one after the telemetry is sent).
//!
//! ```text
//! cargo run -p rill-examples --example iot_tls_device -- \
//!     --url tls://127.0.0.1:4222 --ca ca.pem --cert device-cert.pem --key device-key.pem \
//!     --id 42 --count 10
//! ```
//! Every flag can also come from the environment: `RILL_URL`, `RILL_CA`, `RILL_CERT`,
//! `RILL_KEY`, `DEVICE_ID`, `DEVICE_COUNT`, `DEVICE_WAIT`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;

/// Settings from flags or environment.
#[derive(Debug)]
struct Settings {
    url: String,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    id: String,
    count: u64,
    wait: Duration,
}

impl Settings {
    fn from_args() -> anyhow::Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        let mut s = Settings {
            url: env("RILL_URL").unwrap_or_else(|| "tls://127.0.0.1:4222".into()),
            ca: env("RILL_CA").map(PathBuf::from),
            cert: env("RILL_CERT").map(PathBuf::from),
            key: env("RILL_KEY").map(PathBuf::from),
            id: env("DEVICE_ID").unwrap_or_else(|| "1".into()),
            count: env("DEVICE_COUNT").map_or(Ok(10), |c| c.parse())?,
            wait: Duration::from_secs(env("DEVICE_WAIT").map_or(Ok(30), |c| c.parse())?),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--url" => s.url = value,
                "--ca" => s.ca = Some(value.into()),
                "--cert" => s.cert = Some(value.into()),
                "--key" => s.key = Some(value.into()),
                "--id" => s.id = value,
                "--count" => s.count = value.parse()?,
                "--wait" => s.wait = Duration::from_secs(value.parse()?),
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(s)
    }

    fn connect_options(&self) -> async_nats::ConnectOptions {
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("device-{}", self.id))
            .require_tls(true);
        if let Some(ca) = &self.ca {
            opts = opts.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        opts
    }
}

/// A made-up sensor reading.
fn reading(seq: u64) -> serde_json::Value {
    let temp = 20.0 + (seq % 10) as f64 * 0.5;
    serde_json::json!({ "seq": seq, "temp_c": temp, "battery": 100 - (seq % 100) })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let s = Settings::from_args()?;
    let client = s
        .connect_options()
        .connect(&s.url)
        .await
        .with_context(|| format!("connect to {}", s.url))?;
    let mut commands = client.subscribe(format!("devices.{}.cmd", s.id)).await?;
    client.flush().await?;
    println!("device {} connected to {}", s.id, s.url);

    let telemetry = format!("devices.{}.telemetry", s.id);
    for seq in 1..=s.count {
        let body = serde_json::to_vec(&reading(seq))?;
        client.publish(telemetry.clone(), body.into()).await?;
    }
    client.flush().await?;
    println!("published {} readings on {telemetry}", s.count);

    loop {
        let cmd = match tokio::time::timeout(s.wait, commands.next()).await {
            Ok(Some(cmd)) => cmd,
            Ok(None) => bail!("command subscription closed"),
            Err(_) => {
                println!("no command for {:?}, exiting", s.wait);
                return Ok(());
            }
        };
        let text = String::from_utf8_lossy(&cmd.payload).into_owned();
        println!("command: {text}");
        if let Some(reply) = cmd.reply {
            client.publish(reply, format!("ack {text}").into()).await?;
            client.flush().await?;
        }
        if text == "stop" {
            return Ok(());
        }
    }
}
