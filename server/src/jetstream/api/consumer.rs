//! `$JS.API.CONSUMER.*`: CREATE (all three subject forms), DURABLE.CREATE, INFO, DELETE,
//! NAMES, LIST, PAUSE, RESET, and MSG.NEXT for consumers that do not exist.
//!
//! Validation follows the call order documented in `jetstream::validate`. Pull requests
//! to an existing consumer reach its actor through the actor's own subscription; this
//! file only answers `503` when there is no such consumer, as nats-server does.

use std::sync::Arc;

use bytes::Bytes;
use rand::RngExt;
use rill_protocol::jsapi::{
    API_LEVEL, ActionKind, ApiError, ApiSubject, ConsumerCreateResponse, ConsumerDeleteResponse,
    ConsumerInfo, ConsumerInfoResponse, ConsumerLeaderStepdownResponse, ConsumerListResponse,
    ConsumerNamesResponse, ConsumerPauseRequest, ConsumerResetRequest, CreateConsumerRequest,
    ErrorCode, LIST_PAGE_LIMIT, NAMES_PAGE_LIMIT, Paged, PagedRequest, RetentionPolicy,
};

use super::{Reply, Request};
use crate::jetstream::cluster;
use crate::jetstream::consumer::{self, ConsumerHandle, Outbox, events, service, status};
use crate::jetstream::stream::StreamHandle;
use crate::jetstream::{JetStream, validate};
use crate::router::Msg;
use rill_protocol::HeaderMap;
use rill_protocol::compat::NATS_VERSION;

fn stream_of(js: &JetStream, name: &str) -> Result<StreamHandle, ApiError> {
    js.stream(name)
        .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())
}

fn lookup(js: &JetStream, (s, c): (&str, &str)) -> Result<ConsumerHandle, ApiError> {
    stream_of(js, s)?;
    js.consumers
        .get(s, c)
        .ok_or_else(|| ErrorCode::CONSUMER_NOT_FOUND.error())
}

/// The info as replies show it (stored metadata plus `_nats.ver` / `_nats.level`).
fn shown(mut info: ConsumerInfo) -> ConsumerInfo {
    info.config.metadata = validate::reply_metadata(&info.config.metadata, NATS_VERSION, API_LEVEL);
    info
}

fn random_name() -> String {
    const ALPHA: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(ALPHA[rng.random_range(0..ALPHA.len())]))
        .collect()
}

async fn configs_of(
    js: &JetStream,
    stream: &str,
    except: &str,
) -> Vec<rill_protocol::jsapi::ConsumerConfig> {
    let mut out = Vec::new();
    for (name, h) in js.consumers.list(stream) {
        if name != except
            && let Ok(i) = h.info().await
        {
            out.push(i.config);
        }
    }
    out
}

/// The reply to a consumer create. A mirror's or source's consumer (`sourcing`), or
/// any `direct` one, is answered with the stream's identity in `Nats-Stream-Identity`,
/// as nats-server 2.15.1 does (recorded: either flag alone gets it, neither does not):
/// the copying stream writes it into each message's `Nats-Stream-Source` and notices
/// from it when the origin was deleted and made again (its sequences restart).
pub(super) async fn create_reply(
    js: &Arc<JetStream>,
    target: validate::CreateTarget,
    req: &Request,
) -> Reply {
    let created = create(js, target, req).await;
    let identity = match &created {
        Ok(r) if r.info.config.sourcing || r.info.config.direct => {
            stream_identity(js, &r.info.stream_name).await
        }
        _ => None,
    };
    let mut reply = Reply::from(created);
    if let Some(identity) = identity {
        let mut headers = HeaderMap::new();
        headers.insert(crate::jetstream::stream::STREAM_IDENTITY, identity);
        reply.headers = Some(headers.to_bytes());
    }
    reply
}

/// The identity of `stream`, if it exists.
async fn stream_identity(js: &JetStream, stream: &str) -> Option<String> {
    let created = js.stream(stream)?.info().await.ok()?.created;
    Some(crate::jetstream::stream::stream_identity(
        &js.account.name,
        stream,
        created.unix_nanos(),
    ))
}

