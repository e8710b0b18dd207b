//! Raw `$JS.API.*` requests: send JSON, get the server's JSON back untouched (so `--json` prints exactly
//! what the server said), and turn `{"error": {code, err_code, description}}` replies into [`ApiError`].
//!
//! Stream and consumer commands use this rather than async-nats's typed JetStream API, so that every
//! config field the server knows survives an `info`/`edit` round trip and errors keep their codes.

use std::fmt;

use anyhow::Context as _;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use rill_protocol::jsapi::ApiSubject;
use serde_json::{Value, json};

/// A JetStream API error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// HTTP-like status (400, 404, 503…).
    pub(crate) code: u64,
    /// The JetStream error code (10059 = stream not found…).
    pub(crate) err_code: u64,
    /// The server's description.
    pub(crate) description: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (err_code {}, status {})",
            self.description, self.err_code, self.code
        )
    }
}

impl std::error::Error for ApiError {}

/// A JetStream API client bound to one connection.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    client: Client,
}

impl Api {
    /// Wraps a connected client.
    pub(crate) fn new(client: Client) -> Self {
        Api { client }
    }

    /// The underlying client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Sends `body` (nothing when `Null`) to the `api` subject and returns the reply JSON.
    ///
    /// # Errors
    /// [`ApiError`] when the server replied with an error object; otherwise a message naming the
    /// subject for timeouts, no responders (JetStream disabled) and non-JSON replies.
    pub(crate) async fn request(&self, api: ApiSubject<'_>, body: &Value) -> anyhow::Result<Value> {
        let subject = api.to_string();
        let payload = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(serde_json::to_vec(body)?)
        };
        let reply = self
            .client
            .request(subject.clone(), payload)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => anyhow::anyhow!(
                    "no responders for {subject}: is JetStream enabled on this server?"
                ),
                RequestErrorKind::TimedOut => {
                    anyhow::anyhow!("timed out waiting for a reply to {subject}")
                }
                _ => anyhow::anyhow!("request {subject}: {e}"),
            })?;
        let value: Value = serde_json::from_slice(&reply.payload)
            .with_context(|| format!("reply to {subject} is not JSON"))?;
        check(value)
    }

    /// Fetches every page of a paged list API (`STREAM.LIST`, `CONSUMER.NAMES.<s>`…) and returns the
    /// concatenated `key` arrays.
    pub(crate) async fn list_all(
        &self,
        api: ApiSubject<'_>,
        key: &str,
        mut body: Value,
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            body["offset"] = json!(items.len());
            let page = self.request(api, &body).await?;
            let batch = page[key].as_array().cloned().unwrap_or_default();
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            let empty = batch.is_empty();
            items.extend(batch);
            if empty || items.len() >= total {
                return Ok(items);
            }
        }
    }
}

/// Returns `value`, or the [`ApiError`] it carries.
pub(crate) fn check(value: Value) -> anyhow::Result<Value> {
    let Some(err) = value.get("error").filter(|e| !e.is_null()) else {
        return Ok(value);
    };
    Err(ApiError {
        code: err["code"].as_u64().unwrap_or(0),
        err_code: err["err_code"].as_u64().unwrap_or(0),
        description: err["description"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_becomes_api_error() {
        let v = json!({"type": "x", "error": {"code": 404, "err_code": 10059, "description": "stream not found"}});
        let err = check(v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream not found (err_code 10059, status 404)"
        );
        assert!(check(json!({"ok": true})).is_ok());
    }
}
