//! Stream subjects, mirrors, sources, subject transforms and republish.

use std::collections::HashSet;

use rill_protocol::jsapi::{ErrorCode, StreamConfig, StreamSource, check_name_chars};
use rill_protocol::subject::{filters_overlap, has_wildcard, is_subset};

use super::overlap::OverlapIndex;
use super::*;

pub(super) fn check_mirror(cfg: &StreamConfig, mirror: &StreamSource) -> Check {
    let rules = [
        (cfg.first_seq > 0, ErrorCode::MIRROR_WITH_FIRST_SEQ),
        (!cfg.subjects.is_empty(), ErrorCode::MIRROR_WITH_SUBJECTS),
        (!cfg.sources.is_empty(), ErrorCode::MIRROR_WITH_SOURCES),
        (cfg.allow_msg_counter, ErrorCode::MIRROR_WITH_COUNTERS),
        (cfg.allow_atomic, ErrorCode::MIRROR_WITH_ATOMIC_PUBLISH),
        (cfg.allow_batched, ErrorCode::MIRROR_WITH_BATCH_PUBLISH),
        (
            cfg.allow_msg_schedules,
            ErrorCode::MIRROR_WITH_MSG_SCHEDULES,
        ),
    ];
    if let Some((_, code)) = rules.iter().find(|(broken, _)| *broken) {
        return Err(code.error());
    }
    if let Some(c) = &mirror.consumer {
        let bad_deliver = has_wildcard(&c.deliver_subject) || !is_valid_subject(&c.deliver_subject);
        let has_start = mirror.opt_start_seq != 0 || mirror.opt_start_time.is_some();
        if check_name_chars(&c.name).is_err()
            || bad_deliver
            || has_start
            || !mirror.filter_subject.is_empty()
        {
            return Err(ErrorCode::MIRROR_DURABLE_CONSUMER_CFG_INVALID.error());
        }
    }
    if !mirror.filter_subject.is_empty() && !mirror.subject_transforms.is_empty() {
        return Err(ErrorCode::MIRROR_MULTIPLE_FILTERS_NOT_ALLOWED.error());
    }
    if !cfg.subject_delete_marker_ttl.is_zero() {
        return Err(invalid("subject delete markers forbidden on mirrors"));
    }
    let srcs: Vec<&str> = mirror
        .subject_transforms
        .iter()
        .map(|t| t.src.as_str())
        .collect();
    for (i, t) in mirror.subject_transforms.iter().enumerate() {
        if !t.src.is_empty() && !is_valid_subject(&t.src) {
            return Err(
                ErrorCode::MIRROR_INVALID_SUBJECT_FILTER.err(format!("invalid subject {}", t.src))
            );
        }
        check_mapping(&t.src, &t.dest)
            .map_err(|e| ErrorCode::MIRROR_INVALID_TRANSFORM_DESTINATION.err(e))?;
        if srcs
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && filters_overlap(&t.src, s))
        {
            return Err(ErrorCode::MIRROR_OVERLAPPING_SUBJECT_FILTERS.error());
        }
    }
    if mirror.external.is_none() && check_name_chars(&mirror.name).is_err() {
        return Err(ErrorCode::MIRROR_INVALID_STREAM_NAME.error());
    }
    Ok(())
}

fn source_identity(s: &StreamSource) -> String {
    let api = s.external.as_ref().map_or("", |e| e.api.as_str());
    let transforms: Vec<String> = s
        .subject_transforms
        .iter()
        .map(|t| format!("{}>{}", t.src, t.dest))
        .collect();
    format!(
        "{}:{api}:{}:{}",
        s.name,
        s.filter_subject,
        transforms.join(",")
    )
}

