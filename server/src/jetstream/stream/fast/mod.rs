//! Fast batch publish (`allow_batched`, ADR-50 "fast ingest", nats-server 2.14): a
//! publisher streams messages that are stored as they arrive, and the server answers
//! on the batch's reply subjects only every `flow` messages, so the publisher keeps a
//! window of messages in flight instead of waiting for an ack per message.
//!
//! The batch lives in the reply subject: `<prefix>.<id>.<flow>.<gap>.<seq>.<op>.$FI`
//! with `op` 0 start, 1 append, 2 commit (stored), 3 commit without storing this
//! message (`eob`), 4 ping. As nats-server 2.15.1 answers (learned by running it):
//! - the start gets `{"type":"ack","seq":0,"msgs":<flow>}` before its message is
//!   stored; `flow` is the requested one, at most 500, 10 when 0 or unreadable;
//! - a message `seq` that is `flow` or more past the last ack gets
//!   `{"type":"ack","seq":<seq>,"msgs":<flow>}`; a ping answers the last ack again
//!   (or the one its sequence makes due);
//! - the stream shares a flow of 500 among its open batches: a batch started while
//!   others are open starts at 1, and each ack sets the flow to the least of twice the
//!   last one, the requested one and 500 / open batches (at least 1);
//! - a sequence ahead of the next expected one gets `{"type":"gap","last_seq":
//!   <expected>,"seq":<seq>}` (a ping ahead reports `seq + 1`): gap mode `ok` stores
//!   it and goes on, `fail` ends the batch; a sequence behind (a repeat, a restart at
//!   1) reports the gap and ends the batch in both modes, unstored;
//! - a message the stream refuses gets `{"type":"err","seq":..,"error":{..}}` (a
//!   duplicate `Nats-Msg-Id` is dropped silently); `fail` mode then ends the batch, or
//!   answers with the plain error when it was the first message;
//!   `Nats-Expected-Last-Msg-Id` failures get the plain error and the batch goes on;
//! - an ended batch answers with a PubAck carrying `batch` and `count` (the last
//!   batch sequence taken; an `eob` or refused commit counts up to the one before);
//! - errors: no `allow_batched` `10205` (before anything else), a malformed reply or
//!   a start/append/eob whose sequence does not fit (a start not at 1, an append or
//!   eob at 1) `10206`, an id over 64 bytes `10207`, a batch not open (never started,
//!   ended, or 10 s without a message) `10208`, over 1000 open fast batches on the
//!   stream `10211`. A commit at sequence 1 is a batch of one.
//!
//! Stored messages keep their own headers; nothing of the batch is stored with them.
//!
//! With `sync_interval: always` no flow ack leaves before the messages it acknowledges
//! are synced: nats-server 2.15.1 writes and fsyncs each batch message on its own and
//! its replies reach the socket after those fsyncs (strace: 25 pwrite+fsync pairs, then
//! the start ack, the acks at 10 and 20 and the PubAck in one writev). Here a reply due
//! while the stream has unsynced messages waits for the batch's group commit
//! ([`publish`]: `StreamCore::release_flows`); a failed sync turns its acks into errors.
//!
//! This module holds the batches' state and the reply rules; [`publish`] is the stream
//! core's side (its methods on `StreamCore`), so the core holds [`FastBatches`] without
//! the two importing each other.

use std::collections::HashMap;

use bytes::Bytes;
use rill_protocol::jsapi::{ApiError, ErrorCode};
use serde::Serialize;

mod publish;

/// The reply subject's last token marking a fast batch message.
const MARK: &[u8] = b".$FI";
const MAX_ID_LEN: usize = 64;
/// nats-server's largest flow.
const MAX_FLOW: u64 = 500;
/// The flow of a reply that asks for 0 or something unreadable.
const DEFAULT_FLOW: u64 = 10;
/// nats-server's open fast batches per stream.
const MAX_OPEN: usize = 1000;
/// The flow a stream shares among its open batches.
const SHARED_FLOW: u64 = 500;
/// A batch without a message for this long is dropped.
const TIMEOUT_NS: i64 = 10_000_000_000;

/// True when a publish's reply subject makes it part of a fast batch.
pub(super) fn is_fast(reply: &[u8]) -> bool {
    reply.ends_with(MARK)
}

/// The operation a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Start,
    Append,
    Commit,
    CommitEob,
    Ping,
}

/// A parsed fast batch reply subject.
#[derive(Debug, PartialEq, Eq)]
struct Reply<'a> {
    id: &'a str,
    flow: u64,
    gap_fail: bool,
    seq: u64,
    op: Op,
}

fn invalid() -> ApiError {
    ErrorCode::BATCH_PUBLISH_INVALID_PATTERN.error()
}

