//! `rill account info`: the JetStream account summary from `$JS.API.INFO` (usage, limits, API
//! level). `rill account limits <account>`: an account's JWT limits in operator mode, from
//! `$SYS.REQ.ACCOUNT.<account>.INFO` (its decoded JWT; needs a system account user).

use std::time::Duration;

use anyhow::Context as _;
use rill_protocol::jsapi::{AccountInfo, ApiSubject};
use serde_json::Value;

use crate::connect::ConnOpts;
use crate::jsapi::{Api, typed};
use crate::output::{self, i, s};

/// `rill account` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Show JetStream usage and limits for the connected account
    Info {
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Show an account's JWT limits (operator mode; needs a system account user)
    Limits {
        /// The account's public key
        account: String,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `rill account` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let json = match cmd {
        Cmd::Info { json } => json,
        Cmd::Limits { account, json } => return limits(conn, &account, json).await,
    };
    let api = Api::new(conn.connect().await?);
    let reply = api.request(ApiSubject::Info, &()).await?;
    if json {
        output::json(&reply);
        return Ok(());
    }
    let info: AccountInfo = typed(&reply)?;
    let (usage, limits) = (&info.usage, &info.usage.limits);
    let size = |n: u64| output::bytes(i64::try_from(n).unwrap_or(i64::MAX));
    output::section(
        "JetStream Account Information",
        &[
            ("Domain", info.domain.clone()),
            ("Memory", size(usage.memory)),
            ("Storage", size(usage.storage)),
            ("Streams", usage.streams.to_string()),
            ("Consumers", usage.consumers.to_string()),
            ("API Level", info.api.level.to_string()),
            ("API Requests", info.api.total.to_string()),
            ("API Errors", info.api.errors.to_string()),
        ],
    );
    output::section(
        "Account Limits",
        &[
            ("Max Memory", output::bytes(limits.max_memory)),
            ("Max Storage", output::bytes(limits.max_storage)),
            ("Max Streams", output::limit(limits.max_streams)),
            ("Max Consumers", output::limit(limits.max_consumers)),
        ],
    );
    Ok(())
}

/// How long `rill account limits` waits for the system account's answer.
const SYS_WAIT: Duration = Duration::from_secs(2);

/// `rill account limits`: the account's JWT claims as the server resolved them.
async fn limits(conn: &ConnOpts, account: &str, json: bool) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    let subject = format!("$SYS.REQ.ACCOUNT.{account}.INFO");
    let reply = tokio::time::timeout(SYS_WAIT, client.request(subject, "".into()))
        .await
        .context("no answer (is this a system account user?)")??;
    let info: Value = serde_json::from_slice(&reply.payload).context("server reply")?;
    if json {
        output::json(&info);
        return Ok(());
    }
    let data = &info["data"];
    let claims = &data["decoded_jwt"];
    anyhow::ensure!(
        claims.is_object(),
        "account {account} has no JWT on this server"
    );
    let nats = &claims["nats"];
    let l = &nats["limits"];
    output::section(
        "Account",
        &[
            ("Name", s(claims, "name")),
            ("Account", s(claims, "sub")),
            ("Issuer", s(claims, "iss")),
            ("Expired", flag(data, "expired")),
            ("System Account", flag(data, "is_system")),
            ("Connections", i(data, "client_connections").to_string()),
            (
                "Leaf Connections",
                i(data, "leafnode_connections").to_string(),
            ),
        ],
    );
    output::section(
        "Account Limits",
        &[
            ("Max Connections", output::limit(i(l, "conn"))),
            ("Max Leaf Node Connections", output::limit(i(l, "leaf"))),
            ("Max Subscriptions", output::limit(i(l, "subs"))),
            ("Max Payload", output::bytes(i(l, "payload"))),
            ("Max Data", output::bytes(i(l, "data"))),
            ("Max Imports", output::limit(i(l, "imports"))),
            ("Max Exports", output::limit(i(l, "exports"))),
            ("Wildcard Exports", flag(l, "wildcards")),
            ("Disallow Bearer", flag(l, "disallow_bearer")),
        ],
    );
    jetstream_limits(l);
    output::section(
        "Claims",
        &[
            ("Imports", count(nats, "imports")),
            ("Exports", count(nats, "exports")),
            ("Signing Keys", count(nats, "signing_keys")),
            ("Revocations", count(nats, "revocations")),
            (
                "Auth Callout Users",
                count(&nats["authorization"], "auth_users"),
            ),
        ],
    );
    Ok(())
}

/// The JetStream limits: one section per tier when the JWT has tiers.
fn jetstream_limits(l: &Value) {
    let rows = |js: &Value| {
        vec![
            ("Max Memory", output::bytes(i(js, "mem_storage"))),
            ("Max Storage", output::bytes(i(js, "disk_storage"))),
            ("Max Streams", output::limit(i(js, "streams"))),
            ("Max Consumers", output::limit(i(js, "consumer"))),
            ("Max Ack Pending", output::limit(i(js, "max_ack_pending"))),
            (
                "Memory Max Stream Bytes",
                stream_bytes(js, "mem_max_stream_bytes"),
            ),
            (
                "Storage Max Stream Bytes",
                stream_bytes(js, "disk_max_stream_bytes"),
            ),
            ("Max Bytes Required", flag(js, "max_bytes_required")),
        ]
    };
    match l["tiered_limits"].as_object().filter(|t| !t.is_empty()) {
        Some(tiers) => {
            for (tier, js) in tiers {
                output::section(&format!("JetStream Limits ({tier})"), &rows(js));
            }
        }
        None if jetstream_enabled(l) => output::section("JetStream Limits", &rows(l)),
        None => println!("JetStream: not enabled\n"),
    }
}

/// A per-stream byte cap, where 0 (left out) means none, as in nats-io/jwt.
fn stream_bytes(js: &Value, key: &str) -> String {
    match i(js, key) {
        n if n > 0 => output::bytes(n),
        _ => "unlimited".into(),
    }
}

/// nats-server's rule: JetStream is on when the JWT allows some memory or disk storage.
fn jetstream_enabled(l: &Value) -> bool {
    i(l, "mem_storage") != 0 || i(l, "disk_storage") != 0
}

/// "yes"/"no" for a boolean claim.
fn flag(v: &Value, key: &str) -> String {
    output::yes_no(v[key].as_bool() == Some(true))
}

/// The number of entries of an array or object field.
fn count(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Array(a) => a.len().to_string(),
        Value::Object(o) => o.len().to_string(),
        _ => "0".into(),
    }
}
