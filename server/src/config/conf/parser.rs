//! The structure of the config language: documents, maps, arrays, entries, includes and
//! variable resolution. Scalars are read by `lexer`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{Cursor, Scalar, classify};
use super::{ConfMap, ConfValue, ParseError, Pos, ValueKind, include_base};

/// Deepest include nesting accepted (a cycle of includes stops here).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Deepest map/array nesting accepted, so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 128;

/// Parses a config file.
///
/// # Errors
/// A syntax error, an unresolved variable or an unreadable file or include, with its
/// position.
pub fn parse_file(path: &Path) -> Result<ConfMap, ParseError> {
    let mut env_stack = Vec::new();
    parse_file_at(path, 0, &mut env_stack, Pos::default())
}

/// Parses config text; includes are resolved relative to the working directory.
///
/// # Errors
/// As [`parse_file`].
pub fn parse_str(text: &str) -> Result<ConfMap, ParseError> {
    let mut env_stack = Vec::new();
    Parser::new(Cursor::new(text, None), PathBuf::new(), 0, &mut env_stack).document()
}

fn parse_file_at(
    path: &Path,
    depth: usize,
    env_stack: &mut Vec<String>,
    at: Pos,
) -> Result<ConfMap, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ParseError::new(
            at,
            format!("open {}: {}", path.display(), crate::config::go_error(&e)),
        )
    })?;
    let file: Arc<Path> = Arc::from(path);
    let base = include_base(Some(path));
    Parser::new(Cursor::new(&text, Some(file)), base, depth, env_stack).document()
}

