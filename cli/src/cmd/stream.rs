//! `rill stream`: add, edit, info, ls, rm, purge, get, view and report, all as raw `$JS.API.STREAM.*`
//! requests (see `jsapi`), printing the server's JSON with `--json`.

use rill_protocol::jsapi::ApiSubject;
use serde_json::{Value, json};

use super::stream_flags::{StreamFlags, defaults};
use crate::connect::ConnOpts;
use crate::jsapi::{Api, ApiError};
use crate::output::{self, Table, i, list, s, yes_no};
use crate::parse;

/// `rill stream` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Create a stream (never prompts; unset fields take the server defaults)
    #[command(alias = "create", alias = "new")]
    Add {
        /// Stream name
        name: String,
        #[command(flatten)]
        flags: StreamFlags,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long)]
        defaults: bool,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Change a stream's configuration
    #[command(alias = "update")]
    Edit {
        /// Stream name
        name: String,
        #[command(flatten)]
        flags: StreamFlags,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Show a stream's configuration and state
    Info {
        /// Stream name
        name: String,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// List streams
    #[command(alias = "list")]
    Ls {
        /// Print the server's stream infos as JSON
        #[arg(long)]
        json: bool,
        /// Print only the names, one per line
        #[arg(long, short = 'n')]
        names: bool,
    },
    /// Delete a stream and all its messages
    #[command(alias = "delete", alias = "del")]
    Rm {
        /// Stream name
        name: String,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Remove messages from a stream
    Purge {
        /// Stream name
        name: String,
        /// Only messages on this subject
        #[arg(long)]
        subject: Option<String>,
        /// Remove messages below this sequence
        #[arg(long)]
        seq: Option<u64>,
        /// Keep this many of the newest messages
        #[arg(long)]
        keep: Option<u64>,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Get one message by sequence, or the last one on a subject
    Get {
        /// Stream name
        name: String,
        /// Sequence number
        #[arg(required_unless_present = "last_for")]
        seq: Option<u64>,
        /// The last message on this subject instead
        #[arg(long, conflicts_with = "seq")]
        last_for: Option<String>,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
        /// Print only the payload
        #[arg(long)]
        raw: bool,
    },
    /// Print the messages in a stream
    View {
        /// Stream name
        name: String,
        /// Only messages on this subject (wildcards allowed)
        #[arg(long)]
        subject: Option<String>,
        /// Start at this sequence
        #[arg(long, default_value_t = 1)]
        start_seq: u64,
        /// Stop after this many messages
        #[arg(long)]
        count: Option<u64>,
        /// Print only payloads, one per line
        #[arg(long)]
        raw: bool,
    },
    /// A table of all streams with messages, bytes, consumers and subjects
    Report {
        /// Print the report rows as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `rill stream` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let api = Api::new(conn.connect().await?);
    match cmd {
        Cmd::Add {
            name, flags, json, ..
        } => add(&api, &name, &flags, json).await,
        Cmd::Edit { name, flags, json } => edit(&api, &name, &flags, json).await,
        Cmd::Info { name, json } => info(&api, &name, json).await,
        Cmd::Ls { json, names } => ls(&api, json, names).await,
        Cmd::Rm { name, .. } => {
            api.request(ApiSubject::StreamDelete(&name), &Value::Null)
                .await?;
            println!("Deleted stream {name}");
            Ok(())
        }
        Cmd::Purge {
            name,
            subject,
            seq,
            keep,
            ..
        } => purge(&api, &name, subject, seq, keep).await,
        Cmd::Get {
            name,
            seq,
            last_for,
            json,
            raw,
        } => get(&api, &name, seq, last_for, json, raw).await,
        Cmd::View {
            name,
            subject,
            start_seq,
            count,
            raw,
        } => view(&api, &name, subject, start_seq, count, raw).await,
        Cmd::Report { json } => report(&api, json).await,
    }
}

async fn add(api: &Api, name: &str, flags: &StreamFlags, json: bool) -> anyhow::Result<()> {
    let mut cfg = defaults(name);
    flags.apply(&mut cfg);
    if cfg["subjects"].is_null() && cfg["mirror"].is_null() && cfg["sources"].is_null() {
        cfg["subjects"] = json!([name]);
    }
    let reply = api.request(ApiSubject::StreamCreate(name), &cfg).await?;
    show_info(&reply, json);
    Ok(())
}

async fn edit(api: &Api, name: &str, flags: &StreamFlags, json: bool) -> anyhow::Result<()> {
    let current = api
        .request(ApiSubject::StreamInfo(name), &Value::Null)
        .await?;
    let mut cfg = current["config"].clone();
    flags.apply(&mut cfg);
    let reply = api.request(ApiSubject::StreamUpdate(name), &cfg).await?;
    show_info(&reply, json);
    Ok(())
}

async fn info(api: &Api, name: &str, json: bool) -> anyhow::Result<()> {
    let reply = api
        .request(ApiSubject::StreamInfo(name), &Value::Null)
        .await?;
    show_info(&reply, json);
    Ok(())
}

fn show_info(info: &Value, json: bool) {
    if json {
        output::json(info);
        return;
    }
    let c = &info["config"];
    println!(
        "Information for Stream {} created {}\n",
        s(c, "name"),
        s(info, "created")
    );
    output::section(
        "Configuration",
        &[
            ("Subjects", list(c, "subjects")),
            ("Description", s(c, "description")),
            ("Storage", s(c, "storage")),
            ("Retention", s(c, "retention")),
            ("Replicas", s(c, "num_replicas")),
            (
                "Acknowledgments",
                if c["no_ack"].as_bool() == Some(true) {
                    "no".into()
                } else {
                    "yes".into()
                },
            ),
            ("Discard Policy", s(c, "discard")),
            ("Duplicate Window", output::nanos(i(c, "duplicate_window"))),
            ("Maximum Messages", output::limit(i(c, "max_msgs"))),
            (
                "Maximum Per Subject",
                output::limit(i(c, "max_msgs_per_subject")),
            ),
            ("Maximum Bytes", output::bytes(i(c, "max_bytes"))),
            ("Maximum Age", output::age(i(c, "max_age"))),
            ("Maximum Message Size", output::bytes(i(c, "max_msg_size"))),
            ("Maximum Consumers", output::limit(i(c, "max_consumers"))),
            ("Allows Rollups", yes_no(c, "allow_rollup_hdrs")),
            ("Allows Direct Get", yes_no(c, "allow_direct")),
            ("Deny Delete", yes_no(c, "deny_delete")),
            ("Deny Purge", yes_no(c, "deny_purge")),
            ("Sealed", yes_no(c, "sealed")),
            ("Mirror", s(&c["mirror"], "name")),
            ("Sources", names(&c["sources"])),
            (
                "Subject Transform",
                pair(&c["subject_transform"], "src", "dest"),
            ),
            ("Republish", pair(&c["republish"], "src", "dest")),
        ],
    );
    output::section("State", &state_rows(&info["state"]));
    if info["mirror"].is_object() {
        output::section("Mirror Information", &origin_rows(&info["mirror"]));
    }
    for src in info["sources"].as_array().into_iter().flatten() {
        output::section("Source Information", &origin_rows(src));
    }
}

/// A mirror's or source's progress: how far behind it is and when it last heard from
/// its origin.
fn origin_rows(o: &Value) -> Vec<(&'static str, String)> {
    let transforms: Vec<String> = o["subject_transforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("{} to {}", s(t, "src"), s(t, "dest")))
        .collect();
    let active = i(o, "active");
    vec![
        ("Stream Name", s(o, "name")),
        ("Filter", s(o, "filter_subject")),
        ("Subject Transforms", transforms.join(", ")),
        ("API Prefix", s(&o["external"], "api")),
        ("Deliver Prefix", s(&o["external"], "deliver")),
        ("Lag", i(o, "lag").to_string()),
        (
            "Last Seen",
            if active < 0 {
                "never".into()
            } else {
                output::nanos(active)
            },
        ),
        ("Error", s(&o["error"], "description")),
    ]
}

/// `a to b` for an object with both keys, else empty.
fn pair(v: &Value, a: &str, b: &str) -> String {
    if v.is_object() {
        format!("{} to {}", s(v, a), s(v, b))
    } else {
        String::new()
    }
}

/// The `name`s of a list of objects, comma separated.
fn names(v: &Value) -> String {
    let all: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| s(x, "name"))
        .collect();
    all.join(", ")
}

fn state_rows(st: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("Messages", i(st, "messages").to_string()),
        ("Bytes", output::bytes(i(st, "bytes"))),
        ("First Sequence", i(st, "first_seq").to_string()),
        ("Last Sequence", i(st, "last_seq").to_string()),
        ("Deleted Messages", i(st, "num_deleted").to_string()),
        ("Subjects", i(st, "num_subjects").to_string()),
        ("Active Consumers", i(st, "consumer_count").to_string()),
    ]
}

async fn list_streams(api: &Api) -> anyhow::Result<Vec<Value>> {
    let mut streams = api
        .list_all(ApiSubject::StreamList, "streams", json!({}))
        .await?;
    streams.sort_by_key(|st| s(&st["config"], "name"));
    Ok(streams)
}

async fn ls(api: &Api, json: bool, names: bool) -> anyhow::Result<()> {
    let streams = list_streams(api).await?;
    if json {
        output::json(&json!({ "total": streams.len(), "streams": streams }));
    } else if names {
        for st in &streams {
            println!("{}", s(&st["config"], "name"));
        }
    } else if streams.is_empty() {
        println!("No streams defined");
    } else {
        let mut table = Table::new(&["Name", "Subjects", "Messages", "Bytes", "Consumers"]);
        for st in &streams {
            let (c, state) = (&st["config"], &st["state"]);
            table.row(vec![
                s(c, "name"),
                list(c, "subjects"),
                i(state, "messages").to_string(),
                output::bytes(i(state, "bytes")),
                i(state, "consumer_count").to_string(),
            ]);
        }
        table.title(format!("Streams: {}", streams.len())).print();
    }
    Ok(())
}

async fn report(api: &Api, json: bool) -> anyhow::Result<()> {
    let streams = list_streams(api).await?;
    let rows: Vec<Value> = streams
        .iter()
        .map(|st| {
            let (c, state) = (&st["config"], &st["state"]);
            json!({
                "name": c["name"], "storage": c["storage"], "retention": c["retention"],
                "replicas": c["num_replicas"], "subjects": c["subjects"],
                "messages": state["messages"], "bytes": state["bytes"],
                "consumers": state["consumer_count"], "first_seq": state["first_seq"],
                "last_seq": state["last_seq"], "deleted": state["num_deleted"],
            })
        })
        .collect();
    if json {
        output::json(&json!(rows));
        return Ok(());
    }
    let mut table = Table::new(&[
        "Stream",
        "Storage",
        "Retention",
        "Replicas",
        "Consumers",
        "Messages",
        "Bytes",
        "Deleted",
        "Subjects",
    ]);
    for r in &rows {
        table.row(vec![
            s(r, "name"),
            s(r, "storage"),
            s(r, "retention"),
            s(r, "replicas"),
            i(r, "consumers").to_string(),
            i(r, "messages").to_string(),
            output::bytes(i(r, "bytes")),
            i(r, "deleted").to_string(),
            list(r, "subjects"),
        ]);
    }
    table.title("Stream Report").print();
    Ok(())
}

async fn purge(
    api: &Api,
    name: &str,
    subject: Option<String>,
    seq: Option<u64>,
    keep: Option<u64>,
) -> anyhow::Result<()> {
    let mut body = json!({});
    if let Some(subject) = subject {
        body["filter"] = json!(subject);
    }
    if let Some(seq) = seq {
        body["seq"] = json!(seq);
    }
    if let Some(keep) = keep {
        body["keep"] = json!(keep);
    }
    let reply = api.request(ApiSubject::StreamPurge(name), &body).await?;
    println!("Purged {} messages from {name}", i(&reply, "purged"));
    Ok(())
}

async fn get(
    api: &Api,
    name: &str,
    seq: Option<u64>,
    last_for: Option<String>,
    json: bool,
    raw: bool,
) -> anyhow::Result<()> {
    let body = match last_for {
        Some(subject) => json!({ "last_by_subj": subject }),
        None => json!({ "seq": seq }),
    };
    let reply = api.request(ApiSubject::StreamMsgGet(name), &body).await?;
    if json {
        output::json(&reply);
        return Ok(());
    }
    print_stored(name, &reply["message"], raw)
}

async fn view(
    api: &Api,
    name: &str,
    subject: Option<String>,
    start_seq: u64,
    count: Option<u64>,
    raw: bool,
) -> anyhow::Result<()> {
    let filter = subject.unwrap_or_else(|| ">".to_string());
    let mut next = start_seq;
    let mut shown = 0u64;
    while count.is_none_or(|c| shown < c) {
        let body = json!({ "seq": next, "next_by_subj": filter });
        let reply = match api.request(ApiSubject::StreamMsgGet(name), &body).await {
            Ok(reply) => reply,
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|e| e.err_code == 10037) =>
            {
                break;
            }
            Err(e) => return Err(e),
        };
        let msg = &reply["message"];
        print_stored(name, msg, raw)?;
        shown += 1;
        next = msg["seq"].as_u64().unwrap_or(next) + 1;
    }
    if !raw && shown == 0 {
        println!("No messages in {name}");
    }
    Ok(())
}

/// Prints a `STREAM.MSG.GET` message (base64 `hdrs`/`data`).
fn print_stored(stream: &str, msg: &Value, raw: bool) -> anyhow::Result<()> {
    let data = parse::base64_decode(msg["data"].as_str().unwrap_or(""))?;
    if raw {
        output::raw_line(&data)?;
        return Ok(());
    }
    println!(
        "Item: {stream}#{} on subject {} received {}",
        i(msg, "seq"),
        s(msg, "subject"),
        s(msg, "time")
    );
    if let Some(hdrs) = msg["hdrs"].as_str() {
        let block = parse::base64_decode(hdrs)?;
        let text = String::from_utf8_lossy(&block);
        let mut lines: Vec<&str> = text.lines().skip(1).filter(|l| !l.is_empty()).collect();
        lines.sort_unstable();
        println!("\nHeaders:\n");
        for line in lines {
            println!("  {line}");
        }
    }
    println!("\n{}\n", String::from_utf8_lossy(&data));
    Ok(())
}
