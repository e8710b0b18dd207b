//! `$JS.API.STREAM.{CREATE,UPDATE,INFO,DELETE,NAMES,LIST,PURGE,LEADER.STEPDOWN,PEER.REMOVE}`.
//!
//! Validation follows the call order documented in `jetstream::validate`.

use std::sync::Arc;

use rill_protocol::jsapi::{
    API_LEVEL, ActionKind, ApiError, ApiSubject, ErrorCode, LIST_PAGE_LIMIT, NAMES_PAGE_LIMIT,
    Paged, StreamAlternate, StreamConfig, StreamConfigRequest, StreamCreateResponse,
    StreamDeleteResponse, StreamInfo, StreamInfoRequest, StreamInfoResponse,
    StreamLeaderStepdownRequest, StreamLeaderStepdownResponse, StreamListResponse,
    StreamNamesRequest, StreamNamesResponse, StreamPurgeRequest, StreamPurgeResponse,
    StreamRemovePeerRequest, StreamRemovePeerResponse, StreamUpdateResponse,
};
use rill_protocol::subject::filters_overlap;

use super::forward::{Forwarding, to_leader};
use super::{Reply, Request};
use crate::jetstream::cluster::meta::StreamAssignment;
use crate::jetstream::cluster::{MetaGroup, replica};
use crate::jetstream::consumer::events;
use crate::jetstream::{JetStream, validate};
use rill_protocol::compat::NATS_VERSION;

/// The config as replies show it (stored metadata plus `_nats.ver` / `_nats.level`).
fn reply_info(mut info: StreamInfo) -> StreamInfo {
    info.config.metadata = validate::reply_metadata(&info.config.metadata, NATS_VERSION, API_LEVEL);
    info.cluster = None;
    info
}