struct Parser<'a> {
    cur: Cursor,
    base: PathBuf,
    include_depth: usize,
    /// Maps being built, outermost first: variables are looked up innermost first.
    scopes: Vec<ConfMap>,
    /// Environment variables being expanded, to detect `A=$B`, `B=$A` cycles.
    env_stack: &'a mut Vec<String>,
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn new(
        cur: Cursor,
        base: PathBuf,
        include_depth: usize,
        env_stack: &'a mut Vec<String>,
    ) -> Self {
        Self {
            cur,
            base,
            include_depth,
            scopes: Vec::new(),
            env_stack,
            nesting: 0,
        }
    }

    fn document(mut self) -> Result<ConfMap, ParseError> {
        self.cur.skip_separators();
        let map = if self.cur.peek() == Some('{') {
            let open = self.cur.pos();
            self.cur.bump();
            let map = self.map_body(Some(open))?;
            self.cur.skip_separators();
            if self.cur.peek().is_some() {
                return Err(self
                    .cur
                    .error("unexpected text after the closing '}' of the document"));
            }
            map
        } else {
            self.map_body(None)?
        };
        Ok(map)
    }

    /// Reads entries until `}` (when `open` is the position of `{`) or the end of input.
    fn map_body(&mut self, open: Option<Pos>) -> Result<ConfMap, ParseError> {
        self.enter()?;
        self.scopes.push(ConfMap::default());
        loop {
            self.cur.skip_separators();
            match (self.cur.peek(), &open) {
                (None, None) => break,
                (None, Some(open)) => {
                    return Err(ParseError::new(
                        open.clone(),
                        "map opened here is never closed with '}'",
                    ));
                }
                (Some('}'), Some(_)) => {
                    self.cur.bump();
                    break;
                }
                (Some('}'), None) => return Err(self.cur.error("unexpected '}' with no map open")),
                (Some(']'), _) => {
                    return Err(self.cur.error("unexpected ']' where a key was expected"));
                }
                _ => self.entry()?,
            }
        }
        self.nesting -= 1;
        Ok(self.scopes.pop().unwrap_or_default())
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self
                .cur
                .error(format!("maps and arrays nested deeper than {MAX_NESTING}")));
        }
        Ok(())
    }

    fn entry(&mut self) -> Result<(), ParseError> {
        let key_pos = self.cur.pos();
        let (key, quoted) = self.key()?;
        if key.is_empty() {
            let found = self.cur.peek().map(String::from).unwrap_or_default();
            return Err(ParseError::new(
                key_pos,
                format!("expected a key, found '{found}'"),
            ));
        }
        if !quoted
            && key.eq_ignore_ascii_case("include")
            && matches!(self.cur.peek(), Some(' ' | '\t'))
        {
            return self.include();
        }
        self.cur.skip_space();
        if matches!(self.cur.peek(), Some(':' | '=')) {
            self.cur.bump();
            self.skip_to_value(&key)?;
        }
        if self.cur.peek().is_none() {
            return Err(ParseError::new(
                key_pos,
                format!("key '{key}' has no value"),
            ));
        }
        let value = self.value()?;
        self.value_end(&key)?;
        self.scope().insert(key, key_pos, value);
        Ok(())
    }

    fn key(&mut self) -> Result<(String, bool), ParseError> {
        match self.cur.peek() {
            Some(q @ ('"' | '\'')) => Ok((self.cur.quoted_raw(q)?, true)),
            Some(':' | '=') => Err(self.cur.error("unexpected key separator: a key is missing")),
            _ => Ok((self.cur.bare_key(), false)),
        }
    }

    /// After `:`/`=`: blanks, then the value. A new line is allowed only before `{` or `[`.
    fn skip_to_value(&mut self, key: &str) -> Result<(), ParseError> {
        self.cur.skip_blanks();
        if matches!(self.cur.peek(), Some('\n' | '\r')) || self.cur.at_comment() {
            let at = self.cur.pos();
            let saved = self.cur.clone();
            self.cur.skip_space();
            if !matches!(self.cur.peek(), Some('{' | '[')) {
                self.cur = saved;
                return Err(ParseError::new(
                    at,
                    format!("expected a value for '{key}' but found a new line"),
                ));
            }
        }
        Ok(())
    }

    /// After a value: blanks, then a new line, `,`, `;`, a comment, `}` or the end.
    fn value_end(&mut self, key: &str) -> Result<(), ParseError> {
        self.cur.skip_blanks();
        match self.cur.peek() {
            None | Some('\n' | '\r' | ',' | ';' | '}') => Ok(()),
            _ if self.cur.at_comment() => Ok(()),
            Some(c) => Err(self.cur.error(format!(
                "expected a new line, ',' or ';' after the value of '{key}', found '{c}' \
                 (quote strings that contain spaces)"
            ))),
        }
    }

    fn scope(&mut self) -> &mut ConfMap {
        if self.scopes.is_empty() {
            self.scopes.push(ConfMap::default());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    fn include(&mut self) -> Result<(), ParseError> {
        self.cur.skip_blanks();
        let at = self.cur.pos();
        let path = match self.cur.peek() {
            Some(q @ ('"' | '\'')) => self.cur.quoted_raw(q)?,
            Some('{' | '[' | '(' | '\n' | '\r') | None => {
                return Err(self.cur.error("expected a file name after 'include'"));
            }
            _ => self.cur.bare_word(),
        };
        self.value_end("include")?;
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(ParseError::new(
                at,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} (an include cycle?)"),
            ));
        }
        let full = self.base.join(&path);
        let included = parse_file_at(&full, self.include_depth + 1, self.env_stack, at.clone())
            .map_err(|e| ParseError::new(at, format!("error in include file '{path}': {e}")))?;
        for e in included.entries {
            self.scope().merge(e);
        }
        Ok(())
    }

    fn value(&mut self) -> Result<ConfValue, ParseError> {
        let pos = self.cur.pos();
        let kind = match self.cur.peek() {
            Some('{') => {
                self.cur.bump();
                ValueKind::Map(self.map_body(Some(pos.clone()))?)
            }
            Some('[') => ValueKind::Array(self.array()?),
            Some('"') => ValueKind::String(self.cur.dq_string()?),
            Some('\'') => ValueKind::String(self.cur.sq_string()?),
            Some('(') => ValueKind::String(self.cur.block_string()?),
            _ => return self.bare_value(pos),
        };
        Ok(ConfValue { kind, pos })
    }

    fn bare_value(&mut self, pos: Pos) -> Result<ConfValue, ParseError> {
        let word = self.cur.bare_word();
        if word.is_empty() {
            let found = self.cur.peek().map(String::from).unwrap_or_default();
            return Err(ParseError::new(
                pos,
                format!("expected a value, found '{found}'"),
            ));
        }
        let kind = match classify(&word).map_err(|m| ParseError::new(pos.clone(), m))? {
            Scalar::String(s) => ValueKind::String(s),
            Scalar::Int(n) => ValueKind::Int(n),
            Scalar::Float(f) => ValueKind::Float(f),
            Scalar::Bool(b) => ValueKind::Bool(b),
            Scalar::Datetime(d) => ValueKind::Datetime(d),
            Scalar::Variable(name) => return self.variable(&name, pos),
        };
        Ok(ConfValue { kind, pos })
    }

    fn array(&mut self) -> Result<Vec<ConfValue>, ParseError> {
        let open = self.cur.pos();
        self.cur.bump();
        self.enter()?;
        let mut items = Vec::new();
        loop {
            self.cur.skip_space();
            match self.cur.peek() {
                None => {
                    return Err(ParseError::new(
                        open,
                        "array opened here is never closed with ']'",
                    ));
                }
                Some(']') => {
                    self.cur.bump();
                    break;
                }
                Some(',') => {
                    return Err(self
                        .cur
                        .error("unexpected ',' in array: a value is missing"));
                }
                Some('}') => {
                    return Err(self.cur.error(format!(
                        "expected ',' or ']' to continue the array opened at {}, found '}}'",
                        open
                    )));
                }
                _ => {}
            }
            items.push(self.value()?);
            self.cur.skip_blanks();
            match self.cur.peek() {
                Some(',') => {
                    self.cur.bump();
                }
                Some(']' | '\n' | '\r') | None => {}
                _ if self.cur.at_comment() => {}
                Some(c) => {
                    return Err(self.cur.error(format!(
                        "expected ',' or ']' after an array value, found '{c}'"
                    )));
                }
            }
        }
        self.nesting -= 1;
        Ok(items)
    }

    /// Resolves `$name`: a key of an enclosing map (innermost first), else the environment.
    fn variable(&mut self, name: &str, pos: Pos) -> Result<ConfValue, ParseError> {
        for scope in self.scopes.iter_mut().rev() {
            if let Some(mut v) = scope.lookup_and_mark(name) {
                v.pos = pos;
                return Ok(v);
            }
        }
        if self.env_stack.iter().any(|n| n == name) {
            return Err(ParseError::new(
                pos,
                format!("variable reference cycle for '{name}'"),
            ));
        }
        let Ok(text) = std::env::var(name) else {
            return Err(ParseError::new(
                pos,
                format!("variable reference for '{name}' can not be found"),
            ));
        };
        self.env_stack.push(name.to_string());
        let parsed = env_value(&text, name, &pos, self.env_stack);
        self.env_stack.pop();
        let mut v = parsed?;
        v.pos = pos;
        Ok(v)
    }
}

/// Parses the text of an environment variable as one value (`4222` is an integer).
pub(super) fn env_value(
    text: &str,
    name: &str,
    pos: &Pos,
    env_stack: &mut Vec<String>,
) -> Result<ConfValue, ParseError> {
    let wrap = |e: ParseError| {
        ParseError::new(
            pos.clone(),
            format!("environment variable '{name}': {}", e.message),
        )
    };
    let mut p = Parser::new(
        Cursor::new(text, None),
        PathBuf::new(),
        MAX_INCLUDE_DEPTH,
        env_stack,
    );
    p.cur.skip_blanks();
    if p.cur.peek().is_none() {
        return Ok(ConfValue {
            kind: ValueKind::String(String::new()),
            pos: pos.clone(),
        });
    }
    let v = p.value().map_err(wrap)?;
    p.cur.skip_space();
    if p.cur.peek().is_some() {
        // Not a single value (e.g. contains spaces): keep the raw text as a string.
        return Ok(ConfValue {
            kind: ValueKind::String(text.to_string()),
            pos: pos.clone(),
        });
    }
    Ok(v)
}
