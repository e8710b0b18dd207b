//! The mapping functions of a destination token (`{{wildcard(1)}}`, `{{partition(3,1,2)}}`,
//! …): parsing with nats-server's error texts, and evaluation on a subject's tokens.
//!
//! Behaviour recorded from nats-server 2.15.1 (the table tests in `tests.rs` hold it):
//! * a function name matches when each word of its camel-case form starts with either
//!   case and the rest is lower case (`SplitFromLeft`, `splitfromleft`, `slicefromLeft`;
//!   not `SPLIT`);
//! * numeric arguments may carry spaces and a `+` sign; a wildcard index of 0 or below
//!   reads the subject's first token;
//! * offsets and sizes of 0 or below, or not inside the token, leave the token whole;
//! * `partition(n, …)` hashes the named tokens concatenated (no separator), or the whole
//!   subject when none are named, with 32-bit FNV-1a, modulo `n` taken as an unsigned
//!   32-bit number (`-1` is 4294967295; 0 gives partition 0);
//! * `split(i, d)` drops empty pieces; an empty delimiter splits every character.

use super::MappingError;

/// Where a function reads a token: a position in the subject.
pub(super) type Pos = usize;

/// One mapping function with its resolved arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Func {
    /// `{{wildcard(i)}}` and `$i`.
    Wildcard(Pos),
    /// `{{partition(n, i...)}}`; no positions hash the whole subject.
    Partition(u32, Vec<Pos>),
    /// `{{split(i, delimiter)}}`.
    Split(Pos, String),
    /// `{{splitFromLeft(i, offset)}}`.
    SplitFromLeft(Pos, i64),
    /// `{{splitFromRight(i, offset)}}`.
    SplitFromRight(Pos, i64),
    /// `{{sliceFromLeft(i, size)}}`.
    SliceFromLeft(Pos, i64),
    /// `{{sliceFromRight(i, size)}}`.
    SliceFromRight(Pos, i64),
    /// `{{left(i, n)}}`: the first `n` characters.
    Left(Pos, i64),
    /// `{{right(i, n)}}`: the last `n` characters.
    Right(Pos, i64),
    /// `{{random(n)}}`: a number in `0..n`.
    Random(u32),
}

/// The functions by camel-case name (each word's first letter may be either case).
const NAMES: [(&[&str], Kind); 10] = [
    (&["wildcard"], Kind::Wildcard),
    (&["partition"], Kind::Partition),
    (&["split", "from", "left"], Kind::SplitFromLeft),
    (&["split", "from", "right"], Kind::SplitFromRight),
    (&["slice", "from", "left"], Kind::SliceFromLeft),
    (&["slice", "from", "right"], Kind::SliceFromRight),
    (&["split"], Kind::Split),
    (&["left"], Kind::Left),
    (&["right"], Kind::Right),
    (&["random"], Kind::Random),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wildcard,
    Partition,
    Split,
    SplitFromLeft,
    SplitFromRight,
    SliceFromLeft,
    SliceFromRight,
    Left,
    Right,
    Random,
}

/// The source's wildcards, to resolve indexes to subject positions.
pub(super) struct Wildcards<'a> {
    /// Subject position of each `*` of the source, in order.
    pub(super) positions: &'a [Pos],
}

impl Wildcards<'_> {
    /// The position of wildcard `index` (1-based); 0 or below reads the first token.
    fn resolve(&self, index: i64, token: &str) -> Result<Pos, MappingError> {
        if index <= 0 {
            return Ok(0);
        }
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        match self.positions.get(i - 1) {
            Some(&p) => Ok(p),
            None if self.positions.is_empty() => Err(MappingError::OutOfRange {
                token: token.to_owned(),
                index: None,
            }),
            None => Err(MappingError::OutOfRange {
                token: token.to_owned(),
                index: Some(index),
            }),
        }
    }
}