pub(super) fn check_sources(cfg: &StreamConfig) -> Check {
    if !cfg.sources.is_empty() && cfg.allow_msg_schedules {
        return Err(ErrorCode::SOURCE_WITH_MSG_SCHEDULES.error());
    }
    let mut seen = std::collections::HashSet::new();
    for src in &cfg.sources {
        if check_name_chars(&src.name).is_err() {
            return Err(ErrorCode::SOURCE_INVALID_STREAM_NAME.error());
        }
        if !seen.insert(source_identity(src)) {
            return Err(ErrorCode::SOURCE_DUPLICATE_DETECTED.error());
        }
        if !src.filter_subject.is_empty() && !src.subject_transforms.is_empty() {
            return Err(ErrorCode::SOURCE_MULTIPLE_FILTERS_NOT_ALLOWED.error());
        }
        for t in &src.subject_transforms {
            if !t.src.is_empty() && !is_valid_subject(&t.src) {
                return Err(ErrorCode::SOURCE_INVALID_SUBJECT_FILTER
                    .err(format!("invalid subject {}", t.src)));
            }
            check_mapping(&t.src, &t.dest)
                .map_err(|e| ErrorCode::SOURCE_INVALID_TRANSFORM_DESTINATION.err(e))?;
        }
        let ts = &src.subject_transforms;
        let overlapping = ts.iter().enumerate().any(|(i, a)| {
            ts.iter()
                .enumerate()
                .any(|(j, b)| i != j && is_subset(&a.src, &b.src))
        });
        if overlapping {
            return Err(ErrorCode::SOURCE_OVERLAPPING_SUBJECT_FILTERS.error());
        }
    }
    Ok(())
}

const JS_NAMESPACES: [&str; 3] = ["$JS.>", "$JSC.>", "$NRG.>"];

pub(super) fn stream_subjects(cfg: &mut StreamConfig) -> Check {
    if cfg.subjects.is_empty() {
        if cfg.mirror.is_none() && cfg.sources.is_empty() {
            cfg.subjects.push(cfg.name.clone());
        }
        return Ok(());
    }
    // For each subject, the first later one it overlaps (one pass from the end over
    // a token tree: no comparison of every pair).
    let mut index = OverlapIndex::default();
    let mut later = vec![None; cfg.subjects.len()];
    for (i, subj) in cfg.subjects.iter().enumerate().rev() {
        later[i] = index.lowest_overlap(subj);
        index.insert(subj, i);
    }
    let mut seen = HashSet::with_capacity(cfg.subjects.len());
    for (subj, later) in cfg.subjects.iter().zip(later) {
        let later = later.map(|j| cfg.subjects[j].as_str());
        check_stream_subject(cfg, subj, seen.insert(subj.as_str()), later)?;
    }
    Ok(())
}

fn check_stream_subject(cfg: &StreamConfig, subj: &str, first: bool, later: Option<&str>) -> Check {
    if !is_valid_subject(subj) {
        return Err(invalid("invalid subject"));
    }
    if !first {
        return Err(invalid("duplicate subjects detected"));
    }
    if subj == ">" {
        if !cfg.no_ack {
            return Err(invalid("capturing all subjects requires no-ack to be true"));
        }
        if cfg.num_replicas != 1 {
            return Err(invalid("capturing all subjects requires replicas of 1"));
        }
    }
    if !cfg.no_ack {
        if JS_NAMESPACES.iter().any(|ns| filters_overlap(subj, ns))
            && !is_subset(subj, "$JS.EVENT.>")
        {
            return Err(invalid(
                "subjects that overlap with jetstream api require no-ack to be true",
            ));
        }
        if filters_overlap(subj, "$SYS.>") && !is_subset(subj, "$SYS.ACCOUNT.>") {
            return Err(invalid(
                "subjects that overlap with system api require no-ack to be true",
            ));
        }
    }
    if let Some(later) = later {
        return Err(invalid(format!("subject {subj:?} overlaps with {later:?}")));
    }
    Ok(())
}

