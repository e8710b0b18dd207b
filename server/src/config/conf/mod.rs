//! The nats-server configuration language, parsed into a [`ConfValue`] tree.
//!
//! Owns the syntax only: what a key, a value, an include or a variable is, and where each
//! one was written. It knows nothing about which keys exist; `config::load` gives them
//! meaning. The grammar follows nats-server's (behaviour checked against v2.15.1):
//!
//! ```text
//! document  := '{' entries '}' | entries          (the plain JSON form is a document too)
//! entries   := (entry | 'include' path | sep)*
//! entry     := key ws* (':' | '=' | ws) value
//! sep       := newline | ',' | ';' | comment       (comment: '#…' or '//…' to end of line)
//! value     := map | array | "dq string" | 'sq string' | (block string) | number | bare
//! map       := '{' entries '}'        array := '[' (value (',' | newline)*)* ']'
//! number    := -?digits ('.' digits)? | -?digits suffix  (k m g t p e: powers of 1000;
//!              with 'b', 'i' or 'ib': powers of 1024; case-insensitive)
//! bare      := text up to whitespace, newline, ',', ';', ']' or '}': true/false/yes/no/
//!              on/off are booleans, '$NAME' is a variable, anything else a string
//!              (so `10s`, `127.0.0.1:4222` and `localhost` are strings)
//! ```
//!
//! A variable `$NAME` takes the value of key `NAME` defined earlier in the same map or an
//! enclosing one, else the environment variable `NAME` (itself parsed as a value), else it
//! is an error. `include path` reads another file, relative to the including file's
//! directory, and merges its keys into the current map. A later key replaces an earlier
//! one of the same name.

mod lexer;
mod parser;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use lexer::parse_size_str;
pub use parser::{parse_file, parse_str};

/// Where a value or key was written: file (absent for strings), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    /// The file, or `None` for text parsed from a string.
    pub file: Option<Arc<Path>>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file.display(), self.line, self.col),
            None => write!(f, "{}:{}", self.line, self.col),
        }
    }
}

/// A parsed value and the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfValue {
    /// The value.
    pub kind: ValueKind,
    /// Where it was written (for a variable reference: where the reference was).
    pub pos: Pos,
}

/// The value types of the configuration language.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A quoted, block or bare string.
    String(String),
    /// An integer, size suffixes already applied (`64KB` is 65536).
    Int(i64),
    /// A float such as `0.5`.
    Float(f64),
    /// `true`/`yes`/`on` or `false`/`no`/`off` (any case).
    Bool(bool),
    /// An ISO 8601 Zulu date-time, `2006-01-02T15:04:05Z`, kept as written.
    Datetime(String),
    /// `[ … ]`.
    Array(Vec<ConfValue>),
    /// `{ … }`.
    Map(ConfMap),
}

impl ValueKind {
    /// A short name of the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueKind::String(_) => "string",
            ValueKind::Int(_) => "integer",
            ValueKind::Float(_) => "float",
            ValueKind::Bool(_) => "boolean",
            ValueKind::Datetime(_) => "date-time",
            ValueKind::Array(_) => "array",
            ValueKind::Map(_) => "map",
        }
    }
}

/// One `key: value` of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (quotes removed).
    pub key: String,
    /// Where the key was written.
    pub key_pos: Pos,
    /// The value.
    pub value: ConfValue,
    /// The key was referenced as a `$variable`, so it is a definition rather than a
    /// setting: nats-server does not report such keys as unknown fields.
    pub used_as_variable: bool,
}

/// A map in the order its keys were written; a repeated key replaces the earlier value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfMap {
    entries: Vec<Entry>,
}

impl ConfMap {
    /// The entries in written order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The value of `key` (exact match).
    pub fn get(&self, key: &str) -> Option<&ConfValue> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts or replaces `key`, keeping the position of the first definition in order.
    pub fn insert(&mut self, key: String, key_pos: Pos, value: ConfValue) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.key_pos = key_pos;
            e.value = value;
        } else {
            self.entries.push(Entry {
                key,
                key_pos,
                value,
                used_as_variable: false,
            });
        }
    }

    /// Inserts an entry taken from an included file, keeping its variable flag.
    fn merge(&mut self, entry: Entry) {
        let used = entry.used_as_variable;
        let key = entry.key.clone();
        self.insert(entry.key, entry.key_pos, entry.value);
        if used {
            self.lookup_and_mark(&key);
        }
    }

    /// Marks `key` as referenced by a variable and returns its value.
    fn lookup_and_mark(&mut self, key: &str) -> Option<ConfValue> {
        let e = self.entries.iter_mut().find(|e| e.key == key)?;
        e.used_as_variable = true;
        Some(e.value.clone())
    }
}

/// A syntax error, unresolved variable or unreadable include, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 is "no position" (e.g. the top-level file could not be read).
        if self.pos.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pos, self.message)
        }
    }
}

impl ParseError {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
        }
    }
}

/// The directory relative to which a file's includes are resolved.
fn include_base(file: Option<&Path>) -> PathBuf {
    file.and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
