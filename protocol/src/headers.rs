//! NATS header blocks (ADR-4): `NATS/1.0[ <code>[ <description>]]\r\n` then
//! `Name: value\r\n` lines and a blank line.
//!
//! Names keep their case and may repeat (multi-valued). [`find`] looks one value up
//! in a raw block without building a map, for hot paths such as `Nats-Msg-Id`.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The version line every header block starts with.
pub const VERSION_LINE: &str = "NATS/1.0";

/// Why a header block could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The block does not start with `NATS/1.0`.
    #[error("header block does not start with NATS/1.0")]
    BadVersion,
    /// The status code is not three digits.
    #[error("invalid status code")]
    BadStatus,
    /// A line without `:` or a block not ended by a blank line.
    #[error("malformed header line")]
    BadLine,
}

/// A parsed header block: optional inline status plus ordered, case-preserving entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    /// Inline status code (`503`, `100`, `404`, `408`, `409`…).
    pub status: Option<u16>,
    /// Text after the status code.
    pub description: Option<String>,
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// A block with an inline status and optional description.
    pub fn with_status(code: u16, description: Option<&str>) -> Self {
        Self {
            status: Some(code),
            description: description.map(str::to_owned),
            entries: Vec::new(),
        }
    }

    /// Adds a value, keeping earlier values of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.push((name.into(), value.into()));
        self
    }

    /// Replaces every value of `name` with one value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.entries.retain(|(n, _)| *n != name);
        self.entries.push((name, value.into()));
        self
    }

    /// Removes every value of `name` (exact case).
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| n != name);
    }

    /// The first value of `name` (exact case, as nats-server looks headers up).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// True when there is neither a status nor an entry.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.entries.is_empty()
    }

    /// Parses a raw block (`NATS/1.0…\r\n\r\n`).
    ///
    /// # Errors
    /// [`HeaderError`] when the version line, status or a header line is malformed.
    pub fn parse(block: &[u8]) -> Result<Self, HeaderError> {
        let text = String::from_utf8_lossy(block);
        let mut lines = text.split("\r\n");
        let first = lines.next().ok_or(HeaderError::BadVersion)?;
        let rest = first
            .strip_prefix(VERSION_LINE)
            .ok_or(HeaderError::BadVersion)?;
        let mut map = Self::new();
        let rest = rest.trim_start_matches([' ', '\t']);
        if !rest.is_empty() {
            let (code, desc) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeaderError::BadStatus);
            }
            map.status = code.parse().ok();
            let desc = desc.trim();
            if !desc.is_empty() {
                map.description = Some(desc.to_owned());
            }
        }
        let mut ended = false;
        for line in lines {
            if line.is_empty() {
                ended = true;
                break;
            }
            let (name, value) = line.split_once(':').ok_or(HeaderError::BadLine)?;
            map.entries
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if !ended {
            return Err(HeaderError::BadLine);
        }
        Ok(map)
    }

    /// Appends the encoded block, blank line included, to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_slice(VERSION_LINE.as_bytes());
        if let Some(code) = self.status {
            buf.put_u8(b' ');
            buf.put_slice(itoa::Buffer::new().format(code).as_bytes());
            if let Some(desc) = &self.description {
                buf.put_u8(b' ');
                buf.put_slice(desc.as_bytes());
            }
        }
        buf.put_slice(b"\r\n");
        for (name, value) in &self.entries {
            buf.put_slice(name.as_bytes());
            buf.put_slice(b": ");
            buf.put_slice(value.as_bytes());
            buf.put_slice(b"\r\n");
        }
        buf.put_slice(b"\r\n");
    }

    /// The encoded block as `Bytes`.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(64);
        self.encode(&mut buf);
        buf.freeze()
    }
}

impl fmt::Display for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Finds the first value of `name` (exact case) in a raw header block without parsing it all.
pub fn find<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut lines = block.split(|&b| b == b'\n').skip(1);
    lines.find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = line.strip_prefix(name.as_bytes())?;
        let rest = rest.strip_prefix(b":")?;
        Some(rest.trim_ascii())
    })
}

/// The inline status code of a raw header block, if any.
pub fn status(block: &[u8]) -> Option<u16> {
    let rest = block.strip_prefix(VERSION_LINE.as_bytes())?;
    let code = rest.trim_ascii_start().get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_status_and_multi_values() {
        let mut h = HeaderMap::with_status(408, Some("Request Timeout"));
        h.append("Nats-Pending-Messages", "3")
            .append("X-Tag", "a")
            .append("X-Tag", "b");
        let bytes = h.to_bytes();
        insta::assert_snapshot!(String::from_utf8_lossy(&bytes).escape_debug().to_string());
        let back = HeaderMap::parse(&bytes).expect("parses");
        assert_eq!(back, h);
        assert_eq!(back.get_all("X-Tag").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn no_responders_block() {
        let mut h = HeaderMap::with_status(503, None);
        h.append("Nats-Subject", "svc.add");
        insta::assert_snapshot!(
            String::from_utf8_lossy(&h.to_bytes())
                .escape_debug()
                .to_string()
        );
    }

    #[test]
    fn find_without_parsing() {
        let block = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nnats-msg-id: lower\r\n\r\n";
        assert_eq!(find(block, "Nats-Msg-Id"), Some(&b"abc"[..]));
        assert_eq!(find(block, "Nats-Expected-Stream"), None);
        assert_eq!(status(b"NATS/1.0 503\r\n\r\n"), Some(503));
        assert_eq!(status(b"NATS/1.0\r\n\r\n"), None);
    }

    #[test]
    fn case_preserved_and_malformed_rejected() {
        let h = HeaderMap::parse(b"NATS/1.0\r\nfOo: Bar\r\n\r\n").expect("parses");
        assert_eq!(h.get("fOo"), Some("Bar"));
        assert_eq!(h.get("foo"), None);
        assert_eq!(
            HeaderMap::parse(b"HTTP/1.1\r\n\r\n"),
            Err(HeaderError::BadVersion)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0 5x3\r\n\r\n"),
            Err(HeaderError::BadStatus)
        );
        assert_eq!(
            HeaderMap::parse(b"NATS/1.0\r\nnocolon\r\n\r\n"),
            Err(HeaderError::BadLine)
        );
    }
}
