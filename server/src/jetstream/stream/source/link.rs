//! One origin's copy task: creates the consumer on the origin through the `$JS.API`,
//! receives its messages, answers flow control, watches heartbeats, and hands the
//! messages to the stream's actor in batches. Any break (no reply, a gap in the
//! consumer sequence, three missed heartbeats, a store error) ends the session; the
//! next one starts from what the stream actually stored.
//!
//! `STREAM.INFO` shows a session's error as nats-server 2.15.1 does (recorded): the
//! origin's answer refusing the consumer (`stream not found` while the origin is missing
//! or deleted) and a store error, never a break of the link itself (a silent origin, an
//! unanswered create, an account that does not import the origin's API), which it
//! retries without a word.

use std::sync::Arc;
use std::sync::mpsc::TrySendError;
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::headers::{find, status};
use rill_protocol::jsapi::{ApiError, ErrorCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::store::{Incoming, Resume};
use super::{Origin, STREAM_IDENTITY};
use crate::account::Account;
use crate::jetstream::stream::Command;
use crate::jetstream::stream::core::StreamCore;
use crate::jetstream::stream::queue::QueueTx;
use crate::router::ByteString;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

/// Heartbeat asked of the origin's consumer.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which the session is restarted.
const QUIET: Duration = Duration::from_secs(3);
/// The origin removes a consumer idle this long (a session that ended).
const INACTIVE: Duration = Duration::from_secs(10);
/// How long the origin may take to answer the consumer create.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between sessions.
const RETRY: Duration = Duration::from_secs(1);
/// Messages buffered between the router and the task.
const BUFFER: usize = 8192;
/// Most messages handed to the stream's actor at once.
const BATCH: usize = 512;

/// What the router hands the task.
#[derive(Debug)]
struct Delivered {
    subject: Bytes,
    reply: Option<ByteString>,
    headers: Option<Bytes>,
    payload: Bytes,
}

#[derive(Debug)]
struct Inbox {
    tx: mpsc::Sender<Delivered>,
}

impl Subscriber for Inbox {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let d = Delivered {
            subject: msg.subject_bytes(),
            reply: msg.reply_text(),
            headers: msg.headers_bytes(),
            payload: msg.payload_bytes(),
        };
        match self.tx.try_send(d) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// Runs `f` on the stream's actor; `None` once the stream is gone.
async fn call<R, F>(tx: &QueueTx, f: F) -> Option<R>
where
    R: Send + 'static,
    F: FnOnce(&mut StreamCore) -> R + Send + 'static,
{
    let (done, rx) = oneshot::channel();
    let mut cmd = Command::Call(Box::new(move |core: &mut StreamCore| {
        let _ = done.send(f(core));
    }));
    loop {
        match tx.try_send(cmd) {
            Ok(()) => break,
            Err(TrySendError::Disconnected(_)) => return None,
            Err(TrySendError::Full(back)) => {
                cmd = *back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    rx.await.ok()
}

/// The copy task of one origin: sessions, one after the other, until aborted.
pub(super) async fn run(origin: Origin, account: Arc<Account>, tx: QueueTx) {
    loop {
        let o = origin.clone();
        let Some(resume) = call(&tx, move |core| core.origin_resume(&o)).await else {
            return;
        };
        let ended = session(&origin, &account, &tx, resume).await;
        let (stream, from) = (&origin.stream, &origin.cfg.name);
        match ended {
            Ended::Broke(why) => tracing::debug!(%stream, %from, why, "copy session ended"),
            Ended::Refused(error) => {
                tracing::debug!(%stream, %from, %error, "copy session ended");
                let key = origin.iname.clone();
                if call(&tx, move |core| core.origins.failed(&key, error))
                    .await
                    .is_none()
                {
                    return;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Why a session ended.
enum Ended {
    /// The origin refused the consumer, or the copy could not store: shown in
    /// `STREAM.INFO` until the next contact.
    Refused(ApiError),
    /// The link broke (silence, no answer, a gap): only retried.
    Broke(&'static str),
}

/// A private subscription in the account, removed on drop.
struct Sub {
    account: Arc<Account>,
    sub: Arc<Subscription>,
}

impl Sub {
    fn new(account: &Arc<Account>, subject: String, tx: mpsc::Sender<Delivered>) -> Self {
        let sub = Subscription::new(
            Bytes::from_static(b"origin"),
            Bytes::from(subject),
            None,
            Arc::new(Inbox { tx }),
        );
        account.router.subscribe(&sub);
        Self {
            account: Arc::clone(account),
            sub,
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.account.router.unsubscribe(&self.sub);
    }
}

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The consumer's name on the origin, as nats-server forms it: `JS_MIRROR_` or
/// `JS_SRC_` and a hash of the copying account, stream and source (the origin adds a
/// per-session suffix).
fn consumer_name(o: &Origin, account: &str) -> String {
    let kind = if o.mirror { "JS_MIRROR" } else { "JS_SRC" };
    let key = format!("{account} {} {}", o.stream, o.iname);
    format!("{kind}_{:08x}", crc32fast::hash(key.as_bytes()))
}

/// The origin's filters for `o`: its transforms' sources, else its filter subject.
fn filters(o: &Origin) -> Vec<&str> {
    if o.cfg.subject_transforms.is_empty() {
        Some(o.cfg.filter_subject.as_str())
            .filter(|f| !f.is_empty())
            .into_iter()
            .collect()
    } else {
        o.cfg
            .subject_transforms
            .iter()
            .map(|t| t.src.as_str())
            .collect()
    }
}

/// The consumer-create request for `resume`: subject and body. Like nats-server's,
/// the consumer is `direct` and `sourcing` (hidden from the origin's consumer lists),
/// with the copying account and stream in its metadata, and a single filter is also
/// put in the subject (`CONSUMER.CREATE.<origin>.<name>.<filter>`).
fn create_request(o: &Origin, account: &str, deliver: &str, resume: &Resume) -> (String, Value) {
    let name = consumer_name(o, account);
    let (acc_key, stream_key) = if o.mirror {
        ("_nats.mirror.acc", "_nats.mirror.stream")
    } else {
        ("_nats.src.acc", "_nats.src.stream")
    };
    let mut cfg = json!({
        "name": name,
        "deliver_subject": deliver,
        "ack_policy": "none",
        "ack_wait": 22 * 3600 * 1_000_000_000_i64,
        "max_deliver": 1,
        "idle_heartbeat": HEARTBEAT.as_nanos() as i64,
        "flow_control": true,
        "inactive_threshold": INACTIVE.as_nanos() as i64,
        "mem_storage": true,
        "direct": true,
        "sourcing": true,
        "metadata": {acc_key: account, stream_key: o.stream},
    });
    match resume {
        Resume::Seq(seq) => {
            cfg["deliver_policy"] = json!("by_start_sequence");
            cfg["opt_start_seq"] = json!(seq);
        }
        Resume::Time(t) => {
            cfg["deliver_policy"] = json!("by_start_time");
            cfg["opt_start_time"] = json!(t);
        }
        Resume::All => cfg["deliver_policy"] = json!("all"),
    }
    let api = o
        .cfg
        .external
        .as_ref()
        .map(|e| e.api.trim_end_matches('.').to_owned())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "$JS.API".to_owned());
    let mut subject = format!("{api}.CONSUMER.CREATE.{}", o.cfg.name);
    match filters(o).as_slice() {
        [] => {}
        [one] => {
            cfg["filter_subject"] = json!(one);
            subject = format!("{subject}.{name}.{one}");
        }
        many => cfg["filter_subjects"] = json!(many),
    }
    (subject, json!({"stream_name": o.cfg.name, "config": cfg}))
}

/// The deliver subject of a new session.
fn deliver_subject(o: &Origin) -> String {
    let id = token();
    match o
        .cfg
        .external
        .as_ref()
        .map(|e| e.deliver.trim_end_matches('.'))
    {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}.S.{id}"),
        _ if o.mirror => format!("$JS.M.{id}"),
        _ => format!("$JS.S.{id}"),
    }
}

/// One consumer's life; returns why it ended.
async fn session(o: &Origin, account: &Arc<Account>, tx: &QueueTx, resume: Resume) -> Ended {
    let (dtx, mut rx) = mpsc::channel(BUFFER);
    // A durable sourcing consumer (`consumer`) exists already: only listen to it.
    let durable = o.cfg.consumer.as_ref().map(|c| c.deliver_subject.clone());
    let deliver = durable.clone().unwrap_or_else(|| deliver_subject(o));
    let _deliveries = Sub::new(account, deliver.clone(), dtx.clone());
    let mut expect_cseq = None;
    let mut early_msgs = Vec::new();
    let mut session_origin = o.clone();
    if durable.is_none() {
        let reply = format!("$JSC.R.{}", token());
        let _replies = Sub::new(account, reply.clone(), dtx);
        let (subject, body) = create_request(o, &account.name, &deliver, &resume);
        let body = Bytes::from(body.to_string());
        let (subject, reply) = (ByteString::from(subject), ByteString::from(reply));
        account
            .router
            .publish(0, true, &Msg::new(&subject, Some(&reply), None, &body));
        let identity = match await_created(&mut rx, &reply).await {
            Ok((early, identity)) => {
                early_msgs = early;
                identity
            }
            Err(e) => return e,
        };
        if let Some(id) = identity {
            let (origin, known) = (o.clone(), id.clone());
            if call(tx, move |core| core.same_origin(&origin, &known)).await != Some(true) {
                return Ended::Broke("source stream was deleted and made again");
            }
            session_origin.identity = Some(id);
        }
        expect_cseq = Some(1);
    }
    let o = &session_origin;
    if !early_msgs.is_empty()
        && let Err(e) = handle(o, account, tx, early_msgs, &mut expect_cseq).await
    {
        return e;
    }
    loop {
        let first = match tokio::time::timeout(QUIET, rx.recv()).await {
            Ok(Some(d)) => d,
            Ok(None) => return Ended::Broke("source subscription closed"),
            Err(_) => return Ended::Broke("source heartbeat missed"),
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        if let Err(e) = handle(o, account, tx, batch, &mut expect_cseq).await {
            return e;
        }
    }
}

/// Waits for the consumer-create reply; an error reply is the session's error.
/// Returns what the consumer delivered before its reply arrived, and the origin's
/// identity (`Nats-Stream-Identity`) when it gave one.
async fn await_created(
    rx: &mut mpsc::Receiver<Delivered>,
    reply: &str,
) -> Result<(Vec<Delivered>, Option<String>), Ended> {
    let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
    let mut early = Vec::new();
    loop {
        let d = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| Ended::Broke("source consumer create timed out"))?
            .ok_or(Ended::Broke("source subscription closed"))?;
        if d.subject != reply.as_bytes() {
            early.push(d);
            continue;
        }
        if d.headers.as_deref().and_then(status) == Some(503) {
            return Err(Ended::Broke("no responders for the source's API"));
        }
        let v: Value = serde_json::from_slice(&d.payload).unwrap_or(Value::Null);
        return match v.get("error") {
            Some(e) => Err(Ended::Refused(
                serde_json::from_value(e.clone()).unwrap_or_else(|_| {
                    ErrorCode::STREAM_GENERAL.err("source consumer create failed")
                }),
            )),
            None => {
                let identity = d
                    .headers
                    .as_deref()
                    .and_then(|h| find(h, STREAM_IDENTITY))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .filter(|v| !v.is_empty());
                Ok((early, identity))
            }
        };
    }
}

/// Handles one batch: stores the messages, then answers flow control and notes
/// heartbeats (in arrival order, so a flow-control reply follows what it covers).
async fn handle(
    o: &Origin,
    account: &Arc<Account>,
    tx: &QueueTx,
    batch: Vec<Delivered>,
    expect_cseq: &mut Option<u64>,
) -> Result<(), Ended> {
    let mut msgs = Vec::new();
    let mut fc_replies = Vec::new();
    let mut heartbeat = false;
    for d in batch {
        if d.headers.as_deref().and_then(status) == Some(100) {
            match d.reply {
                Some(r) if !r.is_empty() => fc_replies.push(r),
                _ => heartbeat = true,
            }
            continue;
        }
        let Some(m) = Incoming::parse(
            d.subject,
            d.reply.as_deref().map(str::as_bytes),
            d.headers,
            d.payload,
        ) else {
            continue;
        };
        if expect_cseq.is_some_and(|want| m.cseq != want) {
            return Err(Ended::Broke("source consumer sequence gap"));
        }
        *expect_cseq = Some(m.cseq + 1);
        msgs.push(m);
    }
    let origin = o.clone();
    let stored = call(tx, move |core| {
        core.store_from_origin(&origin, msgs, heartbeat)
    })
    .await;
    match stored {
        None => return Err(Ended::Broke("the copying stream is gone")),
        Some(Err(e)) => return Err(Ended::Refused(e)),
        Some(Ok(())) => {}
    }
    for r in fc_replies {
        let empty = Bytes::new();
        account
            .router
            .publish(0, true, &Msg::new(&r, None, None, &empty));
    }
    Ok(())
}
