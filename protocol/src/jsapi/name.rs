//! Stream and consumer names ("asset names"): the one rule every name passes before it
//! can name a stream or a consumer, and so a directory on disk.
//!
//! nats-server's rule is: not empty, none of ` \t\r\n\f.*>\/`, at most 255 bytes. It lets
//! other control characters through (`"a\u{1}b"` makes a stream there) and a NUL only
//! fails when the store cannot create the directory. rill also refuses every control
//! character and every Unicode whitespace, so a name is always a valid, printable file
//! name of at most 255 bytes, and nothing downstream (directories, logs, metrics labels)
//! has to escape it.

/// Longest stream or consumer name, in bytes (the longest file name on common file systems).
pub const MAX_NAME_LEN: usize = 255;

/// True when `name` may name a stream or consumer: non-empty, no `.`, `*`, `>`, `/`,
/// `\`, no whitespace and no control characters (NUL included). The length is checked
/// separately ([`MAX_NAME_LEN`]) because nats-server reports it with its own error.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
        })
}

/// True when `name` has a control character or whitespace (the part of the rule rill adds
/// to nats-server's; reported with its own message).
pub fn has_control_or_space(name: &str) -> bool {
    name.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for bad in [
            "", "a.b", "a*", "a>", "a/b", "a\\b", "a b", "a\tb", "a\0b", "a\u{1}b", "a\u{7f}b",
            "a\u{85}b", "a\u{a0}b", "a\r\nb",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        for good in ["ORDERS-1_x", "aéb", "KV_bucket", "$x", &"x".repeat(300)] {
            assert!(is_valid_name(good), "{good:?}");
        }
        assert!(has_control_or_space("a\0b"));
        assert!(!has_control_or_space("a.b"));
    }
}
