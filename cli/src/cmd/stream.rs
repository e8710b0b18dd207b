//! `rill stream`: add, edit, info, ls, rm, purge, get, view and report, all as raw `$JS.API.STREAM.*`
//! requests (see `jsapi`), printing the server's JSON with `--json`.

use rill_protocol::jsapi::{
    ApiSubject, MsgGetRequest, MsgGetResponse, RetentionPolicy, StorageType, StoredMsg,
    StreamConfig, StreamInfo, StreamPurgeRequest, StreamPurgeResponse, StreamSource,
    StreamSourceInfo, StreamState,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::stream_flags::{StreamFlags, defaults};
use crate::connect::ConnOpts;
use crate::jsapi::{Api, ApiError, Kept, typed};
use crate::output::{self, Table, word, yes_no};

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
            api.request(ApiSubject::StreamDelete(&name), &()).await?;
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
    if cfg.subjects.is_empty() && cfg.mirror.is_none() && cfg.sources.is_empty() {
        cfg.subjects = vec![name.to_string()];
    }
    let reply = api.request(ApiSubject::StreamCreate(name), &cfg).await?;
    show_info(&reply, json)
}

async fn edit(api: &Api, name: &str, flags: &StreamFlags, json: bool) -> anyhow::Result<()> {
    let current = api.request(ApiSubject::StreamInfo(name), &()).await?;
    let mut cfg: Kept<StreamConfig> = typed(&current["config"])?;
    flags.apply(&mut cfg.known);
    let reply = api.request(ApiSubject::StreamUpdate(name), &cfg).await?;
    show_info(&reply, json)
}

async fn info(api: &Api, name: &str, json: bool) -> anyhow::Result<()> {
    let reply = api.request(ApiSubject::StreamInfo(name), &()).await?;
    show_info(&reply, json)
}

fn show_info(reply: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(reply);
        return Ok(());
    }
    let info: StreamInfo = typed(reply)?;
    let c = &info.config;
    println!(
        "Information for Stream {} created {}\n",
        c.name, info.created
    );
    output::section("Configuration", &config_rows(c));
    output::section("State", &state_rows(&info.state));
    if let Some(mirror) = &info.mirror {
        output::section("Mirror Information", &origin_rows(mirror));
    }
    for src in &info.sources {
        output::section("Source Information", &origin_rows(src));
    }
    Ok(())
}

fn config_rows(c: &StreamConfig) -> Vec<(&'static str, String)> {
    vec![
        ("Subjects", c.subjects.join(", ")),
        ("Description", c.description.clone()),
        ("Storage", word(&c.storage)),
        ("Retention", word(&c.retention)),
        ("Replicas", c.num_replicas.to_string()),
        ("Acknowledgments", yes_no(!c.no_ack)),
        ("Discard Policy", word(&c.discard)),
        ("Duplicate Window", output::nanos(c.duplicate_window.0)),
        ("Maximum Messages", output::limit(c.max_msgs)),
        ("Maximum Per Subject", output::limit(c.max_msgs_per_subject)),
        ("Maximum Bytes", output::bytes(c.max_bytes)),
        ("Maximum Age", output::age(c.max_age.0)),
        (
            "Maximum Message Size",
            output::bytes(i64::from(c.max_msg_size)),
        ),
        ("Maximum Consumers", output::limit(c.max_consumers)),
        ("Allows Rollups", yes_no(c.allow_rollup_hdrs)),
        ("Allows Direct Get", yes_no(c.allow_direct)),
        ("Deny Delete", yes_no(c.deny_delete)),
        ("Deny Purge", yes_no(c.deny_purge)),
        ("Sealed", yes_no(c.sealed)),
        (
            "Mirror",
            c.mirror
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
        ),
        ("Sources", names(&c.sources)),
        (
            "Subject Transform",
            c.subject_transform
                .as_ref()
                .map(|t| format!("{} to {}", t.src, t.dest))
                .unwrap_or_default(),
        ),
        (
            "Republish",
            c.republish
                .as_ref()
                .map(|r| format!("{} to {}", r.src, r.dest))
                .unwrap_or_default(),
        ),
    ]
}

/// A mirror's or source's progress: how far behind it is and when it last heard from
/// its origin.
fn origin_rows(o: &StreamSourceInfo) -> Vec<(&'static str, String)> {
    let transforms: Vec<String> = o
        .subject_transforms
        .iter()
        .map(|t| format!("{} to {}", t.src, t.dest))
        .collect();
    let external = o.external.clone().unwrap_or_default();
    vec![
        ("Stream Name", o.name.clone()),
        ("Filter", o.filter_subject.clone()),
        ("Subject Transforms", transforms.join(", ")),
        ("API Prefix", external.api),
        ("Deliver Prefix", external.deliver),
        ("Lag", o.lag.to_string()),
        (
            "Last Seen",
            if o.active.0 < 0 {
                "never".into()
            } else {
                output::nanos(o.active.0)
            },
        ),
        (
            "Error",
            o.error
                .as_ref()
                .map(|e| e.description.clone())
                .unwrap_or_default(),
        ),
    ]
}

/// The names of a stream's sources, comma separated.
fn names(sources: &[StreamSource]) -> String {
    let all: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    all.join(", ")
}

