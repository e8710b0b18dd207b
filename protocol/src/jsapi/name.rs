//! Stream and consumer names ("asset names"): the one rule every name passes before it
//! can name a stream or a consumer, and so a directory on disk, and the two types that
//! carry a name that passed it ([`StreamName`], [`ConsumerName`]).
//!
//! nats-server's rule is: not empty, none of ` \t\r\n\f.*>\/`, at most 255 bytes. It lets
//! other control characters through (`"a\u{1}b"` makes a stream there) and a NUL only
//! fails when the store cannot create the directory. rill also refuses every control
//! character and every Unicode whitespace, so a name is always a valid, printable file
//! name of at most 255 bytes, and nothing downstream (directories, logs, metrics labels)
//! has to escape it.
//!
//! ```
//! use rill_protocol::jsapi::{NameError, StreamName};
//!
//! let name = StreamName::new("ORDERS").unwrap();
//! assert_eq!(name, "ORDERS");
//! assert_eq!(StreamName::new("a.b"), Err(NameError::Refused));
//! assert_eq!(StreamName::new("a\u{0}b"), Err(NameError::ControlOrSpace));
//! assert_eq!(StreamName::new("x".repeat(256)), Err(NameError::TooLong));
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest stream or consumer name, in bytes (the longest file name on common file systems).
pub const MAX_NAME_LEN: usize = 255;

/// Why a string cannot name a stream or consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, or holds one of ` \t\r\n\f.*>\/` (refused by nats-server too).
    #[error("name is required and can not contain '.', '*', '>', '\\', '/'")]
    Refused,
    /// Holds another control character or Unicode whitespace (refused by rill only).
    #[error("name can not contain whitespace or control characters")]
    ControlOrSpace,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    #[error("name is too long, maximum allowed is {MAX_NAME_LEN}")]
    TooLong,
}

/// The characters of a name: [`NameError::Refused`] for what nats-server refuses,
/// [`NameError::ControlOrSpace`] for what only rill refuses. The length is not checked
/// here because nats-server reports it with its own error, at its own step.
///
/// # Errors
/// The first rule the name breaks.
pub fn check_name_chars(name: &str) -> Result<(), NameError> {
    let nats_refuses = name.is_empty()
        || name.contains([' ', '\t', '\r', '\n', '\u{c}', '.', '*', '>', '\\', '/']);
    if nats_refuses {
        return Err(NameError::Refused);
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NameError::ControlOrSpace);
    }
    Ok(())
}

/// The whole rule: [`check_name_chars`], then the length.
fn check_name(name: &str) -> Result<(), NameError> {
    check_name_chars(name)?;
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Checks `name` against the name rule (see the module doc) and wraps it.
            ///
            /// # Errors
            /// The first rule the name breaks.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check_name(&name)?;
                Ok(Self(name))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $ty {
            fn as_ref(&self) -> &std::path::Path {
                self.0.as_ref()
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(name: String) -> Result<Self, NameError> {
                Self::new(name)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = NameError;
            fn try_from(name: &str) -> Result<Self, NameError> {
                Self::new(name)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A stream's name, checked against the name rule: safe to name a directory, a log
    /// field or a metrics label as it is.
    StreamName
);

name_type!(
    /// A consumer's name (durable or generated), checked against the name rule.
    ConsumerName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (bad, why) in [
            ("", NameError::Refused),
            ("a.b", NameError::Refused),
            ("a*", NameError::Refused),
            ("a>", NameError::Refused),
            ("a/b", NameError::Refused),
            ("a\\b", NameError::Refused),
            ("a b", NameError::Refused),
            ("a\tb", NameError::Refused),
            ("a\r\nb", NameError::Refused),
            ("a\0b", NameError::ControlOrSpace),
            ("a\u{1}b", NameError::ControlOrSpace),
            ("a\u{7f}b", NameError::ControlOrSpace),
            ("a\u{85}b", NameError::ControlOrSpace),
            ("a\u{a0}b", NameError::ControlOrSpace),
        ] {
            assert_eq!(check_name_chars(bad), Err(why), "{bad:?}");
            assert_eq!(StreamName::new(bad), Err(why), "{bad:?}");
            assert_eq!(ConsumerName::new(bad), Err(why), "{bad:?}");
        }
        for good in [
            "ORDERS-1_x",
            "aéb",
            "KV_bucket",
            "$x",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(check_name_chars(good), Ok(()), "{good:?}");
            assert_eq!(StreamName::new(good).map(String::from).as_deref(), Ok(good));
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(check_name_chars(&long), Ok(()));
        assert_eq!(ConsumerName::new(long), Err(NameError::TooLong));
    }

    #[test]
    fn names_read_from_json_are_checked() {
        let ok: StreamName = serde_json::from_str("\"ORDERS\"").expect("valid");
        assert_eq!(ok, "ORDERS");
        assert_eq!(serde_json::to_string(&ok).expect("json"), "\"ORDERS\"");
        assert!(serde_json::from_str::<ConsumerName>("\"a.b\"").is_err());
        assert_eq!(format!("{ok} {ok:?}"), "ORDERS StreamName(\"ORDERS\")");
    }
}
