//! `ApiError`, the `error` object of every `$JS.API` reply, and [`ErrorCode`], a row of the
//! single JetStream error table (the rows themselves live in `error_table.rs`).
//!
//! The server maps its own error enum to an [`ErrorCode`] in exactly one place and calls
//! [`ErrorCode::error`] or [`ErrorCode::with`] to get the wire value.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::time::serde_util::{is_zero, null_default};

/// The `error` object: `{"code": 404, "err_code": 10059, "description": "stream not found"}`.
///
/// `err_code` and `description` are omitted when zero/empty, as nats-server does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// HTTP-like status (400, 404, 409, 412, 429, 500, 503).
    #[serde(default, deserialize_with = "null_default")]
    pub code: u16,
    /// The JetStream error number (10002..).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub err_code: u16,
    /// Human text; clients show it verbatim.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
}

impl ApiError {
    /// True when this error is the table row `code` (compares `err_code`).
    pub fn is(&self, code: ErrorCode) -> bool {
        self.err_code == code.err_code
    }
}

impl fmt::Display for ApiError {
    /// nats-server's text form: `"<description> (<err_code>)"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description, self.err_code)
    }
}

impl std::error::Error for ApiError {}

/// One row of the JetStream error table.
///
/// Every row is a constant on this type (`ErrorCode::STREAM_NOT_FOUND`), and
/// [`ErrorCode::ALL`] lists them. A `description` may hold `{placeholder}`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    /// The constant's name, e.g. `"STREAM_NOT_FOUND"`.
    pub name: &'static str,
    /// HTTP-like status.
    pub code: u16,
    /// JetStream error number.
    pub err_code: u16,
    /// Description template.
    pub description: &'static str,
}

impl ErrorCode {
    /// Looks a row up by its `err_code`.
    pub fn by_err_code(err_code: u16) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|e| e.err_code == err_code)
    }

    /// The wire error with the description as is (for rows without placeholders).
    pub fn error(self) -> ApiError {
        ApiError {
            code: self.code,
            err_code: self.err_code,
            description: self.description.to_owned(),
        }
    }

    /// The wire error with each `{key}` in the description replaced by its value.
    ///
    /// Placeholders without a value stay as written, which makes a forgotten argument
    /// visible in tests instead of silently empty.
    pub fn with(self, args: &[(&str, &dyn fmt::Display)]) -> ApiError {
        ApiError {
            code: self.code,
            err_code: self.err_code,
            description: fill(self.description, args),
        }
    }

    /// Shorthand for the many `"{err}"` rows: the description becomes `text`.
    pub fn err(self, text: impl fmt::Display) -> ApiError {
        self.with(&[("err", &text)])
    }

    /// The placeholder names in the description, in order.
    pub fn placeholders(self) -> impl Iterator<Item = &'static str> {
        self.description
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(k, _)| k))
    }
}

fn fill(template: &str, args: &[(&str, &dyn fmt::Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let key = &after[..close];
        match args.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => out.push_str(&v.to_string()),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_templates() {
        let e = ErrorCode::STREAM_WRONG_LAST_SEQUENCE.with(&[("seq", &6)]);
        assert_eq!(e.description, "wrong last sequence: 6");
        let e = ErrorCode::STREAM_EXTERNAL_DEL_PREFIX_OVERLAPS.with(&[("prefix", &"p")]);
        assert_eq!(
            e.description,
            "stream external delivery prefix p overlaps with stream subject {subject}"
        );
        assert_eq!(
            ErrorCode::STREAM_INVALID_CONFIG
                .err("max age can not be negative")
                .description,
            "max age can not be negative"
        );
    }

    #[test]
    fn table_is_sorted_unique_and_complete() {
        assert_eq!(ErrorCode::ALL.len(), 226);
        for pair in ErrorCode::ALL.windows(2) {
            assert!(pair[0].err_code < pair[1].err_code, "{pair:?}");
        }
        assert_eq!(
            ErrorCode::by_err_code(10059),
            Some(ErrorCode::STREAM_NOT_FOUND)
        );
        let names: Vec<_> = ErrorCode::STREAM_EXTERNAL_DEL_PREFIX_OVERLAPS
            .placeholders()
            .collect();
        assert_eq!(names, ["prefix", "subject"]);
    }
}