/// True when `name` spells the camel-case `words` (first letters in either case).
fn name_is(name: &str, words: &[&str]) -> bool {
    let mut rest = name;
    for w in words {
        let (first, tail) = w.split_at(1);
        let Some(c) = rest.chars().next() else {
            return false;
        };
        if !c.to_string().eq_ignore_ascii_case(first) || !rest[c.len_utf8()..].starts_with(tail) {
            return false;
        }
        rest = &rest[c.len_utf8() + tail.len()..];
    }
    rest.is_empty()
}

/// Parses the `{{...}}` token `token` (braces included).
///
/// # Errors
/// nats-server's: unknown function, wrong argument count or format, index out of range.
pub(super) fn parse(token: &str, wc: &Wildcards<'_>) -> Result<Func, MappingError> {
    let unknown = || MappingError::UnknownFunction(token.to_owned());
    let inner = token[2..token.len() - 2].trim();
    let (name, rest) = inner.split_once('(').ok_or_else(unknown)?;
    let args = rest.strip_suffix(')').ok_or_else(unknown)?;
    let kind = NAMES
        .iter()
        .find(|(words, _)| name_is(name.trim_end(), words))
        .map(|(_, k)| *k)
        .ok_or_else(unknown)?;
    let args: Vec<&str> = if args.trim().is_empty() {
        Vec::new()
    } else {
        args.split(',').collect()
    };
    build(kind, &args, token, wc)
}

fn int(arg: &str, token: &str) -> Result<i64, MappingError> {
    arg.trim()
        .parse::<i64>()
        .map_err(|_| MappingError::BadArgument(token.to_owned()))
}

/// `n` of partition/random: a 32-bit number, signed or not, taken as unsigned.
fn modulus(arg: &str, token: &str) -> Result<u32, MappingError> {
    let v = int(arg, token)?;
    if let Ok(signed) = i32::try_from(v) {
        return Ok(signed as u32);
    }
    u32::try_from(v).map_err(|_| MappingError::BadArgument(token.to_owned()))
}

fn arity(args: &[&str], n: usize, token: &str) -> Result<(), MappingError> {
    match args.len() {
        k if k < n => Err(MappingError::NotEnoughArgs(token.to_owned())),
        k if k > n => Err(MappingError::TooManyArgs(token.to_owned())),
        _ => Ok(()),
    }
}

fn build(kind: Kind, args: &[&str], token: &str, wc: &Wildcards<'_>) -> Result<Func, MappingError> {
    let bad = || MappingError::BadArgument(token.to_owned());
    match kind {
        Kind::Wildcard => {
            arity(args, 1, token)?;
            Ok(Func::Wildcard(wc.resolve(int(args[0], token)?, token)?))
        }
        Kind::Random => match args {
            [] => Err(bad()),
            [n] => Ok(Func::Random(modulus(n, token)?)),
            _ => Err(MappingError::NotEnoughArgs(token.to_owned())),
        },
        Kind::Partition => {
            let (n, keys) = args.split_first().ok_or_else(bad)?;
            let n = modulus(n, token)?;
            // A source without wildcards hashes the whole subject, whatever is named.
            let mut positions = Vec::with_capacity(keys.len());
            for k in keys {
                let index = int(k, token)?;
                if !wc.positions.is_empty() {
                    positions.push(wc.resolve(index, token)?);
                }
            }
            Ok(Func::Partition(n, positions))
        }
        Kind::Split => {
            arity(args, 2, token)?;
            let delim = args[1].trim_start();
            if delim.ends_with(char::is_whitespace) {
                return Err(bad());
            }
            let pos = wc.resolve(int(args[0], token)?, token)?;
            Ok(Func::Split(pos, delim.to_owned()))
        }
        _ => {
            arity(args, 2, token)?;
            let pos = wc.resolve(int(args[0], token)?, token)?;
            let n = int(args[1], token)?;
            Ok(match kind {
                Kind::SplitFromLeft => Func::SplitFromLeft(pos, n),
                Kind::SplitFromRight => Func::SplitFromRight(pos, n),
                Kind::SliceFromLeft => Func::SliceFromLeft(pos, n),
                Kind::SliceFromRight => Func::SliceFromRight(pos, n),
                Kind::Left => Func::Left(pos, n),
                _ => Func::Right(pos, n),
            })
        }
    }
}