fn state_rows(st: &StreamState) -> Vec<(&'static str, String)> {
    vec![
        ("Messages", st.messages.to_string()),
        ("Bytes", output::bytes(count(st.bytes))),
        ("First Sequence", st.first_seq.to_string()),
        ("Last Sequence", st.last_seq.to_string()),
        ("Deleted Messages", st.num_deleted.to_string()),
        ("Subjects", st.num_subjects.to_string()),
        ("Active Consumers", st.consumer_count.to_string()),
    ]
}

async fn ls(api: &Api, json: bool, names: bool) -> anyhow::Result<()> {
    let streams = api.streams().await?;
    if json {
        let raw: Vec<&Value> = streams.iter().map(|(raw, _)| raw).collect();
        output::json(&json!({ "total": streams.len(), "streams": raw }));
    } else if names {
        for (_, st) in &streams {
            println!("{}", st.config.name);
        }
    } else if streams.is_empty() {
        println!("No streams defined");
    } else {
        let mut table = Table::new(&["Name", "Subjects", "Messages", "Bytes", "Consumers"]);
        for (_, st) in &streams {
            table.row(vec![
                st.config.name.clone(),
                st.config.subjects.join(", "),
                st.state.messages.to_string(),
                output::bytes(count(st.state.bytes)),
                st.state.consumer_count.to_string(),
            ]);
        }
        table.title(format!("Streams: {}", streams.len())).print();
    }
    Ok(())
}

/// One row of `stream report` (also its `--json` form).
#[derive(Serialize)]
struct ReportRow<'a> {
    name: &'a str,
    storage: StorageType,
    retention: RetentionPolicy,
    replicas: i64,
    subjects: &'a [String],
    messages: u64,
    bytes: u64,
    consumers: u64,
    first_seq: u64,
    last_seq: u64,
    deleted: u64,
}

impl<'a> ReportRow<'a> {
    fn new(st: &'a StreamInfo) -> Self {
        let (c, state) = (&st.config, &st.state);
        ReportRow {
            name: &c.name,
            storage: c.storage,
            retention: c.retention,
            replicas: c.num_replicas,
            subjects: &c.subjects,
            messages: state.messages,
            bytes: state.bytes,
            consumers: state.consumer_count,
            first_seq: state.first_seq,
            last_seq: state.last_seq,
            deleted: state.num_deleted,
        }
    }
}

async fn report(api: &Api, json: bool) -> anyhow::Result<()> {
    let streams = api.streams().await?;
    let rows: Vec<ReportRow> = streams.iter().map(|(_, st)| ReportRow::new(st)).collect();
    if json {
        output::json(&serde_json::to_value(&rows)?);
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
            r.name.to_string(),
            word(&r.storage),
            word(&r.retention),
            r.replicas.to_string(),
            r.consumers.to_string(),
            r.messages.to_string(),
            output::bytes(count(r.bytes)),
            r.deleted.to_string(),
            r.subjects.join(", "),
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
    let body = StreamPurgeRequest {
        filter: subject.unwrap_or_default(),
        seq: seq.unwrap_or_default(),
        keep: keep.unwrap_or_default(),
    };
    let reply = api.request(ApiSubject::StreamPurge(name), &body).await?;
    let purged: StreamPurgeResponse = typed(&reply)?;
    println!("Purged {} messages from {name}", purged.purged);
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
    let body = MsgGetRequest {
        seq: seq.unwrap_or_default(),
        last_by_subj: last_for.unwrap_or_default(),
        ..MsgGetRequest::default()
    };
    let reply = api.request(ApiSubject::StreamMsgGet(name), &body).await?;
    if json {
        output::json(&reply);
        return Ok(());
    }
    print_stored(name, &typed::<MsgGetResponse>(&reply)?.message, raw)
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
        let body = MsgGetRequest {
            seq: next,
            next_by_subj: filter.clone(),
            ..MsgGetRequest::default()
        };
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
        let msg = typed::<MsgGetResponse>(&reply)?.message;
        print_stored(name, &msg, raw)?;
        shown += 1;
        next = msg.seq + 1;
    }
    if !raw && shown == 0 {
        println!("No messages in {name}");
    }
    Ok(())
}

/// Prints a `STREAM.MSG.GET` message.
fn print_stored(stream: &str, msg: &StoredMsg, raw: bool) -> anyhow::Result<()> {
    let data = msg.data.as_deref().unwrap_or_default();
    if raw {
        output::raw_line(data)?;
        return Ok(());
    }
    println!(
        "Item: {stream}#{} on subject {} received {}",
        msg.seq, msg.subject, msg.time
    );
    if let Some(hdrs) = &msg.hdrs {
        let text = String::from_utf8_lossy(hdrs);
        let mut lines: Vec<&str> = text.lines().skip(1).filter(|l| !l.is_empty()).collect();
        lines.sort_unstable();
        println!("\nHeaders:\n");
        for line in lines {
            println!("  {line}");
        }
    }
    println!("\n{}\n", String::from_utf8_lossy(data));
    Ok(())
}

/// A byte count for [`output::bytes`] (which shows negative sizes as unlimited).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
