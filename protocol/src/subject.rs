//! Subjects: validation, tokens, and the reference wildcard matcher.
//!
//! A subject is a `.`-separated list of non-empty tokens. A token is any run of
//! printable bytes other than `.` and whitespace. Publish subjects are literal:
//! no token may be `*` or `>`. Filter subjects (subscriptions, stream subjects,
//! consumer filters) may use `*` as a whole token (matches exactly one token)
//! and `>` as the whole last token (matches one or more trailing tokens).
//!
//! [`matches`] is deliberately the simplest correct implementation: it is the
//! oracle that the server's routing trie is property-tested against.

use std::fmt;

use bytes::Bytes;

/// Why a subject was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The subject is empty.
    #[error("empty subject")]
    Empty,
    /// A token is empty (`a..b`, `.a`, `a.`).
    #[error("empty token")]
    EmptyToken,
    /// A token contains whitespace or a control character.
    #[error("invalid character in subject")]
    InvalidChar,
    /// A wildcard appears in a publish subject.
    #[error("wildcard in publish subject")]
    Wildcard,
    /// `*` or `>` is part of a longer token, or `>` is not the last token.
    #[error("misplaced wildcard")]
    MisplacedWildcard,
}

/// Iterates over the `.`-separated tokens of a subject.
pub fn tokens(subject: &str) -> std::str::Split<'_, char> {
    subject.split('.')
}

fn check_token_bytes(token: &[u8]) -> Result<(), SubjectError> {
    if token.is_empty() {
        return Err(SubjectError::EmptyToken);
    }
    if token.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(SubjectError::InvalidChar);
    }
    Ok(())
}

/// Validates a publish subject: non-empty tokens, no whitespace, no wildcards.
///
/// # Errors
/// The first rule the subject breaks.
pub fn validate_publish(subject: &str) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    for token in tokens(subject) {
        check_token_bytes(token.as_bytes())?;
        if token == "*" || token == ">" {
            return Err(SubjectError::Wildcard);
        }
    }
    Ok(())
}

/// Validates the subject of a message a stream stores: non-empty tokens without
/// whitespace. Unlike [`validate_publish`], a `*` or `>` token is kept as a literal
/// character, as nats-server stores a message published to `$KV.b.a.*` (a KV purge
/// marker with `Nats-Rollup: sub`, which then purges every subject it matches).
///
/// # Errors
/// The first rule the subject breaks.
pub fn validate_stored(subject: &str) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    tokens(subject).try_for_each(|t| check_token_bytes(t.as_bytes()))
}

/// Validates a filter subject: `*` only as a whole token, `>` only as the whole last token.
///
/// Like nats-server, a `*` or `>` inside a longer token (`a.b*`) is a literal
/// character, not a wildcard, and is accepted.
///
/// # Errors
/// The first rule the subject breaks.
pub fn validate_filter(subject: &str) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    let mut it = tokens(subject).peekable();
    while let Some(token) = it.next() {
        check_token_bytes(token.as_bytes())?;
        if token == ">" && it.peek().is_some() {
            return Err(SubjectError::MisplacedWildcard);
        }
    }
    Ok(())
}

/// True when the subject has a `*` or `>` wildcard token.
pub fn has_wildcard(subject: &str) -> bool {
    has_wildcard_bytes(subject.as_bytes())
}

/// [`has_wildcard`] on raw bytes: a SIMD scan for `*`/`>` first, so the common
/// literal subject costs one pass and no token splitting (a publish hot path).
pub fn has_wildcard_bytes(subject: &[u8]) -> bool {
    if memchr::memchr2(b'*', b'>', subject).is_none() {
        return false;
    }
    subject
        .split(|&b| b == b'.')
        .any(|t| t == b"*" || t == b">")
}

/// True when a subject has an empty token (`a..b`, `.a`, `a.`) or is empty: such a
/// subject matches nothing. A byte scan, for the publish hot path.
pub fn has_empty_token(subject: &[u8]) -> bool {
    subject.is_empty()
        || subject[0] == b'.'
        || subject[subject.len() - 1] == b'.'
        || memchr::memmem::find(subject, b"..").is_some()
}

