//! Character-level scanning for the config language: a cursor that tracks line and column,
//! skipping of blanks and comments, and the scalar tokens (quoted, block and bare strings,
//! numbers with size suffixes, booleans, variable references).
//!
//! The parser decides where a value may start; this module reads the value's characters.

use std::path::Path;
use std::sync::Arc;

use super::{ParseError, Pos};

/// A cursor over the source text.
#[derive(Debug, Clone)]
pub(super) struct Cursor {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    file: Option<Arc<Path>>,
}

/// A scalar read from the text, before variables are resolved.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Variable(String),
}

impl Cursor {
    pub(super) fn new(text: &str, file: Option<Arc<Path>>) -> Self {
        Self {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    pub(super) fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    pub(super) fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.pos(), message)
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// True at `#` or `//`.
    pub(super) fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_at(1) == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of the line.
    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.bump();
        }
    }

    /// Skips spaces and tabs.
    pub(super) fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Skips spaces, tabs, new lines and comments.
    pub(super) fn skip_space(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => return,
            }
        }
    }

    /// Skips spaces, tabs, new lines, comments and the `,`/`;` separators.
    pub(super) fn skip_separators(&mut self) {
        loop {
            self.skip_space();
            if !matches!(self.peek(), Some(',' | ';')) {
                return;
            }
            self.bump();
        }
    }

    /// Reads a double-quoted string; the opening quote is the next character.
    /// Escapes: `\t \n \r \" \\ \xHH`.
    pub(super) fn dq_string(&mut self) -> Result<String, ParseError> {
        let start = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(ParseError::new(start, "unterminated double-quoted string")),
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, ParseError> {
        let at = self.pos();
        match self.bump() {
            Some('t') => Ok('\t'),
            Some('n') => Ok('\n'),
            Some('r') => Ok('\r'),
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('x') => {
                let hex: String = [self.bump(), self.bump()].into_iter().flatten().collect();
                u8::from_str_radix(&hex, 16).map(char::from).map_err(|_| {
                    ParseError::new(
                        at,
                        format!("expected two hexadecimal digits after '\\x', got '{hex}'"),
                    )
                })
            }
            other => Err(ParseError::new(
                at,
                format!(
                    "invalid escape character '{}': only \\xXX, \\t, \\n, \\r, \\\" and \\\\ are allowed",
                    other.map(String::from).unwrap_or_default()
                ),
            )),
        }
    }

    /// Reads a single-quoted string (no escapes); the opening quote is the next character.
    pub(super) fn sq_string(&mut self) -> Result<String, ParseError> {
        self.quoted_raw('\'')
    }

    /// Reads a quoted key or include path without escapes; the opening quote is next.
    pub(super) fn quoted_raw(&mut self, quote: char) -> Result<String, ParseError> {
        let start = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(ParseError::new(start, "unterminated quoted string")),
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// Reads a block string `( … )` that ends at a `)` alone on its line.
    pub(super) fn block_string(&mut self) -> Result<String, ParseError> {
        let start = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(ParseError::new(
                        start,
                        "unterminated block string, expected ')' on a line by itself",
                    ));
                }
                Some(')')
                    if out.ends_with('\n') && matches!(self.peek(), None | Some('\n' | '\r')) =>
                {
                    out.pop();
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Reads a bare word: everything up to whitespace, `,`, `;`, `]`, `}` or the end.
    pub(super) fn bare_word(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | ';' | ']' | '}') {
                break;
            }
            out.push(c);
            self.bump();
        }
        out
    }

    /// Reads a bare key: everything up to whitespace, `:`, `=`, `{` or the end.
    pub(super) fn bare_key(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ':' | '=' | '{') {
                break;
            }
            out.push(c);
            self.bump();
        }
        out
    }
}

/// Gives a bare word its type, as nats-server does: number (with size suffix), float,
/// IP-like string, date-time, boolean, variable, or plain string.
pub(super) fn classify(word: &str) -> Result<Scalar, String> {
    let first = word.chars().next().unwrap_or(' ');
    if first == '-' || first.is_ascii_digit() {
        return classify_numeric(word);
    }
    match word.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Ok(Scalar::Bool(true)),
        "false" | "no" | "off" => return Ok(Scalar::Bool(false)),
        _ => {}
    }
    match word.strip_prefix('$') {
        Some(name) if !is_bcrypt(name) => Ok(Scalar::Variable(name.to_string())),
        _ => Ok(Scalar::String(word.to_string())),
    }
}

