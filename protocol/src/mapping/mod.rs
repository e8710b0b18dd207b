//! Subject transforms ("mappings"): a source filter and a destination template that
//! rewrites the subjects the filter matches, with nats-server's mapping functions.
//!
//! One implementation serves every place NATS transforms subjects: the server's and each
//! account's `mappings {}` (applied when a client publishes), a stream's
//! `subject_transform`, the `subject_transforms` of mirrors and sources, and `republish`.
//!
//! A destination is a `.`-separated template. Each token is one of:
//! * a literal token;
//! * `>` (last, only when the source ends in `>`): the tokens the source's `>` matched;
//! * `$N` or `{{wildcard(N)}}`: the token the source's N-th `*` matched;
//! * a function: `{{partition(n, i...)}}`, `{{split(i, delim)}}`,
//!   `{{splitFromLeft(i, offset)}}`, `{{splitFromRight(i, offset)}}`,
//!   `{{sliceFromLeft(i, size)}}`, `{{sliceFromRight(i, size)}}`, `{{left(i, n)}}`,
//!   `{{right(i, n)}}`, `{{random(n)}}` (see `func` for their exact behaviour).
//!
//! A token that starts with `{{` and ends with `}}` must be a known function; anything
//! else (`x{{wildcard(1)}}`, `$x`) is literal, as in nats-server. Validation errors carry
//! nats-server's texts (`invalid mapping destination: wildcard index out of range in $2:
//! [2]`). Sans-IO: randomness (`random`, weighted mappings) comes from the caller.

mod func;
mod weighted;

#[cfg(test)]
mod tests;

use std::fmt;

pub use self::func::fnv1a32;
use self::func::{Func, Wildcards};
pub use self::weighted::{Mapping, MappingDest, WeightError};
use crate::subject;

/// Why a transform was refused; `Display` is nats-server's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The source or destination is not a valid subject, or their `>` do not pair up,
    /// or the destination has a `*`.
    #[error("invalid subject")]
    InvalidSubject,
    /// An empty token or whitespace in the destination.
    #[error("invalid mapping destination: invalid transform")]
    InvalidTransform,
    /// A token after the destination's `>`.
    #[error("invalid mapping destination: invalid transform in {0}")]
    TokenAfterTail(String),
    /// `{{name(...)}}` with an unknown name or shape.
    #[error("invalid mapping destination: unknown function in {0}")]
    UnknownFunction(String),
    /// A wildcard index beyond the source's `*` count.
    #[error("invalid mapping destination: wildcard index out of range in {token}{}", index.map(|i| format!(": [{i}]")).unwrap_or_default())]
    OutOfRange {
        /// The destination token.
        token: String,
        /// The index (absent when the source has no wildcard at all).
        index: Option<i64>,
    },
    /// Too few arguments.
    #[error("invalid mapping destination: not enough arguments passed to the function in {0}")]
    NotEnoughArgs(String),
    /// Too many arguments.
    #[error("invalid mapping destination: too many arguments passed to the function in {0}")]
    TooManyArgs(String),
    /// An argument that does not parse.
    #[error(
        "invalid mapping destination: function argument is invalid or in the wrong format in {0}"
    )]
    BadArgument(String),
}

/// One destination token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// The tokens matched by the source's trailing `>`.
    Tail,
    Func(Func),
}

/// A validated source → destination transform.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectTransform {
    src: String,
    dest: String,
    /// Tokens in the source (the position of its `>`, if any, is `src_tokens - 1`).
    src_tokens: usize,
    parts: Vec<Part>,
}

impl fmt::Debug for SubjectTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dest)
    }
}

fn is_function_token(t: &str) -> bool {
    t.len() > 4 && t.starts_with("{{") && t.ends_with("}}")
}

/// `$N` (digits only) as a wildcard index.
fn dollar_index(t: &str) -> Option<i64> {
    let digits = t.strip_prefix('$')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<i64>().unwrap_or(i64::MAX))
}

impl SubjectTransform {
    /// Builds a transform. An empty `src` means `>`; an empty `dest` keeps subjects as
    /// they are (a pure filter, as in sources' `subject_transforms`).
    ///
    /// # Errors
    /// nats-server's reason the pair is invalid.
    pub fn new(src: &str, dest: &str) -> Result<Self, MappingError> {
        let src = if src.is_empty() { ">" } else { src };
        let dest = if dest.is_empty() { src } else { dest };
        for t in dest.split('.') {
            if t.is_empty() || (!is_function_token(t) && t.contains(char::is_whitespace)) {
                return Err(MappingError::InvalidTransform);
            }
        }
        let src_fwc = src == ">" || src.ends_with(".>");
        let dest_fwc = dest.split('.').any(|t| t == ">");
        let dest_pwc = dest.split('.').any(|t| t == "*");
        if subject::validate_filter(src).is_err() || dest_pwc || src_fwc != dest_fwc {
            return Err(MappingError::InvalidSubject);
        }
        let positions: Vec<usize> = subject::tokens(src)
            .enumerate()
            .filter(|(_, t)| *t == "*")
            .map(|(i, _)| i)
            .collect();
        let wc = Wildcards {
            positions: &positions,
        };
        let mut parts = Vec::new();
        let mut after_tail = false;
        for t in dest.split('.') {
            if after_tail {
                return Err(MappingError::TokenAfterTail(t.to_owned()));
            }
            parts.push(Self::part(t, &wc)?);
            after_tail = t == ">";
        }
        Ok(Self {
            src: src.to_owned(),
            dest: dest.to_owned(),
            src_tokens: subject::tokens(src).count(),
            parts,
        })
    }

    fn part(t: &str, wc: &Wildcards<'_>) -> Result<Part, MappingError> {
        if t == ">" {
            return Ok(Part::Tail);
        }
        if let Some(index) = dollar_index(t) {
            let token = format!("{{{{wildcard({index})}}}}");
            return match func::parse(&token, wc) {
                Ok(f) => Ok(Part::Func(f)),
                Err(MappingError::OutOfRange { index, .. }) => Err(MappingError::OutOfRange {
                    token: t.to_owned(),
                    index,
                }),
                Err(e) => Err(e),
            };
        }
        if is_function_token(t) {
            return func::parse(t, wc).map(Part::Func);
        }
        Ok(Part::Literal(t.to_owned()))
    }

    /// The source filter.
    pub fn src(&self) -> &str {
        &self.src
    }

    /// The destination template.
    pub fn dest(&self) -> &str {
        &self.dest
    }

    /// True when the source filter matches `subject`.
    pub fn matches(&self, subject: &str) -> bool {
        subject::matches(&self.src, subject)
    }

    /// The new subject for `subject`, or `None` when the source does not match it.
    /// `rand(n)` must return a number below `n` (for `{{random(n)}}`). The result may be
    /// an invalid subject (a split that leaves an empty token): callers drop such messages.
    pub fn apply(&self, subject: &str, rand: &mut dyn FnMut(u32) -> u32) -> Option<String> {
        if !self.matches(subject) {
            return None;
        }
        let tokens: Vec<&str> = subject::tokens(subject).collect();
        let mut out = String::with_capacity(subject.len() + self.dest.len());
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Tail => out.push_str(&tokens[self.src_tokens - 1..].join(".")),
                Part::Func(f) => f.eval(subject, &tokens, rand, &mut out),
            }
        }
        Some(out)
    }

    /// [`SubjectTransform::apply`] for transforms without `{{random}}` (any caller's
    /// randomness is fine; this one always picks 0).
    pub fn apply_det(&self, subject: &str) -> Option<String> {
        self.apply(subject, &mut |_| 0)
    }
}
