//! What each origin's copy last reported ([`Status`], shown in `STREAM.INFO`), keyed by
//! the origin's index name ([`iname`]). A leaf: the stream core holds a [`Status`]
//! without depending on the copy tasks.

use std::collections::HashMap;
use std::time::Instant;

use rill_protocol::jsapi::{ApiError, Nanos, StreamConfig, StreamSource, StreamSourceInfo};

/// What the copy tasks last reported, per origin.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(super) by_iname: HashMap<String, OriginStatus>,
}

#[derive(Debug, Default)]
pub(super) struct OriginStatus {
    /// Last origin sequence stored (sources: found again after a restart); 0 once the
    /// origin was made again, to start over.
    pub(super) seq: Option<u64>,
    /// The identity of the origin `seq` belongs to (sources), when it gave one.
    pub(super) identity: Option<String>,
    pub(super) lag: u64,
    pub(super) active: Option<Instant>,
    pub(super) error: Option<ApiError>,
}

impl Status {
    /// Records why a session ended (shown in `STREAM.INFO` until the next contact).
    pub(crate) fn failed(&mut self, iname: &str, error: ApiError) {
        self.by_iname.entry(iname.to_owned()).or_default().error = Some(error);
    }

    fn info(&self, cfg: &StreamSource, mirror: bool) -> StreamSourceInfo {
        let s = self.by_iname.get(&iname(cfg));
        let active = s.and_then(|s| s.active).map_or(Nanos(-1), |a| {
            Nanos(i64::try_from(a.elapsed().as_nanos()).unwrap_or(i64::MAX))
        });
        StreamSourceInfo {
            name: cfg.name.clone(),
            external: cfg.external.clone(),
            lag: s.map_or(0, |s| s.lag),
            seq: if mirror {
                0
            } else {
                s.and_then(|s| s.seq).unwrap_or(0)
            },
            active,
            error: s.and_then(|s| s.error.clone()),
            filter_subject: cfg.filter_subject.clone(),
            subject_transforms: cfg.subject_transforms.clone(),
        }
    }

    /// `mirror` and `sources` of `STREAM.INFO` for `cfg`.
    pub(crate) fn describe(
        &self,
        cfg: &StreamConfig,
    ) -> (Option<StreamSourceInfo>, Vec<StreamSourceInfo>) {
        let mirror = cfg.mirror.as_ref().map(|m| self.info(m, true));
        let sources = cfg.sources.iter().map(|s| self.info(s, false)).collect();
        (mirror, sources)
    }
}

/// (filter, destination) as the header and the index name write them: `>` for
/// none; several transforms joined by form feeds.
pub(crate) fn filter_and_dest(cfg: &StreamSource) -> (String, String) {
    if cfg.subject_transforms.is_empty() {
        let filter = if cfg.filter_subject.is_empty() {
            ">".to_owned()
        } else {
            cfg.filter_subject.clone()
        };
        return (filter, ">".to_owned());
    }
    let or_all = |s: &str| {
        if s.is_empty() {
            ">".to_owned()
        } else {
            s.to_owned()
        }
    };
    let srcs: Vec<String> = cfg
        .subject_transforms
        .iter()
        .map(|t| or_all(&t.src))
        .collect();
    let dests: Vec<String> = cfg
        .subject_transforms
        .iter()
        .map(|t| or_all(&t.dest))
        .collect();
    (srcs.join("\u{c}"), dests.join("\u{c}"))
}

/// The index name of a source: origin, filter and destination.
pub(crate) fn iname(cfg: &StreamSource) -> String {
    let (filter, dest) = filter_and_dest(cfg);
    let mut name = cfg.name.clone();
    if let Some(ext) = cfg.external.as_ref() {
        name = format!("{name}:{}", short_hash(&ext.api));
    }
    format!("{name} {filter} {dest}")
}

/// nats-server's 8-character hash of a name (its `getHash`): the first 8 bytes of the
/// SHA-256 digest, each taken modulo 62 as a digit of `0-9A-Za-z`. An external source's
/// index name carries the hash of its API prefix, so `Nats-Stream-Source` headers read
/// the same from both servers.
pub(super) fn short_hash(name: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| char::from(DIGITS[usize::from(b % 62)]))
        .collect()
}