pub(super) async fn create(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<StreamCreateResponse, ApiError> {
    req.check_level()?;
    let body: StreamConfigRequest = req.parse()?;
    let cfg = validate::stream_create_config(name, body.config, body.pedantic)?;
    let meta = js.share.meta().cloned();
    if meta.is_none() {
        validate::standalone_replicas(&cfg)?;
    }
    let _locked = js.api_locks.admin(name).await;
    let mut cfg = origins_checked(js, cfg)?;
    if let Some(meta) = &meta {
        return replicated_create(js, meta, cfg).await;
    }
    if let Some(existing) = js.stream_config(name) {
        validate::stream_exists_same(&existing, &cfg)?;
        let handle = js
            .stream(name)
            .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
        let info = handle.info().await?;
        return Ok(StreamCreateResponse {
            info: reply_info(info),
            did_create: true,
        });
    }
    js.check_overlap(&cfg)?;
    js.check_stream_limit()?;
    js.check_resources(&cfg)?;
    validate::stamp_stream_metadata(&mut cfg);
    let handle = js.create_stream(cfg).await?;
    events::stream_action(&js.account, name, ActionKind::Create);
    let info = handle.info().await?;
    Ok(StreamCreateResponse {
        info: reply_info(info),
        did_create: true,
    })
}

/// `STREAM.CREATE` of a stream with replicas in a JetStream cluster: the local checks,
/// then the meta group places and assigns it (`cluster::replica`).
async fn replicated_create(
    js: &Arc<JetStream>,
    meta: &Arc<MetaGroup>,
    mut cfg: StreamConfig,
) -> Result<StreamCreateResponse, ApiError> {
    if let Some(existing) = js.stream_config(&cfg.name) {
        validate::stream_exists_same(&existing, &cfg)?;
    }
    js.check_overlap(&cfg)?;
    js.check_resources(&cfg)?;
    validate::stamp_stream_metadata(&mut cfg);
    let name = cfg.name.clone();
    let mut info = replica::create(js, meta, cfg).await?;
    // Placed on other servers only (placement tags): their leader's view, as
    // nats-server answers, instead of one that names no leader.
    if info.cluster.as_ref().is_some_and(|c| c.leader.is_empty())
        && let Some(leader) = leader_info(js, &name).await
    {
        info = leader;
    }
    events::stream_action(&js.account, &name, ActionKind::Create);
    Ok(StreamCreateResponse {
        info: replicated_info(info),
        did_create: true,
    })
}

/// The config of a replicated stream's reply as [`reply_info`] shows it, with the
/// `cluster` block.
fn replicated_info(info: StreamInfo) -> StreamInfo {
    let cluster = info.cluster.clone();
    let mut info = reply_info(info);
    info.cluster = cluster;
    info
}

/// The assignment of `name` when it is a replicated stream of this account.
pub(super) async fn assigned(
    js: &JetStream,
    name: &str,
) -> Option<(Arc<MetaGroup>, StreamAssignment)> {
    let meta = js.share.meta()?;
    let a = meta.assignment(js.account_name(), name).await?;
    Some((Arc::clone(meta), a))
}

pub(super) async fn update(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<StreamUpdateResponse, ApiError> {
    req.check_level()?;
    let body: StreamConfigRequest = req.parse()?;
    let cfg = validate::stream_update_request(name, body.config, body.pedantic)?;
    let _locked = js.api_locks.admin(name).await;
    let cfg = origins_checked(js, cfg)?;
    if let Some((meta, old)) = assigned(js, name).await {
        let mut cfg = validate::stream_update_rules(&old.config, cfg)?;
        js.check_overlap(&cfg)?;
        validate::stamp_stream_metadata(&mut cfg);
        let info = replica::update(js, &meta, &old, cfg).await?;
        events::stream_action(&js.account, name, ActionKind::Modify);
        return Ok(StreamUpdateResponse {
            info: replicated_info(info),
        });
    }
    let (Some(old), Some(handle)) = (js.stream_config(name), js.stream(name)) else {
        return Err(ErrorCode::STREAM_NOT_FOUND.error());
    };
    let mut cfg = validate::stream_update(&old, cfg)?;
    consumers_within_limits(js, name, &cfg).await?;
    js.check_overlap(&cfg)?;
    js.check_stream_max_bytes(&cfg)?;
    js.check_resources(&cfg)?;
    validate::stamp_stream_metadata(&mut cfg);
    let new = cfg.clone();
    let info = handle.call(move |core| core.update(new)).await?;
    js.replace_config(cfg);
    events::stream_action(&js.account, name, ActionKind::Modify);
    Ok(StreamUpdateResponse {
        info: reply_info(info),
    })
}

/// [`validate::check_origins`] against the account's streams (looked up by name, the
/// mirror's and the sources' only).
fn origins_checked(js: &JetStream, cfg: StreamConfig) -> Result<StreamConfig, ApiError> {
    let names = cfg.mirror.iter().chain(&cfg.sources).map(|s| &s.name);
    let origins: Vec<Arc<StreamConfig>> = names.filter_map(|n| js.stream_config(n)).collect();
    validate::check_origins(cfg, |n| origins.iter().find(|o| o.name == n).map(|o| &**o))
}

/// nats-server refuses `consumer_limits` that an existing consumer is over (its
/// `inactive_threshold` or `max_ack_pending` above a limit that is set): 500 / 10069
/// naming them.
async fn consumers_within_limits(
    js: &JetStream,
    name: &str,
    cfg: &StreamConfig,
) -> Result<(), ApiError> {
    let limits = cfg.consumer_limits;
    if limits.inactive_threshold.is_zero() && limits.max_ack_pending <= 0 {
        return Ok(());
    }
    let mut over = Vec::new();
    for (consumer, handle) in js.consumers.list(name) {
        let Ok(info) = handle.info().await else {
            continue;
        };
        let c = &info.config;
        let idle = !limits.inactive_threshold.is_zero()
            && c.inactive_threshold > limits.inactive_threshold;
        let pending = limits.max_ack_pending > 0 && c.max_ack_pending > limits.max_ack_pending;
        if idle || pending {
            over.push(consumer);
        }
    }
    if over.is_empty() {
        return Ok(());
    }
    Err(ErrorCode::STREAM_UPDATE.err(format!(
        "change to limits violates consumers: {}",
        over.join(", ")
    )))
}

pub(super) async fn info(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<StreamInfoResponse, ApiError> {
    req.check_level()?;
    let body: StreamInfoRequest = req.parse()?;
    if let Some((meta, _)) = assigned(js, name).await {
        let (mut info, paged) = replica::info(js, &meta, name, &body).await?;
        info.config.metadata =
            validate::reply_metadata(&info.config.metadata, NATS_VERSION, API_LEVEL);
        info.alternates = alternates(js, &meta, name).await;
        return Ok(StreamInfoResponse { paged, info });
    }
    let handle = js
        .stream(name)
        .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
    let (mut info, paged) = handle
        .call(move |core| {
            crate::fault::panic_if_armed("stream.panic", &core.config().name);
            let subjects = (!body.subjects_filter.is_empty())
                .then_some((body.subjects_filter.as_str(), body.offset));
            Ok(core.info(body.deleted_details, subjects))
        })
        .await?;
    info.config.metadata = validate::reply_metadata(&info.config.metadata, NATS_VERSION, API_LEVEL);
    Ok(StreamInfoResponse { paged, info })
}

/// `alternates` of a clustered stream's info, as nats-server 2.15.1 lists them: the
/// stream and every stream of the account that mirrors it (not through an external
/// API), each with its cluster; none for a stream without mirrors. One cluster here, so none is nearer than another: the
/// stream first, then its mirrors by name (nats-server's order among equals varies).
async fn alternates(js: &JetStream, meta: &MetaGroup, name: &str) -> Vec<StreamAlternate> {
    let alternate = |name: &str| StreamAlternate {
        name: name.to_string(),
        domain: js.domain().to_string(),
        cluster: meta.cluster_name().to_string(),
    };
    let mirrors: Vec<StreamConfig> = account_assignments(js, meta)
        .await
        .into_iter()
        .filter(|c| {
            c.mirror
                .as_ref()
                .is_some_and(|m| m.name == name && m.external.is_none())
        })
        .collect();
    if mirrors.is_empty() {
        return Vec::new();
    }
    std::iter::once(alternate(name))
        .chain(mirrors.iter().map(|c| alternate(&c.name)))
        .collect()
}

/// The configs of this account's streams as the meta group assigned them, by name.
async fn account_assignments(js: &JetStream, meta: &MetaGroup) -> Vec<StreamConfig> {
    let account = js.account_name();
    let mut configs: Vec<StreamConfig> = meta
        .assignments()
        .await
        .into_values()
        .filter(|a| a.account == account)
        .map(|a| a.config)
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    configs
}

pub(super) async fn delete(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<StreamDeleteResponse, ApiError> {
    req.check_level()?;
    req.expect_empty()?;
    let _locked = js.api_locks.admin(name).await;
    match assigned(js, name).await {
        Some((meta, a)) => replica::delete(&meta, &a).await?,
        None => js.delete_stream(name).await?,
    }
    events::stream_action(&js.account, name, ActionKind::Delete);
    Ok(StreamDeleteResponse { success: true })
}

pub(super) async fn purge(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<StreamPurgeResponse, ApiError> {
    req.check_level()?;
    let body: StreamPurgeRequest = req.parse()?;
    if let Some((meta, a)) = assigned(js, name).await {
        let done = replica::propose_op(&meta, &a.key(), replica::StreamOp::Purge(body)).await?;
        if let Some(e) = done.error {
            return Err(e);
        }
        return Ok(StreamPurgeResponse {
            success: true,
            purged: done.purged,
        });
    }
    let handle = js
        .stream(name)
        .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
    let purged = handle.call(move |core| core.purge(&body)).await?;
    Ok(StreamPurgeResponse {
        success: true,
        purged,
    })
}

/// Stream configs matching the optional subject filter of a NAMES/LIST request: the
/// account's streams on this server, or in a JetStream cluster every stream the meta
/// group assigned, wherever it lives (as nats-server).
async fn matching(js: &JetStream, subject: &str) -> Vec<Arc<StreamConfig>> {
    let all = match js.share.meta() {
        Some(meta) => account_assignments(js, meta)
            .await
            .into_iter()
            .map(Arc::new)
            .collect(),
        None => js.stream_configs(),
    };
    all.into_iter()
        .filter(|c| subject.is_empty() || c.subjects.iter().any(|s| filters_overlap(s, subject)))
        .collect()
}

pub(super) async fn names(
    js: &Arc<JetStream>,
    req: &Request,
) -> Result<StreamNamesResponse, ApiError> {
    req.check_level()?;
    let body: StreamNamesRequest = req.parse()?;
    let all = matching(js, &body.subject).await;
    let total = all.len();
    Ok(StreamNamesResponse {
        paged: Paged {
            total,
            offset: body.offset,
            limit: NAMES_PAGE_LIMIT,
        },
        streams: all
            .into_iter()
            .skip(body.offset)
            .take(NAMES_PAGE_LIMIT)
            .map(|c| c.name.clone())
            .collect(),
    })
}

pub(super) async fn list(
    js: &Arc<JetStream>,
    req: &Request,
) -> Result<StreamListResponse, ApiError> {
    req.check_level()?;
    let body: StreamNamesRequest = req.parse()?;
    let all = matching(js, &body.subject).await;
    let total = all.len();
    let mut streams = Vec::new();
    let mut missing = Vec::new();
    for cfg in all.into_iter().skip(body.offset).take(LIST_PAGE_LIMIT) {
        match listed_info(js, &cfg.name).await {
            Some(info) => streams.push(info),
            None => missing.push(cfg.name.clone()),
        }
    }
    Ok(StreamListResponse {
        paged: Paged {
            total,
            offset: body.offset,
            limit: LIST_PAGE_LIMIT,
        },
        streams,
        missing,
        ..StreamListResponse::default()
    })
}

/// One stream of a `STREAM.LIST` page: here, its info without `cluster`; in a
/// cluster, its leader's info with `cluster` and without `alternates`, as nats-server.
async fn listed_info(js: &Arc<JetStream>, name: &str) -> Option<StreamInfo> {
    if js.share.meta().is_some() {
        let mut info = leader_info(js, name).await?;
        info.alternates.clear();
        return Some(info);
    }
    let mut info = js.stream(name)?.info().await.ok()?;
    info.cluster = None;
    Some(info)
}

/// The assignment of the stream a request only a cluster serves is about (`None`: no
/// such stream). `Err`: nats-server's refusal without clustering, or for a stream that
/// is not assigned.
async fn clustered(
    js: &JetStream,
    name: &str,
    api: &ApiSubject<'_>,
) -> Result<Option<(Arc<MetaGroup>, StreamAssignment)>, Option<Reply>> {
    if js.share.meta().is_none() {
        return Err(super::unsupported::reply(api));
    }
    match assigned(js, name).await {
        None if js.stream(name).is_some() => Err(super::unsupported::reply(api)),
        found => Ok(found),
    }
}

/// `STREAM.LEADER.STEPDOWN`: a replicated stream's leader (the request was forwarded
/// to its server, see `forward`) hands its leadership over and answers at once;
/// nats-server's errors otherwise (`None`: no answer, as during an election).
pub(super) async fn leader_stepdown(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
    api: &ApiSubject<'_>,
) -> Option<Reply> {
    let result = match clustered(js, name, api).await {
        Err(refusal) => return refusal,
        Ok(None) => Err(ErrorCode::STREAM_NOT_FOUND.error()),
        Ok(Some((meta, a))) => match req.parse::<StreamLeaderStepdownRequest>() {
            Err(e) => Err(e),
            Ok(body) => {
                let preferred = body
                    .placement
                    .map(|p| p.preferred)
                    .filter(|p| !p.is_empty());
                replica::step_down(&meta, &a.key(), preferred.as_deref()).await?
            }
        },
    };
    Some(Reply::from(
        result.map(|()| StreamLeaderStepdownResponse { success: true }),
    ))
}

/// `STREAM.PEER.REMOVE`: a replicated stream's replica leaves the server named in the
/// body for a spare one (`replica::remove_peer`), answered by the server that took the
/// request (through the meta group). Without clustering, or for a stream that is not
/// assigned, nats-server's refusal as for the other clustered requests.
pub(super) async fn remove_peer(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
    api: &ApiSubject<'_>,
) -> Option<Reply> {
    let result = match clustered(js, name, api).await {
        Err(refusal) => return refusal,
        Ok(None) => Err(ErrorCode::STREAM_NOT_FOUND.error()),
        Ok(Some((meta, a))) => remove_peer_of(&meta, &a, req).await,
    };
    Some(Reply::from(
        result.map(|()| StreamRemovePeerResponse { success: true }),
    ))
}

/// The body checked as nats-server 2.15.1 checks it (none, or no peer: 400/10003 bad
/// request), then the peer removed.
async fn remove_peer_of(
    meta: &Arc<MetaGroup>,
    a: &StreamAssignment,
    req: &Request,
) -> Result<(), ApiError> {
    if req.payload.trim_ascii().is_empty() {
        return Err(ErrorCode::BAD_REQUEST.error());
    }
    let body: StreamRemovePeerRequest = req.parse()?;
    if body.peer.is_empty() {
        return Err(ErrorCode::BAD_REQUEST.error());
    }
    replica::remove_peer(meta, a, &body.peer).await
}

/// A stream's info as its leader shows it, asked here or of its leader's server
/// (`STREAM.LIST` in a cluster); `None` when nobody answers.
async fn leader_info(js: &Arc<JetStream>, name: &str) -> Option<StreamInfo> {
    let req = Request {
        subject: format!("$JS.API.STREAM.INFO.{name}").into(),
        reply: crate::router::ByteString::new(),
        headers: None,
        payload: bytes::Bytes::new(),
    };
    match to_leader(js, &ApiSubject::StreamInfo(name), &req).await {
        Forwarding::Here => info(js, name, &req).await.ok().map(|r| r.info),
        Forwarding::Answered(reply) if !reply.is_error => {
            let answer: StreamInfoResponse = serde_json::from_slice(&reply.body).ok()?;
            Some(answer.info)
        }
        Forwarding::Answered(_) | Forwarding::Silent => None,
    }
}