/// Reads `<prefix>.<id>.<flow>.<gap>.<seq>.<op>.$FI`.
fn parse(reply: &[u8]) -> Result<Reply<'_>, ApiError> {
    let reply = std::str::from_utf8(reply).map_err(|_| invalid())?;
    let mut t = reply.rsplitn(7, '.');
    let (_mark, op, seq, gap, flow, id, _prefix) = (
        t.next(),
        t.next().ok_or_else(invalid)?,
        t.next().ok_or_else(invalid)?,
        t.next().ok_or_else(invalid)?,
        t.next().ok_or_else(invalid)?,
        t.next().ok_or_else(invalid)?,
        t.next().ok_or_else(invalid)?,
    );
    let op = match op {
        "0" => Op::Start,
        "1" => Op::Append,
        "2" => Op::Commit,
        "3" => Op::CommitEob,
        "4" => Op::Ping,
        _ => return Err(invalid()),
    };
    let seq = seq
        .parse::<u64>()
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(invalid)?;
    let gap_fail = match gap {
        "ok" => false,
        "fail" => true,
        _ => return Err(invalid()),
    };
    if id.is_empty() {
        return Err(invalid());
    }
    if id.len() > MAX_ID_LEN {
        return Err(ErrorCode::BATCH_PUBLISH_INVALID_BATCH_ID.error());
    }
    let fits = match op {
        Op::Start => seq == 1,
        Op::Append | Op::CommitEob => seq > 1,
        Op::Commit | Op::Ping => true,
    };
    if !fits {
        return Err(invalid());
    }
    let flow = match flow.parse::<u64>() {
        Ok(0) | Err(_) => DEFAULT_FLOW,
        Ok(f) => f.min(MAX_FLOW),
    };
    Ok(Reply {
        id,
        flow,
        gap_fail,
        seq,
        op,
    })
}

/// What the server sends on a batch's reply subjects between its PubAcks.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Flow {
    Ack { seq: u64, msgs: u64 },
    Gap { last_seq: u64, seq: u64 },
    Err { seq: u64, error: ApiError },
}

/// One open fast batch.
#[derive(Debug)]
struct Open {
    /// The last batch sequence taken.
    last: u64,
    /// The batch sequence of the last flow ack.
    acked: u64,
    flow: u64,
    /// The flow asked for; `flow` grows to it after a slow start.
    max_flow: u64,
    gap_fail: bool,
    /// The stream sequence of the batch's last stored message.
    stored: Option<u64>,
    touched: i64,
}

impl Open {
    /// The flow ack a message at `seq` is due, if any, with the batch's new flow: twice
    /// the last (a slow start grows), within the requested one and the batch's share of
    /// the stream's among `open` batches.
    fn flow_ack(&mut self, seq: u64, open: usize) -> Option<Flow> {
        if seq < self.acked + self.flow {
            return None;
        }
        let share = (SHARED_FLOW / open.max(1) as u64).max(1);
        self.flow = (self.flow * 2).min(self.max_flow).min(share);
        self.acked = seq;
        Some(Flow::Ack {
            seq,
            msgs: self.flow,
        })
    }
}

/// A stream's open fast batches.
#[derive(Debug, Default)]
pub(crate) struct FastBatches {
    open: HashMap<String, Open>,
    /// Replies waiting for the sync of the messages before them, in order.
    unsynced: Vec<(Bytes, Flow)>,
}

impl FastBatches {
    /// When the oldest open batch times out.
    pub(crate) fn next_timeout(&self) -> Option<i64> {
        self.open.values().map(|b| b.touched + TIMEOUT_NS).min()
    }

    /// A failed sync: the waiting flow acks become errors (the messages they would
    /// acknowledge may be lost).
    pub(crate) fn sync_failed(&mut self, error: &ApiError) {
        for (_, flow) in &mut self.unsynced {
            if let Flow::Ack { seq, .. } = *flow {
                *flow = Flow::Err {
                    seq,
                    error: error.clone(),
                };
            }
        }
    }

    /// Drops the batches that timed out at `now`.
    pub(crate) fn expire(&mut self, now: i64) {
        self.open.retain(|_, b| b.touched + TIMEOUT_NS > now);
    }

    fn remove(&mut self, id: &str) -> Option<Open> {
        self.open.remove(id)
    }

    /// The flow ack a message at `seq` of batch `id` is due, if any.
    fn flow_ack(&mut self, id: &str, seq: u64) -> Option<Flow> {
        let open = self.open.len();
        self.open.get_mut(id)?.flow_ack(seq, open)
    }

    /// The batch a message belongs to, opened by a start (or a commit at 1); the
    /// start's first flow ack when it opened one.
    fn open(&mut self, r: &Reply<'_>, now: i64) -> Result<Option<Flow>, ApiError> {
        let opens = r.seq == 1 && matches!(r.op, Op::Start | Op::Commit);
        if self.open.contains_key(r.id) || !opens {
            let b = self
                .open
                .get_mut(r.id)
                .ok_or_else(|| ErrorCode::BATCH_PUBLISH_UNKNOWN_BATCH_ID.error())?;
            b.touched = now;
            return Ok(None);
        }
        if self.open.len() >= MAX_OPEN {
            return Err(ErrorCode::BATCH_PUBLISH_TOO_MANY_INFLIGHT.error());
        }
        let flow = if self.open.is_empty() { r.flow } else { 1 };
        let b = Open {
            last: 0,
            acked: 0,
            flow,
            max_flow: r.flow,
            gap_fail: r.gap_fail,
            stored: None,
            touched: now,
        };
        self.open.insert(r.id.to_owned(), b);
        Ok((r.op == Op::Start).then_some(Flow::Ack { seq: 0, msgs: flow }))
    }
}