/// `$2a$…` and friends are bcrypt hashes, not variables.
fn is_bcrypt(name: &str) -> bool {
    ["2a$", "2b$", "2x$", "2y$"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn classify_numeric(word: &str) -> Result<Scalar, String> {
    let (neg, body) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let digits = body.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("expected a digit in '{word}'"));
    }
    let rest = &body[digits..];
    if rest.is_empty() {
        return int_with_suffix(word, neg, &body[..digits], "");
    }
    if rest.starts_with('.') {
        return classify_dotted(word);
    }
    if rest.starts_with('-') && !neg && digits == 4 {
        return datetime(word);
    }
    let suffix_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
    if suffix_len == rest.len() && is_size_suffix(rest) {
        return int_with_suffix(word, neg, &body[..digits], rest);
    }
    if neg {
        return Err(format!("invalid number '{word}'"));
    }
    // nats-server reads a word that starts with digits but is not a number as a string
    // (`10s`, `2h30m`, `4222abc`).
    Ok(Scalar::String(word.to_string()))
}

/// A float, or an IP-like string such as `127.0.0.1:4222`.
fn classify_dotted(word: &str) -> Result<Scalar, String> {
    let body = word.strip_prefix('-').unwrap_or(word);
    let mut parts = body.splitn(2, '.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next().unwrap_or_default();
    let frac_digits = frac.chars().take_while(char::is_ascii_digit).count();
    if frac_digits == 0 {
        return Err(format!(
            "floats must have a digit after the '.' in '{word}'"
        ));
    }
    if frac_digits == frac.len() {
        return word
            .parse::<f64>()
            .map(Scalar::Float)
            .map_err(|e| format!("invalid float '{word}': {e}"));
    }
    let ip_like = frac[frac_digits..].starts_with('.')
        && int
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'));
    if ip_like && !word.starts_with('-') {
        return Ok(Scalar::String(word.to_string()));
    }
    Err(format!(
        "invalid number '{word}' (size suffixes need an integer, e.g. 1536KB)"
    ))
}

fn datetime(word: &str) -> Result<Scalar, String> {
    let shape = "0000-00-00T00:00:00Z";
    let ok = word.len() == shape.len()
        && word
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == '0' { c.is_ascii_digit() } else { c == s });
    if ok {
        Ok(Scalar::Datetime(word.to_string()))
    } else {
        Err(format!(
            "invalid date-time '{word}': dates must be in full Zulu form, e.g. 2006-01-02T15:04:05Z"
        ))
    }
}

fn is_size_suffix(s: &str) -> bool {
    size_multiplier(s).is_some()
}

/// `k`/`m`/`g`/`t`/`p`/`e` are powers of 1000; followed by `b`, `i` or `ib` they are powers
/// of 1024 (nats-server: `1K` = 1000, `1KB` = `1KiB` = 1024).
fn size_multiplier(suffix: &str) -> Option<i64> {
    let lower = suffix.to_ascii_lowercase();
    let mut chars = lower.chars();
    let exp = match chars.next()? {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: i64 = match chars.as_str() {
        "" => 1000,
        "b" | "i" | "ib" => 1024,
        _ => return None,
    };
    Some(base.pow(exp))
}

fn int_with_suffix(word: &str, neg: bool, digits: &str, suffix: &str) -> Result<Scalar, String> {
    let out_of_range = || format!("integer '{word}' is out of range");
    let n: i64 = digits.parse().map_err(|_| out_of_range())?;
    let mult = if suffix.is_empty() {
        1
    } else {
        size_multiplier(suffix).ok_or_else(out_of_range)?
    };
    let v = n.checked_mul(mult).ok_or_else(out_of_range)?;
    Ok(Scalar::Int(if neg { -v } else { v }))
}

/// Parses a size written as a string (`"1G"`, `"512MB"`, `"1024"`), as nats-server does for
/// JetStream storage limits.
pub(crate) fn parse_size_str(s: &str) -> Option<i64> {
    match classify_numeric(s.trim()) {
        Ok(Scalar::Int(n)) => Some(n),
        _ => None,
    }
}
