//! [`ApiSubject`]: every `$JS.API.*` request subject, parsed and formatted in one place.
//!
//! The shapes are nats-server 2.15.1's API subscriptions: a name is one token, so
//! `$JS.API.STREAM.INFO.a.b` is not a stream-info request at all (nats-server does not
//! answer it; [`ApiSubject::parse`] says [`ApiSubjectError::Malformed`]). Names are
//! carried as they appear in the subject; the rules for a valid stream or consumer name
//! are checked by the handler that uses them.
//!
//! ```
//! use rill_protocol::jsapi::ApiSubject;
//!
//! let s = ApiSubject::parse("$JS.API.CONSUMER.INFO.ORDERS.worker").unwrap();
//! assert_eq!(s, ApiSubject::ConsumerInfo { stream: "ORDERS", consumer: "worker" });
//! assert_eq!(s.to_string(), "$JS.API.CONSUMER.INFO.ORDERS.worker");
//! assert_eq!(s.in_domain(Some("hub")), "$JS.hub.API.CONSUMER.INFO.ORDERS.worker");
//! ```

use std::fmt;

/// The prefix of every JetStream API subject (without a domain).
pub const API_PREFIX: &str = "$JS.API";

/// One `$JS.API.*` request subject. Names borrow from the parsed subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiSubject<'a> {
    /// `$JS.API.INFO`: the account's JetStream usage and limits.
    Info,
    /// `$JS.API.STREAM.CREATE.<stream>`.
    StreamCreate(&'a str),
    /// `$JS.API.STREAM.UPDATE.<stream>`.
    StreamUpdate(&'a str),
    /// `$JS.API.STREAM.INFO.<stream>`.
    StreamInfo(&'a str),
    /// `$JS.API.STREAM.DELETE.<stream>`.
    StreamDelete(&'a str),
    /// `$JS.API.STREAM.PURGE.<stream>`.
    StreamPurge(&'a str),
    /// `$JS.API.STREAM.NAMES`.
    StreamNames,
    /// `$JS.API.STREAM.LIST`.
    StreamList,
    /// `$JS.API.STREAM.MSG.GET.<stream>`.
    StreamMsgGet(&'a str),
    /// `$JS.API.STREAM.MSG.DELETE.<stream>`.
    StreamMsgDelete(&'a str),
    /// `$JS.API.STREAM.SNAPSHOT.<stream>`.
    StreamSnapshot(&'a str),
    /// `$JS.API.STREAM.RESTORE.<stream>`.
    StreamRestore(&'a str),
    /// `$JS.API.STREAM.LEADER.STEPDOWN.<stream>`.
    StreamLeaderStepdown(&'a str),
    /// `$JS.API.STREAM.PEER.REMOVE.<stream>`.
    StreamPeerRemove(&'a str),
    /// `$JS.API.DIRECT.GET.<stream>` (JSON request) or `.<stream>.<subject>` (the last
    /// message on `subject`, which may have several tokens).
    DirectGet {
        /// The stream.
        stream: &'a str,
        /// The subject in the request subject, if any.
        subject: Option<&'a str>,
    },
    /// `$JS.API.CONSUMER.CREATE.<stream>` (legacy ephemeral, or the name from the body)
    /// or `.<stream>.<consumer>[.<filter>]` (the filter may have several tokens).
    ConsumerCreate {
        /// The stream.
        stream: &'a str,
        /// The consumer name, in the named form.
        consumer: Option<&'a str>,
        /// The filter subject, in the named form with a filter.
        filter: Option<&'a str>,
    },
    /// `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>` (legacy durable form).
    ConsumerDurableCreate {
        /// The stream.
        stream: &'a str,
        /// The durable name.
        durable: &'a str,
    },
    /// `$JS.API.CONSUMER.NAMES.<stream>`.
    ConsumerNames(&'a str),
    /// `$JS.API.CONSUMER.LIST.<stream>`.
    ConsumerList(&'a str),
    /// `$JS.API.CONSUMER.INFO.<stream>.<consumer>`.
    ConsumerInfo {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.CONSUMER.DELETE.<stream>.<consumer>`.
    ConsumerDelete {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.CONSUMER.PAUSE.<stream>.<consumer>`.
    ConsumerPause {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.CONSUMER.RESET.<stream>.<consumer>`.
    ConsumerReset {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>`.
    ConsumerUnpin {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`.
    ConsumerLeaderStepdown {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request.
    ConsumerNext {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
    /// `$JS.API.ACCOUNT.PURGE.<account>`.
    AccountPurge(&'a str),
    /// `$JS.API.SERVER.REMOVE`.
    ServerRemove,
    /// `$JS.API.META.LEADER.STEPDOWN`.
    MetaLeaderStepdown,
}

/// Why a subject is not an [`ApiSubject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiSubjectError {
    /// The subject does not start with `$JS.API.`.
    #[error("not a JetStream API subject")]
    NotApi,
    /// No API operation has this name.
    #[error("unknown JetStream API operation")]
    Unknown,
    /// A known operation with missing, empty or extra name tokens.
    #[error("malformed JetStream API subject")]
    Malformed,
}

impl<'a> ApiSubject<'a> {
    /// Parses a full subject (`$JS.API.STREAM.INFO.ORDERS`).
    ///
    /// # Errors
    /// [`ApiSubjectError`]: not under `$JS.API.`, an unknown operation, or a known one
    /// with the wrong name tokens.
    pub fn parse(subject: &'a str) -> Result<Self, ApiSubjectError> {
        let op = subject
            .strip_prefix(API_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(ApiSubjectError::NotApi)?;
        Self::parse_op(op)
    }

    /// Parses the part after `$JS.API.` (or after a domain's `$JS.<domain>.API.`).
    ///
    /// # Errors
    /// As [`ApiSubject::parse`].
    pub fn parse_op(op: &'a str) -> Result<Self, ApiSubjectError> {
        let (family, rest) = op.split_once('.').unwrap_or((op, ""));
        match family {
            "INFO" => bare(rest, Self::Info),
            "STREAM" => Self::parse_stream(rest),
            "DIRECT" => Self::parse_direct(rest),
            "CONSUMER" => Self::parse_consumer(rest),
            "ACCOUNT" => match rest.split_once('.') {
                Some(("PURGE", name)) => one(name).map(Self::AccountPurge),
                _ => Err(ApiSubjectError::Unknown),
            },
            "SERVER" if rest == "REMOVE" => Ok(Self::ServerRemove),
            "META" if rest == "LEADER.STEPDOWN" => Ok(Self::MetaLeaderStepdown),
            _ => Err(ApiSubjectError::Unknown),
        }
    }

    fn parse_stream(op: &'a str) -> Result<Self, ApiSubjectError> {
        let (verb, rest) = op.split_once('.').unwrap_or((op, ""));
        let named = |f: fn(&'a str) -> Self, rest: &'a str| one(rest).map(f);
        match verb {
            "NAMES" => bare(rest, Self::StreamNames),
            "LIST" => bare(rest, Self::StreamList),
            "CREATE" => named(Self::StreamCreate, rest),
            "UPDATE" => named(Self::StreamUpdate, rest),
            "INFO" => named(Self::StreamInfo, rest),
            "DELETE" => named(Self::StreamDelete, rest),
            "PURGE" => named(Self::StreamPurge, rest),
            "SNAPSHOT" => named(Self::StreamSnapshot, rest),
            "RESTORE" => named(Self::StreamRestore, rest),
            _ => match (verb, rest.split_once('.')) {
                ("MSG", Some(("GET", name))) => named(Self::StreamMsgGet, name),
                ("MSG", Some(("DELETE", name))) => named(Self::StreamMsgDelete, name),
                ("LEADER", Some(("STEPDOWN", name))) => named(Self::StreamLeaderStepdown, name),
                ("PEER", Some(("REMOVE", name))) => named(Self::StreamPeerRemove, name),
                _ => Err(ApiSubjectError::Unknown),
            },
        }
    }

    fn parse_direct(op: &'a str) -> Result<Self, ApiSubjectError> {
        let rest = op.strip_prefix("GET.").ok_or(ApiSubjectError::Unknown)?;
        let (stream, subject) = match rest.split_once('.') {
            Some((stream, subject)) => (stream, Some(nonempty(subject)?)),
            None => (rest, None),
        };
        Ok(Self::DirectGet {
            stream: nonempty(stream)?,
            subject,
        })
    }

    fn parse_consumer(op: &'a str) -> Result<Self, ApiSubjectError> {
        let (verb, rest) = op.split_once('.').unwrap_or((op, ""));
        match verb {
            "CREATE" => {
                let mut parts = rest.splitn(3, '.');
                let stream = nonempty(parts.next().unwrap_or_default())?;
                let consumer = parts.next().map(nonempty).transpose()?;
                let filter = parts.next().map(nonempty).transpose()?;
                Ok(Self::ConsumerCreate {
                    stream,
                    consumer,
                    filter,
                })
            }
            "DURABLE" => {
                let rest = rest
                    .strip_prefix("CREATE.")
                    .ok_or(ApiSubjectError::Unknown)?;
                let (stream, durable) = two(rest)?;
                Ok(Self::ConsumerDurableCreate { stream, durable })
            }
            "NAMES" => one(rest).map(Self::ConsumerNames),
            "LIST" => one(rest).map(Self::ConsumerList),
            "INFO" => pair(rest, |stream, consumer| Self::ConsumerInfo {
                stream,
                consumer,
            }),
            "DELETE" => pair(rest, |stream, consumer| Self::ConsumerDelete {
                stream,
                consumer,
            }),
            "PAUSE" => pair(rest, |stream, consumer| Self::ConsumerPause {
                stream,
                consumer,
            }),
            "RESET" => pair(rest, |stream, consumer| Self::ConsumerReset {
                stream,
                consumer,
            }),
            "UNPIN" => pair(rest, |stream, consumer| Self::ConsumerUnpin {
                stream,
                consumer,
            }),
            "LEADER" => {
                let rest = rest
                    .strip_prefix("STEPDOWN.")
                    .ok_or(ApiSubjectError::Unknown)?;
                pair(rest, |stream, consumer| Self::ConsumerLeaderStepdown {
                    stream,
                    consumer,
                })
            }
            "MSG" => {
                let rest = rest.strip_prefix("NEXT.").ok_or(ApiSubjectError::Unknown)?;
                pair(rest, |stream, consumer| Self::ConsumerNext {
                    stream,
                    consumer,
                })
            }
            _ => Err(ApiSubjectError::Unknown),
        }
    }

    /// The subject under a JetStream domain: `$JS.<domain>.API.<op>` (`$JS.API.<op>`
    /// without one).
    pub fn in_domain(&self, domain: Option<&str>) -> String {
        match domain {
            Some(d) => format!("$JS.{d}.API.{}", Op(self)),
            None => self.to_string(),
        }
    }

    /// The stream the request is about, when it names one.
    pub fn stream(&self) -> Option<&'a str> {
        match *self {
            Self::StreamCreate(s)
            | Self::StreamUpdate(s)
            | Self::StreamInfo(s)
            | Self::StreamDelete(s)
            | Self::StreamPurge(s)
            | Self::StreamMsgGet(s)
            | Self::StreamMsgDelete(s)
            | Self::StreamSnapshot(s)
            | Self::StreamRestore(s)
            | Self::StreamLeaderStepdown(s)
            | Self::StreamPeerRemove(s)
            | Self::ConsumerNames(s)
            | Self::ConsumerList(s) => Some(s),
            Self::DirectGet { stream, .. }
            | Self::ConsumerCreate { stream, .. }
            | Self::ConsumerDurableCreate { stream, .. }
            | Self::ConsumerInfo { stream, .. }
            | Self::ConsumerDelete { stream, .. }
            | Self::ConsumerPause { stream, .. }
            | Self::ConsumerReset { stream, .. }
            | Self::ConsumerUnpin { stream, .. }
            | Self::ConsumerLeaderStepdown { stream, .. }
            | Self::ConsumerNext { stream, .. } => Some(stream),
            Self::Info
            | Self::StreamNames
            | Self::StreamList
            | Self::AccountPurge(_)
            | Self::ServerRemove
            | Self::MetaLeaderStepdown => None,
        }
    }
}

/// The part of an [`ApiSubject`] after `$JS.API.`.
struct Op<'s, 'a>(&'s ApiSubject<'a>);

impl fmt::Display for Op<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ApiSubject as A;
        match *self.0 {
            A::Info => f.write_str("INFO"),
            A::StreamCreate(s) => write!(f, "STREAM.CREATE.{s}"),
            A::StreamUpdate(s) => write!(f, "STREAM.UPDATE.{s}"),
            A::StreamInfo(s) => write!(f, "STREAM.INFO.{s}"),
            A::StreamDelete(s) => write!(f, "STREAM.DELETE.{s}"),
            A::StreamPurge(s) => write!(f, "STREAM.PURGE.{s}"),
            A::StreamNames => f.write_str("STREAM.NAMES"),
            A::StreamList => f.write_str("STREAM.LIST"),
            A::StreamMsgGet(s) => write!(f, "STREAM.MSG.GET.{s}"),
            A::StreamMsgDelete(s) => write!(f, "STREAM.MSG.DELETE.{s}"),
            A::StreamSnapshot(s) => write!(f, "STREAM.SNAPSHOT.{s}"),
            A::StreamRestore(s) => write!(f, "STREAM.RESTORE.{s}"),
            A::StreamLeaderStepdown(s) => write!(f, "STREAM.LEADER.STEPDOWN.{s}"),
            A::StreamPeerRemove(s) => write!(f, "STREAM.PEER.REMOVE.{s}"),
            A::DirectGet { stream, subject } => {
                write!(f, "DIRECT.GET.{stream}")?;
                subject.map_or(Ok(()), |s| write!(f, ".{s}"))
            }
            A::ConsumerCreate {
                stream,
                consumer,
                filter,
            } => {
                write!(f, "CONSUMER.CREATE.{stream}")?;
                if let Some(c) = consumer {
                    write!(f, ".{c}")?;
                    if let Some(filter) = filter {
                        write!(f, ".{filter}")?;
                    }
                }
                Ok(())
            }
            A::ConsumerDurableCreate { stream, durable } => {
                write!(f, "CONSUMER.DURABLE.CREATE.{stream}.{durable}")
            }
            A::ConsumerNames(s) => write!(f, "CONSUMER.NAMES.{s}"),
            A::ConsumerList(s) => write!(f, "CONSUMER.LIST.{s}"),
            A::ConsumerInfo { stream, consumer } => write!(f, "CONSUMER.INFO.{stream}.{consumer}"),
            A::ConsumerDelete { stream, consumer } => {
                write!(f, "CONSUMER.DELETE.{stream}.{consumer}")
            }
            A::ConsumerPause { stream, consumer } => {
                write!(f, "CONSUMER.PAUSE.{stream}.{consumer}")
            }
            A::ConsumerReset { stream, consumer } => {
                write!(f, "CONSUMER.RESET.{stream}.{consumer}")
            }
            A::ConsumerUnpin { stream, consumer } => {
                write!(f, "CONSUMER.UNPIN.{stream}.{consumer}")
            }
            A::ConsumerLeaderStepdown { stream, consumer } => {
                write!(f, "CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}")
            }
            A::ConsumerNext { stream, consumer } => {
                write!(f, "CONSUMER.MSG.NEXT.{stream}.{consumer}")
            }
            A::AccountPurge(a) => write!(f, "ACCOUNT.PURGE.{a}"),
            A::ServerRemove => f.write_str("SERVER.REMOVE"),
            A::MetaLeaderStepdown => f.write_str("META.LEADER.STEPDOWN"),
        }
    }
}

impl fmt::Display for ApiSubject<'_> {
    /// The full subject, `$JS.API.<op>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{API_PREFIX}.{}", Op(self))
    }
}

/// `value` when nothing follows the operation.
fn bare<'a>(rest: &str, value: ApiSubject<'a>) -> Result<ApiSubject<'a>, ApiSubjectError> {
    rest.is_empty()
        .then_some(value)
        .ok_or(ApiSubjectError::Malformed)
}

fn nonempty(token: &str) -> Result<&str, ApiSubjectError> {
    (!token.is_empty())
        .then_some(token)
        .ok_or(ApiSubjectError::Malformed)
}

/// Exactly one non-empty name token.
fn one(rest: &str) -> Result<&str, ApiSubjectError> {
    match rest.contains('.') {
        true => Err(ApiSubjectError::Malformed),
        false => nonempty(rest),
    }
}

/// Exactly two non-empty name tokens.
fn two(rest: &str) -> Result<(&str, &str), ApiSubjectError> {
    let (a, b) = rest.split_once('.').ok_or(ApiSubjectError::Malformed)?;
    Ok((nonempty(a)?, one(b)?))
}

fn pair<'a>(
    rest: &'a str,
    f: impl FnOnce(&'a str, &'a str) -> ApiSubject<'a>,
) -> Result<ApiSubject<'a>, ApiSubjectError> {
    two(rest).map(|(a, b)| f(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips() {
        let c = |stream, consumer| (stream, consumer);
        let (s, k) = c("S", "C");
        let all = [
            ApiSubject::Info,
            ApiSubject::StreamCreate(s),
            ApiSubject::StreamUpdate(s),
            ApiSubject::StreamInfo(s),
            ApiSubject::StreamDelete(s),
            ApiSubject::StreamPurge(s),
            ApiSubject::StreamNames,
            ApiSubject::StreamList,
            ApiSubject::StreamMsgGet(s),
            ApiSubject::StreamMsgDelete(s),
            ApiSubject::StreamSnapshot(s),
            ApiSubject::StreamRestore(s),
            ApiSubject::StreamLeaderStepdown(s),
            ApiSubject::StreamPeerRemove(s),
            ApiSubject::DirectGet {
                stream: s,
                subject: None,
            },
            ApiSubject::DirectGet {
                stream: s,
                subject: Some("a.b.>"),
            },
            ApiSubject::ConsumerCreate {
                stream: s,
                consumer: None,
                filter: None,
            },
            ApiSubject::ConsumerCreate {
                stream: s,
                consumer: Some(k),
                filter: None,
            },
            ApiSubject::ConsumerCreate {
                stream: s,
                consumer: Some(k),
                filter: Some("orders.*.x"),
            },
            ApiSubject::ConsumerDurableCreate {
                stream: s,
                durable: k,
            },
            ApiSubject::ConsumerNames(s),
            ApiSubject::ConsumerList(s),
            ApiSubject::ConsumerInfo {
                stream: s,
                consumer: k,
            },
            ApiSubject::ConsumerDelete {
                stream: s,
                consumer: k,
            },
            ApiSubject::ConsumerPause {
                stream: s,
                consumer: k,
            },
            ApiSubject::ConsumerReset {
                stream: s,
                consumer: k,
            },
            ApiSubject::ConsumerUnpin {
                stream: s,
                consumer: k,
            },
            ApiSubject::ConsumerLeaderStepdown {
                stream: s,
                consumer: k,
            },
            ApiSubject::ConsumerNext {
                stream: s,
                consumer: k,
            },
            ApiSubject::AccountPurge("A"),
            ApiSubject::ServerRemove,
            ApiSubject::MetaLeaderStepdown,
        ];
        for api in all {
            let text = api.to_string();
            assert_eq!(ApiSubject::parse(&text), Ok(api), "{text}");
            let domain = api.in_domain(Some("hub"));
            let op = domain.strip_prefix("$JS.hub.API.").expect("domain prefix");
            assert_eq!(ApiSubject::parse_op(op), Ok(api), "{domain}");
        }
    }

    #[test]
    fn shapes_follow_nats_server() {
        use ApiSubjectError::{Malformed, NotApi, Unknown};
        for (subject, want) in [
            ("$JS.API.STREAM.INFO.a.b", Malformed),
            ("$JS.API.STREAM.INFO", Malformed),
            ("$JS.API.STREAM.INFO.", Malformed),
            ("$JS.API.STREAM.NAMES.x", Malformed),
            ("$JS.API.INFO.x", Malformed),
            ("$JS.API.CONSUMER.INFO.S", Malformed),
            ("$JS.API.CONSUMER.INFO.S.C.x", Malformed),
            ("$JS.API.CONSUMER.NAMES", Malformed),
            ("$JS.API.CONSUMER.DURABLE.CREATE.S", Malformed),
            ("$JS.API.CONSUMER.DURABLE.CREATE.S.d.x", Malformed),
            ("$JS.API.CONSUMER.CREATE.S..f", Malformed),
            ("$JS.API.STREAM.MSG.GET.S.x", Malformed),
            ("$JS.API.DIRECT.GET.", Malformed),
            ("$JS.API.FOO", Unknown),
            ("$JS.API.STREAM.MSG.FOO.S", Unknown),
            ("$JS.API.CONSUMER.MSG.FOO.S.C", Unknown),
            ("$JS.API", NotApi),
            ("$JS.APIX.INFO", NotApi),
            ("$JS.ACK.S.C.1.1.1.1.0", NotApi),
        ] {
            assert_eq!(ApiSubject::parse(subject), Err(want), "{subject}");
        }
        assert_eq!(
            ApiSubject::parse("$JS.API.CONSUMER.CREATE.S.C.a.b.>"),
            Ok(ApiSubject::ConsumerCreate {
                stream: "S",
                consumer: Some("C"),
                filter: Some("a.b.>"),
            })
        );
        assert_eq!(
            ApiSubject::parse("$JS.API.DIRECT.GET.S.a.b").map(|a| a.stream()),
            Ok(Some("S"))
        );
    }
}
