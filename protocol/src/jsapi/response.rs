//! The reply envelope shared by every `$JS.API` response:
//! `{"type": "io.nats.jetstream.api.v1.<name>", ...body}` on success and
//! `{"type": ..., "error": {code, err_code, description}}` on failure.
//!
//! Also [`parse_request`], the one way the server should read request bodies: like Go's
//! encoding/json it treats a `null` member as "not set" and an empty body as `{}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::error::ApiError;
use super::paging::Paged;

/// A response body type and its `type` string.
pub trait ApiBody {
    /// The `type` field, e.g. `io.nats.jetstream.api.v1.stream_info_response`.
    const TYPE: &'static str;
    /// nats-server also puts zero `total/offset/limit` in the *error* form of this reply
    /// (true for `STREAM.INFO` only).
    const PAGED_ERRORS: bool = false;
    /// Fields nats-server also puts, as zero, in the *error* form of this reply
    /// (`reset_seq` for `CONSUMER.RESET`).
    const ZERO_IN_ERRORS: &'static [&'static str] = &[];
}

/// A reply: the body or an error, always tagged with the body's `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Response<T> {
    /// Success: the body's fields follow `type`.
    Ok(T),
    /// Failure: only `type` and `error`.
    Err(ApiError),
}

impl<T> From<Result<T, ApiError>> for Response<T> {
    fn from(r: Result<T, ApiError>) -> Self {
        match r {
            Ok(v) => Response::Ok(v),
            Err(e) => Response::Err(e),
        }
    }
}

impl<T> Response<T> {
    /// Converts to a `Result`.
    pub fn into_result(self) -> Result<T, ApiError> {
        match self {
            Response::Ok(v) => Ok(v),
            Response::Err(e) => Err(e),
        }
    }
}

impl<T: ApiBody + Serialize> Response<T> {
    /// The reply bytes.
    ///
    /// # Errors
    /// Only if a body type's serialisation fails, which the derived types never do.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ApiError>,
    #[serde(flatten)]
    paged: Option<Paged>,
    #[serde(flatten)]
    zeros: std::collections::BTreeMap<&'static str, u64>,
    #[serde(flatten)]
    body: Option<&'a T>,
}

impl<T: ApiBody + Serialize> Serialize for Response<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (error, body) = match self {
            Response::Ok(b) => (None, Some(b)),
            Response::Err(e) => (Some(e), None),
        };
        let paged = (error.is_some() && T::PAGED_ERRORS).then(Paged::default);
        let zeros = match error {
            Some(_) => T::ZERO_IN_ERRORS.iter().map(|&k| (k, 0)).collect(),
            None => std::collections::BTreeMap::new(),
        };
        Envelope {
            kind: T::TYPE,
            error,
            paged,
            zeros,
            body,
        }
        .serialize(s)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Response<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut value = Value::deserialize(d)?;
        strip_nulls(&mut value);
        if let Some(err) = value.get("error") {
            let e = ApiError::deserialize(err).map_err(serde::de::Error::custom)?;
            return Ok(Response::Err(e));
        }
        T::deserialize(value)
            .map(Response::Ok)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a request body the way nats-server does: empty (or whitespace) or `null` = `{}`
/// (async-nats sends `null` for `STREAM.INFO`), `null` members = absent, unknown members
/// ignored.
///
/// # Errors
/// Malformed JSON or a wrongly typed member; the server answers
/// `ErrorCode::INVALID_JSON.err(e)`.
pub fn parse_request<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    let body = body.trim_ascii();
    let mut value: Value = if body.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body)?
    };
    if value.is_null() {
        value = Value::Object(serde_json::Map::new());
    }
    strip_nulls(&mut value);
    T::deserialize(value)
}

/// Removes `null` members from every object, recursively (Go leaves such fields at zero).
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