/// 32-bit FNV-1a over `parts`, in order, as one byte string.
pub fn fnv1a32<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for &b in part {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// `n` as an offset strictly inside `token` (on a character boundary), if it is one.
fn inside(token: &str, n: i64) -> Option<usize> {
    let n = usize::try_from(n).ok()?;
    (n > 0 && n < token.len() && token.is_char_boundary(n)).then_some(n)
}

/// Cuts `token` into `size`-byte slices; the short one first (`from_right`) or last.
fn slices(token: &str, size: i64, from_right: bool, out: &mut String) {
    let Some(size) = inside(token, size) else {
        out.push_str(token);
        return;
    };
    let first = if from_right && !token.len().is_multiple_of(size) {
        token.len() % size
    } else {
        size
    };
    let mut cuts = vec![0];
    let mut at = first;
    while at < token.len() {
        cuts.push(at);
        at += size;
    }
    cuts.push(token.len());
    if cuts.iter().any(|&c| !token.is_char_boundary(c)) {
        out.push_str(token);
        return;
    }
    let parts: Vec<&str> = cuts.windows(2).map(|w| &token[w[0]..w[1]]).collect();
    out.push_str(&parts.join("."));
}

impl Func {
    /// Appends this function's output for the subject `tokens` to `out`.
    pub(super) fn eval(
        &self,
        subject: &str,
        tokens: &[&str],
        rand: &mut dyn FnMut(u32) -> u32,
        out: &mut String,
    ) {
        let tok = |p: &Pos| tokens.get(*p).copied().unwrap_or_default();
        match self {
            Func::Wildcard(p) => out.push_str(tok(p)),
            Func::Partition(n, keys) => {
                let hash = if keys.is_empty() {
                    fnv1a32([subject.as_bytes()])
                } else {
                    fnv1a32(keys.iter().map(|p| tok(p).as_bytes()))
                };
                let part = if *n == 0 { 0 } else { hash % n };
                out.push_str(&part.to_string());
            }
            Func::Random(n) => {
                let r = if *n == 0 { 0 } else { rand(*n) % n };
                out.push_str(&r.to_string());
            }
            Func::Split(p, delim) => {
                let t = tok(p);
                let pieces: Vec<&str> = if delim.is_empty() {
                    t.split_inclusive(|_| true).collect()
                } else {
                    t.split(delim.as_str()).filter(|s| !s.is_empty()).collect()
                };
                out.push_str(&pieces.join("."));
            }
            Func::SplitFromLeft(p, n) | Func::SplitFromRight(p, n) => {
                let t = tok(p);
                let at = match self {
                    Func::SplitFromLeft(..) => inside(t, *n),
                    _ => inside(t, *n).and_then(|k| inside(t, (t.len() - k) as i64)),
                };
                match at {
                    Some(at) => {
                        out.push_str(&t[..at]);
                        out.push('.');
                        out.push_str(&t[at..]);
                    }
                    None => out.push_str(t),
                }
            }
            Func::SliceFromLeft(p, n) => slices(tok(p), *n, false, out),
            Func::SliceFromRight(p, n) => slices(tok(p), *n, true, out),
            Func::Left(p, n) => {
                let t = tok(p);
                out.push_str(inside(t, *n).map_or(t, |k| &t[..k]));
            }
            Func::Right(p, n) => {
                let t = tok(p);
                let from = inside(t, *n).and_then(|k| inside(t, (t.len() - k) as i64));
                out.push_str(from.map_or(t, |k| &t[k..]));
            }
        }
    }
}