/// How a message's batch sequence compares with the next expected one.
enum Order {
    Next,
    /// Messages were lost: gap mode decides.
    Ahead(u64),
    /// A repeat or a restart: the batch ends.
    Behind(u64),
}

fn order(seq: u64, expected: u64) -> Order {
    match seq.cmp(&expected) {
        std::cmp::Ordering::Equal => Order::Next,
        std::cmp::Ordering::Greater => Order::Ahead(expected),
        std::cmp::Ordering::Less => Order::Behind(expected),
    }
}

fn gap(last_seq: u64, seq: u64) -> Flow {
    Flow::Gap { last_seq, seq }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_parse_as_nats_server_reads_them() {
        let r = parse(b"_INBOX.abc.5.fail.1.0.$FI").expect("start");
        assert_eq!(
            r,
            Reply {
                id: "abc",
                flow: 5,
                gap_fail: true,
                seq: 1,
                op: Op::Start
            }
        );
        // The id is the token before the flow, whatever the prefix.
        assert_eq!(parse(b"a.b.y.10.ok.2.1.$FI").expect("append").id, "y");
        assert_eq!(parse(b"_INBOX.a.0.ok.1.0.$FI").expect("0").flow, 10);
        assert_eq!(parse(b"_INBOX.a.ten.ok.1.0.$FI").expect("ten").flow, 10);
        assert_eq!(parse(b"_INBOX.a.70000.ok.1.0.$FI").expect("big").flow, 500);
        assert_eq!(
            parse(b"_INBOX.a.10.ok.1.2.$FI").expect("commit").op,
            Op::Commit
        );
        for bad in [
            &b"b10.10.ok.1.0.$FI"[..],
            b"_INBOX.a.10.maybe.1.0.$FI",
            b"_INBOX.a.10.ok.1.9.$FI",
            b"_INBOX.a.10.ok.0.0.$FI",
            b"_INBOX.a.10.ok.x.0.$FI",
            b"_INBOX.a.10.ok.2.0.$FI",
            b"_INBOX.a.10.ok.1.1.$FI",
            b"_INBOX.a.10.ok.1.3.$FI",
        ] {
            let e = parse(bad).expect_err(std::str::from_utf8(bad).unwrap_or_default());
            assert_eq!(e.err_code, 10206);
        }
        let long = format!("_INBOX.{}.10.ok.1.0.$FI", "x".repeat(65));
        assert_eq!(parse(long.as_bytes()).expect_err("long").err_code, 10207);
        let max = format!("_INBOX.{}.10.ok.1.0.$FI", "x".repeat(64));
        assert!(parse(max.as_bytes()).is_ok());
    }

    fn slow(max_flow: u64) -> Open {
        Open {
            last: 0,
            acked: 0,
            flow: 1,
            max_flow,
            gap_fail: false,
            stored: None,
            touched: 0,
        }
    }

    fn acks(b: &mut Open, open: usize, upto: u64) -> Vec<(u64, u64)> {
        (1..=upto)
            .filter_map(|s| match b.flow_ack(s, open) {
                Some(Flow::Ack { seq, msgs }) => Some((seq, msgs)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn flow_acks_follow_the_flow_and_a_slow_start_doubles_it_within_the_share() {
        // nats-server 2.15.1's acks for a batch started beside others.
        let ramp = [(1, 2), (3, 4), (7, 8), (15, 10), (25, 10), (35, 10)];
        assert_eq!(acks(&mut slow(10), 2, 40), ramp);
        let share_16 = [(1, 2), (3, 4), (7, 8), (15, 16), (31, 16)];
        assert_eq!(acks(&mut slow(100), 31, 40), share_16);
        let share_4 = [(1, 2), (3, 4), (7, 4), (11, 4), (15, 4)];
        assert_eq!(acks(&mut slow(100), 101, 15), share_4);
        let share_1: Vec<(u64, u64)> = (1..=5).map(|s| (s, 1)).collect();
        assert_eq!(acks(&mut slow(100), 301, 5), share_1);
    }

    #[test]
    fn a_stream_holds_at_most_1000_open_batches() {
        fn start(id: &str) -> Reply<'_> {
            Reply {
                id,
                flow: 10,
                gap_fail: false,
                seq: 1,
                op: Op::Start,
            }
        }
        let mut a = FastBatches::default();
        for i in 0..MAX_OPEN {
            let id = i.to_string();
            assert!(a.open(&start(&id), 0).is_ok());
        }
        let e = a.open(&start("late"), 0).expect_err("over the limit");
        assert_eq!(e.err_code, 10211);
        a.remove("0");
        assert!(a.open(&start("late"), 0).is_ok());
        a.expire(TIMEOUT_NS);
        assert!(a.open.is_empty());
    }
}
