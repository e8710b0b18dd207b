//! Raw `$JS.API.*` requests: send JSON, get the server's JSON back untouched (so `--json` prints exactly
//! what the server said), and turn `{"error": {code, err_code, description}}` replies into [`ApiError`].
//!
//! Bodies and replies are the protocol crate's typed `$JS.API` structs: a command builds its request
//! as a typed value, keeps the reply's raw JSON for `--json`, and reads it through [`typed`] for its
//! own output. An edit keeps fields rill does not model through [`Kept`], so that every config field
//! a newer server knows survives an `info`/`edit` round trip; errors keep their codes.

use std::fmt;

use anyhow::Context as _;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use rill_protocol::jsapi::{ApiSubject, StreamInfo};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

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

    /// Sends `body` (nothing when it serialises to `null`, e.g. `&()`) to the `api` subject and
    /// returns the reply JSON.
    ///
    /// # Errors
    /// [`ApiError`] when the server replied with an error object; otherwise a message naming the
    /// subject for timeouts, no responders (JetStream disabled) and non-JSON replies.
    pub(crate) async fn request<B: Serialize + ?Sized>(
        &self,
        api: ApiSubject<'_>,
        body: &B,
    ) -> anyhow::Result<Value> {
        let subject = api.to_string();
        let payload = match serde_json::to_vec(body)? {
            json if json == b"null" => Bytes::new(),
            json => Bytes::from(json),
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

    /// Fetches every page of a paged list API (`STREAM.LIST`, `CONSUMER.LIST.<s>`…) and returns the
    /// concatenated `key` arrays.
    pub(crate) async fn list_all(
        &self,
        api: ApiSubject<'_>,
        key: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            let page = self.request(api, &json!({ "offset": items.len() })).await?;
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

/// Reads a reply, or a part of one, as the protocol crate's type `T`.
///
/// # Errors
/// When the JSON does not have `T`'s form (a field of the wrong type or an unknown enum value).
pub(crate) fn typed<T: DeserializeOwned>(value: &Value) -> anyhow::Result<T> {
    T::deserialize(value).with_context(|| {
        format!(
            "the server's reply is not a {}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("value")
        )
    })
}

/// A config read from the server for an edit: the fields the protocol crate models, typed, and every
/// other field kept verbatim, so a server newer than rill gets its own fields back unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Kept<T> {
    /// The modelled fields.
    #[serde(flatten)]
    pub(crate) known: T,
    /// Everything else, as the server sent it.
    #[serde(flatten)]
    pub(crate) other: Map<String, Value>,
}

impl Api {
    /// Every stream's info (`STREAM.LIST`, all pages), sorted by name: the raw JSON (for `--json`)
    /// next to the typed form.
    pub(crate) async fn streams(&self) -> anyhow::Result<Vec<(Value, StreamInfo)>> {
        let mut streams = self
            .list_all(ApiSubject::StreamList, "streams")
            .await?
            .into_iter()
            .map(|raw| typed(&raw).map(|info| (raw, info)))
            .collect::<anyhow::Result<Vec<(Value, StreamInfo)>>>()?;
        streams.sort_by(|a, b| a.1.config.name.cmp(&b.1.config.name));
        Ok(streams)
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

    #[test]
    fn an_edit_keeps_the_fields_rill_does_not_model() {
        use rill_protocol::jsapi::StreamConfig;
        let from_server = json!({
            "name": "S", "subjects": ["a"], "max_msgs": 5, "retention": "limits",
            "storage": "file", "future_knob": {"level": 3}, "another": true,
        });
        let mut cfg: Kept<StreamConfig> = typed(&from_server).unwrap();
        assert_eq!(cfg.known.max_msgs, 5);
        assert_eq!(cfg.other.len(), 2);
        cfg.known.max_msgs = 7;
        let sent = serde_json::to_value(&cfg).unwrap();
        assert_eq!(sent["max_msgs"], 7);
        assert_eq!(sent["future_knob"], json!({"level": 3}));
        assert_eq!(sent["another"], true);
        assert_eq!(sent["name"], "S");
    }

    #[test]
    fn a_reply_of_the_wrong_form_names_the_type() {
        use rill_protocol::jsapi::StreamInfo;
        let err = typed::<StreamInfo>(&json!({"config": {"max_msgs": "many"}})).unwrap_err();
        assert!(err.to_string().contains("StreamInfo"), "{err}");
    }
}
