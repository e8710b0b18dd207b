//! `$JS.API.CONSUMER.*`: placeholder until the consumers work (issue 8) lands;
//! that work owns this file and replaces it. Sends no reply.

use std::sync::Arc;

use super::{Reply, Request};
use crate::jetstream::JetStream;

/// Handles `$JS.API.CONSUMER.<op>`; `None` = no reply.
pub(super) async fn handle(_js: &Arc<JetStream>, _op: &str, _req: &Request) -> Option<Reply> {
    None
}
