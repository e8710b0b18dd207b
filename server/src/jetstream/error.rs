//! The one place where storage errors become `$JS.API` errors.
//!
//! Handlers return `Result<T, ApiError>` built from rows of the single error table
//! (`rill_protocol::jsapi::ErrorCode`); this module maps the store layer's
//! [`StoreError`] onto those rows the way nats-server reports the same failures.

use rill_protocol::jsapi::{ApiError, ErrorCode};

use super::store::StoreError;

/// A store failure while storing a published message (the PubAck error).
pub fn publish_error(e: &StoreError) -> ApiError {
    match e {
        StoreError::MessageTooLarge => ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM.error(),
        // A full disk or quota: nats-server answers with insufficient resources.
        StoreError::Io(io) if out_of_space(io) => ErrorCode::INSUFFICIENT_RESOURCES.error(),
        // nats-server: `{"code":503,"err_code":10077,"description":"maximum messages exceeded"}`.
        other => ErrorCode::STREAM_STORE_FAILED.err(other),
    }
}

fn out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// A store failure while reading one message (`STREAM.MSG.GET`).
pub fn load_error(e: &StoreError) -> ApiError {
    match e {
        StoreError::NotFound | StoreError::Deleted => ErrorCode::NO_MESSAGE_FOUND.error(),
        other => ErrorCode::STREAM_GENERAL.err(other),
    }
}

/// A store failure while deleting one message (`STREAM.MSG.DELETE`), worded as
/// nats-server words it.
pub fn delete_error(e: &StoreError) -> ApiError {
    let text = match e {
        StoreError::Deleted => "no message found".to_owned(),
        StoreError::NotFound => "stream store EOF".to_owned(),
        other => other.to_string(),
    };
    ErrorCode::STREAM_MSG_DELETE_FAILED.err(text)
}

/// Any other store failure, in an admin request.
pub fn general(e: &StoreError) -> ApiError {
    ErrorCode::STREAM_GENERAL.err(e)
}

/// A stream that could not be created on disk.
pub fn create_error(e: &StoreError) -> ApiError {
    ErrorCode::STREAM_CREATE.err(e)
}