/// The reference matcher: does `filter` (which may hold wildcards) match the literal `subject`?
///
/// Both arguments are assumed valid; invalid input gives an unspecified but non-panicking answer.
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut f = tokens(filter);
    let mut s = tokens(subject);
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when some literal subject could match both filters (their interest overlaps).
pub fn filters_overlap(a: &str, b: &str) -> bool {
    let mut x = tokens(a);
    let mut y = tokens(b);
    loop {
        match (x.next(), y.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when every subject matched by `inner` is also matched by `outer`.
pub fn is_subset(inner: &str, outer: &str) -> bool {
    let mut i = tokens(inner);
    let mut o = tokens(outer);
    loop {
        match (i.next(), o.next()) {
            (Some(_), Some(">")) => return true,
            (Some(">"), Some(_)) => return false,
            (Some(_), Some("*")) => {}
            (Some("*"), Some(_)) => return false,
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A validated publish subject (no wildcards). Cheap to clone: it shares its bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(Bytes);

impl Subject {
    /// Validates and wraps a publish subject.
    ///
    /// # Errors
    /// See [`validate_publish`].
    pub fn new(s: impl Into<Bytes>) -> Result<Self, SubjectError> {
        let b: Bytes = s.into();
        let text = std::str::from_utf8(&b).map_err(|_| SubjectError::InvalidChar)?;
        validate_publish(text)?;
        Ok(Self(b))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        // Validated as UTF-8 at construction.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The subject's bytes, shared.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({:?})", self.as_str())
    }
}

/// A validated filter subject (may hold `*` and a trailing `>`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterSubject(Bytes);

impl FilterSubject {
    /// Validates and wraps a filter subject.
    ///
    /// # Errors
    /// See [`validate_filter`].
    pub fn new(s: impl Into<Bytes>) -> Result<Self, SubjectError> {
        let b: Bytes = s.into();
        let text = std::str::from_utf8(&b).map_err(|_| SubjectError::InvalidChar)?;
        validate_filter(text)?;
        Ok(Self(b))
    }

    /// The filter as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// True when the filter has a wildcard token.
    pub fn has_wildcard(&self) -> bool {
        has_wildcard(self.as_str())
    }

    /// Does this filter match the literal subject?
    pub fn matches(&self, subject: &str) -> bool {
        matches(self.as_str(), subject)
    }
}

impl fmt::Display for FilterSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for FilterSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FilterSubject({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_subjects_keep_wildcards_as_literals() {
        assert!(validate_stored("$KV.b.a.*").is_ok());
        assert!(validate_stored("a.>.b").is_ok());
        assert_eq!(validate_stored(""), Err(SubjectError::Empty));
        assert_eq!(validate_stored("a..b"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_stored("a. b"), Err(SubjectError::InvalidChar));
    }

    #[test]
    fn publish_subjects() {
        assert!(validate_publish("foo.bar").is_ok());
        assert!(validate_publish("$JS.API.INFO").is_ok());
        assert_eq!(validate_publish(""), Err(SubjectError::Empty));
        assert_eq!(validate_publish("foo..bar"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish(".foo"), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish("foo."), Err(SubjectError::EmptyToken));
        assert_eq!(validate_publish("foo.*"), Err(SubjectError::Wildcard));
        assert_eq!(validate_publish("foo.>"), Err(SubjectError::Wildcard));
        assert_eq!(validate_publish("foo bar"), Err(SubjectError::InvalidChar));
        assert!(validate_publish("foo.b*r").is_ok());
    }

    #[test]
    fn filter_subjects() {
        assert!(validate_filter("foo.*.bar").is_ok());
        assert!(validate_filter("foo.>").is_ok());
        assert!(validate_filter(">").is_ok());
        assert_eq!(
            validate_filter("foo.>.bar"),
            Err(SubjectError::MisplacedWildcard)
        );
        assert_eq!(validate_filter("foo..bar"), Err(SubjectError::EmptyToken));
    }

    #[test]
    fn empty_tokens() {
        assert!(has_empty_token(b""));
        assert!(has_empty_token(b"a..b"));
        assert!(has_empty_token(b".a"));
        assert!(has_empty_token(b"a."));
        assert!(!has_empty_token(b"a.b.*"));
    }

    #[test]
    fn matching() {
        assert!(matches("foo.bar", "foo.bar"));
        assert!(matches("foo.*", "foo.bar"));
        assert!(!matches("foo.*", "foo.bar.baz"));
        assert!(matches("foo.>", "foo.bar.baz"));
        assert!(!matches("foo.>", "foo"));
        assert!(matches(">", "foo"));
        assert!(matches("*.*", "a.b"));
        assert!(!matches("*", "a.b"));
        assert!(!matches("foo.bar", "foo"));
    }

    #[test]
    fn overlap_and_subset() {
        assert!(filters_overlap("foo.*", "foo.bar"));
        assert!(filters_overlap("foo.>", "*.bar.baz"));
        assert!(!filters_overlap("foo.*", "bar.*"));
        assert!(!filters_overlap("foo.*", "foo.a.b"));
        assert!(is_subset("foo.bar", "foo.*"));
        assert!(is_subset("foo.*.baz", "foo.>"));
        assert!(!is_subset("foo.>", "foo.*"));
        assert!(!is_subset("foo.*", "foo.bar"));
    }
}
