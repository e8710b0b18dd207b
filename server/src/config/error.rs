//! `ConfigError` and `Warning`: what loading the configuration reports.

use std::{fmt, io};

use super::conf::{ParseError, Pos};

/// Why the configuration could not be loaded. Every variant's text is ready to print
/// after `nats-server: `-style prefixes; positions read `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file is not valid config-language text. Worded as nats-server words it,
    /// `Parse error on line N: `, which launchers look for, then rill's own detail
    /// (`file:line:col: what is wrong`).
    #[error("{}", parse_text(.0))]
    Parse(#[from] ParseError),
    /// A value has the wrong type or an invalid value.
    #[error("{pos}: {message}")]
    Invalid {
        /// Where the value was written.
        pos: Pos,
        /// What is wrong with it.
        message: String,
    },
    /// A bad command line (unknown flag, bad flag value). The text is clap's, complete.
    #[error("{0}")]
    Flags(String),
    /// A setting that cannot work (missing certificate, store dir that is a file, …),
    /// found after flags and file were combined.
    #[error("{0}")]
    Validation(String),
    /// `--signal` could not be delivered.
    #[error("{0}")]
    Signal(String),
}

impl ConfigError {
    /// An error at `pos`.
    pub fn at(pos: &Pos, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            pos: pos.clone(),
            message: message.into(),
        }
    }

    /// The exit code nats-server uses for this error (1; 2 for a bad command line, as
    /// Go's `flag` package and clap do).
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Flags(_) => 2,
            _ => 1,
        }
    }
}

/// `Parse error on line N: <detail>` for an error at a position; the bare detail for one
/// without (the file could not be read: nats-server prints `open <file>: ...` alone).
fn parse_text(e: &ParseError) -> String {
    if e.pos.line == 0 {
        e.to_string()
    } else {
        format!("Parse error on line {}: {e}", e.pos.line)
    }
}

/// Something accepted but not acted on (an unsupported feature, a deprecated form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where, when it came from the config file.
    pub pos: Option<Pos>,
    /// What was ignored or assumed.
    pub message: String,
}

impl Warning {
    /// A warning about a config-file value.
    pub fn at(pos: &Pos, message: impl Into<String>) -> Self {
        Self {
            pos: Some(pos.clone()),
            message: message.into(),
        }
    }

    /// A warning about the command line.
    pub fn flag(message: impl Into<String>) -> Self {
        Self {
            pos: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// An OS error worded as Go words it (`address already in use`), which is how
/// nats-server's messages read: the C library text with a lower-case first letter and
/// no `(os error N)` suffix.
pub fn go_error(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_go() {
        let e = io::Error::from_raw_os_error(98);
        assert_eq!(go_error(&e), "address already in use");
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(go_error(&e), "no such file or directory");
        assert_eq!(go_error(&io::Error::other("Custom")), "custom");
    }
}