pub(super) async fn create(
    js: &Arc<JetStream>,
    target: validate::CreateTarget,
    req: &Request,
) -> Result<ConsumerCreateResponse, ApiError> {
    let mut body: CreateConsumerRequest = req.parse()?;
    validate::consumer_create_request(&target, &mut body)?;
    if js.share.meta().is_none() {
        validate::standalone_consumer_replicas(&body.config)?;
    }
    let _locked = js.api_locks.stream(&target.stream).await;
    let stream = stream_of(js, &target.stream)?;
    let scfg = stream.config().await?;
    let account_max = js.limits().max_ack_pending;
    let cfg = validate::consumer_config(body.config, &scfg, account_max, body.pedantic)?;
    let name = match cfg.name.as_str() {
        "" => random_name(),
        // A mirror's or source's consumer: each session's gets a fresh name.
        n if cfg.direct => format!("{n}-{}", random_name()),
        n => n.to_owned(),
    };
    let others = configs_of(js, &scfg.name, &name).await;
    if let Some(meta) = js.share.meta()
        && cluster::consumer::replicated(&cfg, &scfg)?
    {
        let mut cfg = cfg;
        cfg.name = name;
        let info = cluster::consumer::create(js, meta, &scfg, cfg, body.action, &others).await?;
        return Ok(ConsumerCreateResponse { info: shown(info) });
    }
    if let Some(existing) = js.consumers.get(&scfg.name, &name) {
        let old = existing.info().await?.config;
        validate::consumer_action_create_same(body.action, &old, &cfg)?;
        if scfg.retention == RetentionPolicy::WorkQueue {
            validate::workqueue_unique(&cfg, others.iter())?;
        }
        let mut new = validate::consumer_update(&old, cfg)?;
        validate::stamp_consumer_metadata(&mut new);
        let info = existing.update(new).await?;
        return Ok(ConsumerCreateResponse { info: shown(info) });
    }
    let mut cfg = validate::consumer_new(body.action, cfg, &scfg, others.iter())?;
    js.check_consumer_limit()?;
    cfg.name = name;
    validate::stamp_consumer_metadata(&mut cfg);
    let created = crate::jetstream::stream::timestamp(crate::jetstream::store::now_ns());
    let spec = service::spec(js, stream, &scfg, cfg, created, false)?;
    let (_, mut info) = consumer::start(spec).await?;
    if let Some(meta) = js.share.meta() {
        let (s, c) = (&info.stream_name, &info.name);
        info.cluster = Some(cluster::consumer::cluster_info(meta, js.account_name(), s, c).await);
    }
    let out = Outbox::new(Arc::clone(&js.account));
    events::consumer_action(&out, &info.stream_name, &info.name, ActionKind::Create);
    Ok(ConsumerCreateResponse { info: shown(info) })
}

pub(super) async fn info(
    js: &JetStream,
    at: (&str, &str),
) -> Result<ConsumerInfoResponse, ApiError> {
    let h = lookup(js, at)?;
    let mut info = h.info().await?;
    if let Some(meta) = js.share.meta() {
        let (s, c) = at;
        let block = cluster::consumer::cluster_info(meta, js.account_name(), s, c).await;
        info.cluster = Some(block);
    }
    Ok(ConsumerInfoResponse { info: shown(info) })
}

/// Deletes a consumer: its files go to the trash first (the commit point; if that fails
/// the consumer keeps running and the client gets the error), then it stops.
pub(super) async fn delete(
    js: &JetStream,
    at: (&str, &str),
) -> Result<ConsumerDeleteResponse, ApiError> {
    let _locked = js.api_locks.stream(at.0).await;
    let h = lookup(js, at)?;
    if let Some(meta) = js.share.meta()
        && let Some(a) = cluster::consumer::assignment(meta, js.account_name(), at.0, at.1).await
    {
        cluster::consumer::delete(js, meta, &a).await?;
        return Ok(ConsumerDeleteResponse { success: true });
    }
    let trash = js.trash_consumer(at.0, at.1).await?;
    h.stop(true).await;
    if let Some(s) = js.stream(at.0) {
        s.unregister_consumer(at.1).await?;
    }
    if let Some(trash) = trash {
        js.remove_trash(trash).await;
    }
    let out = Outbox::new(Arc::clone(&js.account));
    events::consumer_action(&out, at.0, at.1, ActionKind::Delete);
    Ok(ConsumerDeleteResponse { success: true })
}

fn page<T: Clone>(items: &[T], offset: usize, limit: usize) -> (Vec<T>, Paged) {
    let start = offset.min(items.len());
    let end = (start + limit).min(items.len());
    let paged = Paged {
        total: items.len(),
        offset,
        limit,
    };
    (items[start..end].to_vec(), paged)
}

pub(super) async fn names(
    js: &JetStream,
    stream: &str,
    req: &Request,
) -> Result<ConsumerNamesResponse, ApiError> {
    let body: PagedRequest = req.parse()?;
    stream_of(js, stream)?;
    let all = listed_names(js, stream).await;
    let (consumers, paged) = page(&all, body.offset, NAMES_PAGE_LIMIT);
    Ok(ConsumerNamesResponse { paged, consumers })
}

pub(super) async fn list(
    js: &JetStream,
    stream: &str,
    req: &Request,
) -> Result<ConsumerListResponse, ApiError> {
    let body: PagedRequest = req.parse()?;
    stream_of(js, stream)?;
    let all = listed_names(js, stream).await;
    let (chosen, paged) = page(&all, body.offset, LIST_PAGE_LIMIT);
    let mut consumers = Vec::with_capacity(chosen.len());
    let mut missing = Vec::new();
    for name in chosen {
        match listed_info(js, stream, &name).await {
            Some(i) => consumers.push(i),
            None => missing.push(name),
        }
    }
    Ok(ConsumerListResponse {
        paged,
        consumers,
        missing,
    })
}

