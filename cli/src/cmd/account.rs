//! `rill account info`: the JetStream account summary from `$JS.API.INFO` (usage, limits, API level).

use rill_protocol::jsapi::ApiSubject;
use serde_json::Value;

use crate::connect::ConnOpts;
use crate::jsapi::Api;
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
}

/// Runs a `rill account` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let Cmd::Info { json } = cmd;
    let api = Api::new(conn.connect().await?);
    let info = api.request(ApiSubject::Info, &Value::Null).await?;
    if json {
        output::json(&info);
        return Ok(());
    }
    let limits = &info["limits"];
    output::section(
        "JetStream Account Information",
        &[
            ("Domain", s(&info, "domain")),
            ("Memory", output::bytes(i(&info, "memory"))),
            ("Storage", output::bytes(i(&info, "storage"))),
            ("Streams", i(&info, "streams").to_string()),
            ("Consumers", i(&info, "consumers").to_string()),
            ("API Level", s(&info["api"], "level")),
            ("API Requests", i(&info["api"], "total").to_string()),
            ("API Errors", i(&info["api"], "errors").to_string()),
        ],
    );
    output::section(
        "Account Limits",
        &[
            ("Max Memory", output::bytes(i(limits, "max_memory"))),
            ("Max Storage", output::bytes(i(limits, "max_storage"))),
            ("Max Streams", output::limit(i(limits, "max_streams"))),
            ("Max Consumers", output::limit(i(limits, "max_consumers"))),
        ],
    );
    Ok(())
}
