//! `$JS.API.STREAM.MSG.GET.<stream>` and `$JS.API.STREAM.MSG.DELETE.<stream>` (of a
//! replicated stream: proposed through its group on the leader, `cluster::replica`).

use std::sync::Arc;

use rill_protocol::jsapi::{
    ApiError, ErrorCode, MsgDeleteRequest, MsgDeleteResponse, MsgGetRequest, MsgGetResponse,
    StoredMsg,
};

use super::Request;
use crate::jetstream::JetStream;
use crate::jetstream::cluster::replica;
use crate::jetstream::stream::timestamp;

pub(super) async fn get(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<MsgGetResponse, ApiError> {
    req.check_level()?;
    let handle = js
        .stream(name)
        .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
    if req.payload.trim_ascii().is_empty() {
        return Err(ErrorCode::BAD_REQUEST.error());
    }
    let body: MsgGetRequest = req.parse()?;
    let m = handle.call(move |core| core.msg_get(&body)).await?;
    Ok(MsgGetResponse {
        message: StoredMsg {
            subject: m.subject_str().to_owned(),
            seq: m.seq,
            hdrs: m.headers.map(|h| h.to_vec()),
            data: (!m.payload.is_empty()).then(|| m.payload.to_vec()),
            time: timestamp(m.ts),
        },
    })
}

pub(super) async fn delete(
    js: &Arc<JetStream>,
    name: &str,
    req: &Request,
) -> Result<MsgDeleteResponse, ApiError> {
    req.check_level()?;
    if let Some((meta, a)) = super::stream::assigned(js, name).await {
        let body: MsgDeleteRequest = req.parse()?;
        let done = replica::propose_op(&meta, &a.key(), replica::StreamOp::Delete(body)).await?;
        return match done.error {
            Some(e) => Err(e),
            None => Ok(MsgDeleteResponse { success: true }),
        };
    }
    let handle = js
        .stream(name)
        .ok_or_else(|| ErrorCode::STREAM_NOT_FOUND.error())?;
    let body: MsgDeleteRequest = req.parse()?;
    handle
        .call(move |core| core.delete_msg(body.seq, body.no_erase))
        .await?;
    Ok(MsgDeleteResponse { success: true })
}
