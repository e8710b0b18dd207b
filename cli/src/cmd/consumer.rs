//! `rill consumer`: add, edit, info, ls, rm, next, pause and reset, as `$JS.API.CONSUMER.*` requests
//! built from the protocol crate's types (pause and reset are 2.11/2.14 APIs async-nats does not wrap).

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures::StreamExt as _;
use rill_protocol::jsapi::{
    AckPolicy, ApiSubject, ConsumerAction, ConsumerConfig, ConsumerInfo, ConsumerPauseRequest,
    ConsumerPauseResponse, ConsumerResetRequest, ConsumerResetResponse, Nanos, NextRequest,
    SequenceInfo,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::consumer_flags::ConsumerFlags;
use crate::connect::ConnOpts;
use crate::jsapi::{Api, Kept, typed};
use crate::output::{self, Table, word, yes_no};
use crate::parse;

/// `rill consumer` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Create a durable consumer (never prompts)
    #[command(alias = "create", alias = "new")]
    Add {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        #[command(flatten)]
        flags: ConsumerFlags,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long)]
        defaults: bool,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Change a consumer's configuration
    #[command(alias = "update")]
    Edit {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        #[command(flatten)]
        flags: ConsumerFlags,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Show a consumer's configuration and state
    Info {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// List a stream's consumers
    #[command(alias = "list")]
    Ls {
        /// Stream name
        stream: String,
        /// Print the server's consumer infos as JSON
        #[arg(long)]
        json: bool,
        /// Print only the names, one per line
        #[arg(long, short = 'n')]
        names: bool,
    },
    /// Delete a consumer
    #[command(alias = "delete", alias = "del")]
    Rm {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Fetch messages from a pull consumer, acknowledging each
    Next {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        /// How many messages to fetch
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Do not acknowledge the messages
        #[arg(long)]
        no_ack: bool,
        /// Print only payloads, one per line
        #[arg(long)]
        raw: bool,
    },
    /// Pause delivery until a time, or resume it (server 2.11+)
    Pause {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        /// Pause for this long (e.g. 10m) or until this RFC 3339 time
        #[arg(long, required_unless_present = "resume", value_name = "DURATION|TIME")]
        until: Option<String>,
        /// Resume a paused consumer
        #[arg(long, conflicts_with = "until")]
        resume: bool,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
    /// Rewind a consumer to its ack floor, or to a stream sequence (server 2.14+)
    Reset {
        /// Stream name
        stream: String,
        /// Consumer name
        name: String,
        /// Stream sequence to deliver next
        #[arg(long)]
        seq: Option<u64>,
        /// Print the server's JSON reply
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `rill consumer` subcommand.
pub(crate) async fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let api = Api::new(conn.connect().await?);
    match cmd {
        Cmd::Add {
            stream,
            name,
            flags,
            json,
            ..
        } => add(&api, &stream, &name, &flags, json).await,
        Cmd::Edit {
            stream,
            name,
            flags,
            json,
        } => edit(&api, &stream, &name, &flags, json).await,
        Cmd::Info { stream, name, json } => {
            let info = api
                .request(
                    ApiSubject::ConsumerInfo {
                        stream: &stream,
                        consumer: &name,
                    },
                    &(),
                )
                .await?;
            show_info(&info, json)
        }
        Cmd::Ls {
            stream,
            json,
            names,
        } => ls(&api, &stream, json, names).await,
        Cmd::Rm { stream, name, .. } => {
            api.request(
                ApiSubject::ConsumerDelete {
                    stream: &stream,
                    consumer: &name,
                },
                &(),
            )
            .await?;
            println!("Deleted consumer {stream} > {name}");
            Ok(())
        }
        Cmd::Next {
            stream,
            name,
            count,
            no_ack,
            raw,
        } => next(&api, conn.timeout, &stream, &name, count, !no_ack, raw).await,
        Cmd::Pause {
            stream,
            name,
            until,
            json,
            ..
        } => pause(&api, &stream, &name, until, json).await,
        Cmd::Reset {
            stream,
            name,
            seq,
            json,
        } => reset(&api, &stream, &name, seq, json).await,
    }
}

/// `CONSUMER.CREATE`'s body with a config that may carry fields rill does not model (an edit).
#[derive(Serialize)]
struct CreateRequest<'a> {
    stream_name: &'a str,
    config: &'a Kept<ConsumerConfig>,
    action: ConsumerAction,
}

async fn create(
    api: &Api,
    stream: &str,
    name: &str,
    config: &Kept<ConsumerConfig>,
    action: ConsumerAction,
    json: bool,
) -> anyhow::Result<()> {
    let body = CreateRequest {
        stream_name: stream,
        config,
        action,
    };
    let subject = ApiSubject::ConsumerCreate {
        stream,
        consumer: Some(name),
        filter: None,
    };
    let info = api.request(subject, &body).await?;
    show_info(&info, json)
}

async fn add(
    api: &Api,
    stream: &str,
    name: &str,
    flags: &ConsumerFlags,
    json: bool,
) -> anyhow::Result<()> {
    let mut config = Kept {
        known: ConsumerConfig {
            durable_name: name.into(),
            name: name.into(),
            ack_policy: AckPolicy::Explicit,
            ..ConsumerConfig::default()
        },
        other: serde_json::Map::new(),
    };
    flags.apply(&mut config.known)?;
    create(api, stream, name, &config, ConsumerAction::Create, json).await
}

async fn edit(
    api: &Api,
    stream: &str,
    name: &str,
    flags: &ConsumerFlags,
    json: bool,
) -> anyhow::Result<()> {
    let subject = ApiSubject::ConsumerInfo {
        stream,
        consumer: name,
    };
    let current = api.request(subject, &()).await?;
    let mut config: Kept<ConsumerConfig> = typed(&current["config"])?;
    flags.apply(&mut config.known)?;
    create(api, stream, name, &config, ConsumerAction::Update, json).await
}

fn filters(c: &ConsumerConfig) -> String {
    if c.filter_subjects.is_empty() {
        c.filter_subject.clone()
    } else {
        c.filter_subjects.join(", ")
    }
}

fn mode(c: &ConsumerConfig) -> String {
    if c.deliver_subject.is_empty() {
        "pull".to_string()
    } else {
        format!("push to {}", c.deliver_subject)
    }
}

fn show_info(reply: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(reply);
        return Ok(());
    }
    let info: ConsumerInfo = typed(reply)?;
    let c = &info.config;
    println!(
        "Information for Consumer {} > {} created {}\n",
        info.stream_name, info.name, info.created
    );
    output::section(
        "Configuration",
        &[
            ("Name", info.name.clone()),
            ("Description", c.description.clone()),
            ("Mode", mode(c)),
            ("Deliver Group", c.deliver_group.clone()),
            ("Filter Subjects", filters(c)),
            ("Deliver Policy", word(&c.deliver_policy)),
            ("Start Sequence", shown(c.opt_start_seq)),
            ("Ack Policy", word(&c.ack_policy)),
            ("Ack Wait", output::nanos(c.ack_wait.0)),
            ("Replay Policy", word(&c.replay_policy)),
            ("Max Deliver", output::limit(c.max_deliver)),
            ("Max Ack Pending", output::limit(c.max_ack_pending)),
            ("Max Waiting Pulls", shown(c.max_waiting)),
        ],
    );
    output::section("State", &state_rows(&info));
    Ok(())
}

/// A number the server omits when zero: empty then.
fn shown<N: Default + PartialEq + ToString>(n: N) -> String {
    if n == N::default() {
        String::new()
    } else {
        n.to_string()
    }
}

fn seq_pair(v: &SequenceInfo) -> String {
    format!(
        "consumer seq {} / stream seq {}",
        v.consumer_seq, v.stream_seq
    )
}

fn state_rows(info: &ConsumerInfo) -> Vec<(&'static str, String)> {
    vec![
        ("Last Delivered", seq_pair(&info.delivered)),
        ("Ack Floor", seq_pair(&info.ack_floor)),
        ("Outstanding Acks", info.num_ack_pending.to_string()),
        ("Redelivered", info.num_redelivered.to_string()),
        ("Unprocessed", info.num_pending.to_string()),
        ("Waiting Pulls", info.num_waiting.to_string()),
        ("Paused", yes_no(info.paused)),
    ]
}

async fn ls(api: &Api, stream: &str, json: bool, names: bool) -> anyhow::Result<()> {
    let mut consumers = api
        .list_all(ApiSubject::ConsumerList(stream), "consumers")
        .await?
        .into_iter()
        .map(|raw| typed::<ConsumerInfo>(&raw).map(|info| (raw, info)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    consumers.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    if json {
        let raw: Vec<&Value> = consumers.iter().map(|(raw, _)| raw).collect();
        output::json(&json!({ "total": consumers.len(), "consumers": raw }));
    } else if names {
        for (_, c) in &consumers {
            println!("{}", c.name);
        }
    } else if consumers.is_empty() {
        println!("No consumers on stream {stream}");
    } else {
        let mut table = Table::new(&[
            "Name",
            "Mode",
            "Filter",
            "Ack Pending",
            "Unprocessed",
            "Redelivered",
        ]);
        for (_, c) in &consumers {
            let push = !c.config.deliver_subject.is_empty();
            table.row(vec![
                c.name.clone(),
                if push { "push" } else { "pull" }.to_string(),
                filters(&c.config),
                c.num_ack_pending.to_string(),
                c.num_pending.to_string(),
                c.num_redelivered.to_string(),
            ]);
        }
        table
            .title(format!("Consumers on {stream}: {}", consumers.len()))
            .print();
    }
    Ok(())
}

/// Fetches `count` messages with one pull request on a private inbox (JetStream deliveries keep their
/// original subject, so async-nats's request muxer cannot route them), waiting up to `timeout`.
async fn next(
    api: &Api,
    timeout: Duration,
    stream: &str,
    name: &str,
    count: u64,
    ack: bool,
    raw: bool,
) -> anyhow::Result<()> {
    let client = api.client();
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .context("subscribe to inbox")?;
    let expires = timeout.max(Duration::from_millis(100));
    let body = serde_json::to_vec(&NextRequest {
        batch: i64::try_from(count).unwrap_or(i64::MAX),
        expires: Nanos::from_duration(expires),
        ..NextRequest::default()
    })?;
    let subject = ApiSubject::ConsumerNext {
        stream,
        consumer: name,
    }
    .to_string();
    client
        .publish_with_reply(subject, inbox, Bytes::from(body))
        .await
        .context("send pull request")?;
    client.flush().await.context("flush pull request")?;
    let deadline = tokio::time::Instant::now() + expires + Duration::from_millis(500);
    let mut n = 0u64;
    while n < count {
        let msg = match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(msg)) => msg,
            _ => bail!("only {n} of {count} messages from {stream} > {name} within {expires:?}"),
        };
        if let Some(status) = msg.status {
            let code = u16::from(status);
            if code == 100 {
                continue;
            }
            if code == 503 {
                bail!(
                    "no responders for {stream} > {name}: does the consumer exist and is JetStream enabled?"
                );
            }
            let text = msg.description.clone().unwrap_or_default();
            bail!("only {n} of {count} messages from {stream} > {name}: {code} {text}");
        }
        n += 1;
        print_next(n, &msg, raw)?;
        if ack && let Some(reply) = msg.reply.clone() {
            client
                .publish(reply, Bytes::from_static(b"+ACK"))
                .await
                .context("ack")?;
            client.flush().await.context("flush ack")?;
            if !raw {
                println!("Acknowledged message\n");
            }
        }
    }
    Ok(())
}

fn print_next(n: u64, msg: &async_nats::Message, raw: bool) -> anyhow::Result<()> {
    if raw {
        return Ok(output::raw_line(&msg.payload)?);
    }
    let meta = msg.reply.as_deref().and_then(ack_meta).unwrap_or_default();
    println!("[#{n}] subject: {}{meta}", msg.subject);
    if let Some(h) = &msg.headers {
        output::headers(h);
    }
    println!("\n{}\n", String::from_utf8_lossy(&msg.payload));
    Ok(())
}

/// " / stream seq N / delivered D" from a v1 or v2 `$JS.ACK` reply subject.
fn ack_meta(reply: &str) -> Option<String> {
    let tokens: Vec<&str> = reply.split('.').collect();
    let base = match tokens.len() {
        9 => 4,
        n if n >= 11 => 6,
        _ => return None,
    };
    Some(format!(
        " / stream seq {} / delivered {}",
        tokens.get(base + 1)?,
        tokens.get(base)?
    ))
}

async fn pause(
    api: &Api,
    stream: &str,
    name: &str,
    until: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let body = ConsumerPauseRequest {
        pause_until: match &until {
            Some(until) => Some(parse::time_or_duration(until, true)?.into()),
            None => None,
        },
    };
    let subject = ApiSubject::ConsumerPause {
        stream,
        consumer: name,
    };
    let reply = api.request(subject, &body).await?;
    if json {
        output::json(&reply);
        return Ok(());
    }
    let paused: ConsumerPauseResponse = typed(&reply)?;
    if paused.paused {
        println!("Paused {stream} > {name} until {}", paused.pause_until);
    } else {
        println!("Resumed {stream} > {name}");
    }
    Ok(())
}

async fn reset(
    api: &Api,
    stream: &str,
    name: &str,
    seq: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let body = seq.map(|seq| ConsumerResetRequest { seq });
    let subject = ApiSubject::ConsumerReset {
        stream,
        consumer: name,
    };
    let reply = api.request(subject, &body).await?;
    if json {
        output::json(&reply);
    } else {
        let reset: ConsumerResetResponse = typed(&reply)?;
        println!(
            "Reset {stream} > {name}: next stream sequence {}",
            reset.reset_seq
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subject_forms() {
        assert_eq!(
            ack_meta("$JS.ACK.S.C.1.7.7.123.0").unwrap(),
            " / stream seq 7 / delivered 1"
        );
        assert_eq!(
            ack_meta("$JS.ACK._.HASH.S.C.2.9.9.123.0.tok").unwrap(),
            " / stream seq 9 / delivered 2"
        );
        assert!(ack_meta("_INBOX.x").is_none());
    }
}