/// The consumers CONSUMER.NAMES and LIST show: those running here and, in a cluster,
/// the replicated ones led elsewhere; sorted.
async fn listed_names(js: &JetStream, stream: &str) -> Vec<String> {
    let mut all: Vec<String> = js
        .consumers
        .listed(stream)
        .into_iter()
        .map(|(n, _)| n.into_string())
        .collect();
    if let Some(meta) = js.share.meta() {
        let replicated = cluster::consumer::of_stream(meta, js.account_name(), stream).await;
        all.extend(replicated.into_keys());
        all.sort();
        all.dedup();
    }
    all
}

/// The info of a listed consumer: from its actor here, else from its group's leader.
async fn listed_info(js: &JetStream, stream: &str, name: &str) -> Option<ConsumerInfo> {
    let mut info = match js.consumers.get(stream, name) {
        Some(h) => h.info().await.ok()?,
        None => {
            let meta = js.share.meta()?;
            let a = cluster::consumer::assignment(meta, js.account_name(), stream, name).await?;
            cluster::consumer::leader_info(js, meta, &a).await.ok()?
        }
    };
    if let Some(meta) = js.share.meta()
        && info.cluster.is_none()
    {
        let block = cluster::consumer::cluster_info(meta, js.account_name(), stream, name).await;
        info.cluster = Some(block);
    }
    Some(info)
}

pub(super) async fn pause(
    js: &JetStream,
    at: (&str, &str),
    req: &Request,
) -> Result<rill_protocol::jsapi::ConsumerPauseResponse, ApiError> {
    let body: ConsumerPauseRequest = req.parse()?;
    let _locked = js.api_locks.stream(at.0).await;
    let h = lookup(js, at)?;
    let r = h.pause(body.pause_until).await?;
    let out = Outbox::new(Arc::clone(&js.account));
    events::paused(&out, at.0, at.1, r.paused, r.pause_until);
    Ok(r)
}

pub(super) async fn reset(
    js: &JetStream,
    at: (&str, &str),
    req: &Request,
) -> Result<rill_protocol::jsapi::ConsumerResetResponse, ApiError> {
    let body: ConsumerResetRequest = req.parse()?;
    let _locked = js.api_locks.stream(at.0).await;
    let h = lookup(js, at)?;
    let mut r = h.reset(body.seq).await?;
    r.info = shown(r.info);
    Ok(r)
}

/// `CONSUMER.UNPIN`: the group's pinned client loses its pin (see `consumer::priority`).
pub(super) async fn unpin(
    js: &JetStream,
    at: (&str, &str),
    req: &Request,
) -> Result<rill_protocol::jsapi::ConsumerUnpinResponse, ApiError> {
    let body: rill_protocol::jsapi::ConsumerUnpinRequest = req.parse_required()?;
    let h = lookup(js, at)?;
    h.unpin(body.group).await
}

/// A pull to a consumer that does not exist gets no-responders, as from nats-server.
pub(super) fn next_missing(js: &JetStream, at: (&str, &str), req: &Request) {
    if js.consumers.get(at.0, at.1).is_some() {
        return;
    }
    let headers = status::no_responders(&req.subject);
    let empty = Bytes::new();
    js.account
        .router
        .publish(0, true, &Msg::new(&req.reply, None, Some(&headers), &empty));
}

/// `CONSUMER.LEADER.STEPDOWN` (on the consumer leader's server, `forward`): a
/// replicated consumer's leader hands its group over (`cluster::consumer`); a consumer
/// that lives on one server of a cluster answers success and stays, as nats-server's
/// R1 consumers do; a server outside a cluster refuses. `None`: no answer (no leader
/// now).
pub(super) async fn leader_stepdown(
    js: &Arc<JetStream>,
    at: (&str, &str),
    req: &Request,
    api: &ApiSubject<'_>,
) -> Option<Reply> {
    let Some(meta) = js.share.meta() else {
        return super::unsupported::reply(api);
    };
    // A body that does not parse is taken as none, as nats-server 2.15.1 does.
    let body = req
        .parse::<rill_protocol::jsapi::StreamLeaderStepdownRequest>()
        .unwrap_or_default();
    let done = match lookup(js, at) {
        Err(e) => Err(e),
        Ok(_) => match cluster::consumer::assignment(meta, js.account_name(), at.0, at.1).await {
            None => Ok(()),
            Some(a) => cluster::consumer::step_down(meta, &a, body.placement.as_ref()).await?,
        },
    };
    Some(stepdown_reply(done))
}

fn stepdown_reply(done: Result<(), ApiError>) -> Reply {
    Reply::from(done.map(|()| ConsumerLeaderStepdownResponse { success: true }))
}