pub(super) fn check_transform_and_republish(cfg: &mut StreamConfig, pedantic: bool) -> Check {
    if let Some(t) = &cfg.subject_transform {
        if !t.src.is_empty() && !is_valid_subject(&t.src) {
            return Err(ErrorCode::STREAM_TRANSFORM_INVALID_SOURCE
                .err(format!("invalid subject {}", t.src)));
        }
        check_mapping(&t.src, &t.dest)
            .map_err(|e| ErrorCode::STREAM_TRANSFORM_INVALID_DESTINATION.err(e))?;
    }
    let Some(rp) = &mut cfg.republish else {
        return Ok(());
    };
    if rp.src.is_empty() {
        if pedantic {
            return Err(pedantic_err("republish source can not be empty"));
        }
        rp.src = ">".to_owned();
    }
    if let Some(t) = cfg.subject_transform.as_ref().filter(|t| {
        rp.src == ">" && rp.dest == ">" && cfg.subjects.len() == 1 && t.src == cfg.subjects[0]
    }) {
        if pedantic {
            return Err(pedantic_err(
                "implicit republish based on subject transform",
            ));
        }
        (rp.src, rp.dest) = (t.dest.clone(), t.dest.clone());
    }
    if cfg.subjects.iter().any(|s| filters_overlap(&rp.dest, s)) {
        return Err(invalid(
            "stream configuration for republish destination forms a cycle",
        ));
    }
    if check_mapping(&rp.src, &rp.dest).is_err() {
        let (src, dest) = (&rp.src, &rp.dest);
        return Err(invalid(format!(
            "stream configuration for republish with transform from '{src}' to '{dest}' not valid"
        )));
    }
    Ok(())
}

const MAPPING_FUNCTIONS: [&str; 8] = [
    "wildcard",
    "partition",
    "splitfromleft",
    "splitfromright",
    "slicefromleft",
    "slicefromright",
    "split",
    "random",
];

/// nats-server's subject-mapping destination check, for what rill needs: token syntax,
/// known `{{function(...)}}` names, matching `>` use, and `$N` / `{{wildcard(N)}}` indexes
/// within the source's `*` count. Error texts are nats-server's.
pub(super) fn check_mapping(src: &str, dest: &str) -> Result<(), String> {
    const BAD: &str = "invalid mapping destination";
    if dest.is_empty() {
        return Ok(());
    }
    let mut after_fwc = false;
    for t in dest.split('.') {
        if t.is_empty() || after_fwc {
            return Err(format!("{BAD}: invalid transform in {t}"));
        }
        if t.len() > 4 && t.starts_with("{{") && t.ends_with("}}") {
            if function_call(t).is_none() {
                return Err(format!("{BAD}: unknown function in {t}"));
            }
            continue;
        }
        if t == ">" {
            after_fwc = true;
        } else if t.contains(['\t', '\n', '\u{c}', '\r', ' ']) {
            return Err(format!("{BAD}: invalid transform"));
        }
    }
    let src = if src.is_empty() { ">" } else { src };
    let pwcs = src.split('.').filter(|t| *t == "*").count();
    let fwc = |s: &str| s.split('.').any(|t| t == ">");
    let dest_pwcs = dest.split('.').any(|t| t == "*");
    if !is_valid_subject(src) || !is_valid_subject(dest) || dest_pwcs || fwc(src) != fwc(dest) {
        return Err("invalid subject".to_owned());
    }
    for t in dest.split('.') {
        let Some((name, index)) = placeholder(t) else {
            continue;
        };
        if pwcs == 0 && !matches!(name.as_str(), "random" | "partition") {
            return Err(format!("{BAD}: wildcard index out of range in {t}"));
        }
        if let Some(i) = index.filter(|i| pwcs > 0 && (*i == 0 || *i > pwcs)) {
            return Err(format!("{BAD}: wildcard index out of range in {t}: [{i}]"));
        }
    }
    Ok(())
}

/// `{{name(args)}}` → (lower-case name, args) when `name` is a known mapping function.
fn function_call(token: &str) -> Option<(String, String)> {
    let inner = token.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let (name, rest) = inner.split_once('(')?;
    let args = rest.strip_suffix(')')?;
    let name = name.trim().to_ascii_lowercase();
    MAPPING_FUNCTIONS
        .contains(&name.as_str())
        .then(|| (name, args.to_owned()))
}

/// A destination token that refers to source wildcards: `$N` or a mapping function, with
/// the wildcard index it names first (if any).
fn placeholder(token: &str) -> Option<(String, Option<usize>)> {
    if let Some(n) = token.strip_prefix('$') {
        return n.parse().ok().map(|i| ("wildcard".to_owned(), Some(i)));
    }
    let (name, args) = function_call(token)?;
    let first = args.split(',').next().and_then(|a| a.trim().parse().ok());
    let index = if name == "random" || name == "partition" {
        None
    } else {
        first
    };
    Some((name, index))
}
