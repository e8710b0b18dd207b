//! MQTT topics ↔ NATS subjects, with nats-server's conversion and escaping rules, so a
//! device moved from nats-server publishes and subscribes on the same subjects.
//!
//! Topic → subject (each MQTT level becomes one NATS token):
//!
//! | MQTT topic | NATS subject | rule |
//! |---|---|---|
//! | `a/b` | `a.b` | `/` between two levels becomes `.` |
//! | `/a` | `/.a` | an empty level (leading, trailing, or between two `/`) is the token `/` |
//! | `a/` | `a./` | |
//! | `a//b` | `a./.b` | |
//! | `a.b` | `a//b` | a `.` inside a level becomes `//` |
//! | `a/+` | `a.*` | filters only: `+` is `*` |
//! | `a/#` | `a.>` and `a` | filters only: `#` is `>`, plus the parent level (MQTT's `#` matches it) |
//!
//! A space makes a topic invalid, as in nats-server. Subject → topic reverses the rules,
//! so NATS publishers reach MQTT subscribers (`spBv1//0.plant1` → `spBv1.0/plant1`).

/// Why a topic or filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TopicError {
    /// Empty topic or filter.
    #[error("empty topic")]
    Empty,
    /// A character NATS subjects cannot carry (space, NUL).
    #[error("invalid character in topic")]
    InvalidChar,
    /// A wildcard in a topic name, or a misplaced one in a filter.
    #[error("invalid wildcard in topic")]
    Wildcard,
}

/// One MQTT level as a NATS token.
fn level_token(level: &str, out: &mut String) -> Result<(), TopicError> {
    if level.is_empty() {
        out.push('/');
        return Ok(());
    }
    for c in level.chars() {
        match c {
            '.' => out.push_str("//"),
            ' ' | '\0' | '\t' | '\r' | '\n' => return Err(TopicError::InvalidChar),
            c => out.push(c),
        }
    }
    Ok(())
}

/// The NATS subject an MQTT PUBLISH topic is routed on.
///
/// # Errors
/// [`TopicError`] for an empty topic, wildcards, or characters subjects cannot carry.
pub(crate) fn topic_to_subject(topic: &str) -> Result<String, TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard);
    }
    let mut out = String::with_capacity(topic.len() + 4);
    for (i, level) in topic.split('/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        level_token(level, &mut out)?;
    }
    Ok(out)
}

/// The NATS filters an MQTT topic filter subscribes: one, or two for a filter ending in
/// `/#` (the `>` filter and its parent level).
///
/// # Errors
/// [`TopicError`] for an empty filter, a `#` that is not the last level, a `+` or `#`
/// sharing a level with other characters, or characters subjects cannot carry.
pub(crate) fn filter_to_subjects(filter: &str) -> Result<Vec<String>, TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let mut out = String::with_capacity(filter.len() + 4);
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match *level {
            "+" => out.push('*'),
            "#" if i == last => out.push('>'),
            l if l.contains(['+', '#']) => return Err(TopicError::Wildcard),
            l => level_token(l, &mut out)?,
        }
    }
    if levels.len() > 1 && levels[last] == "#" {
        let parent = out[..out.len() - 2].to_string();
        return Ok(vec![out, parent]);
    }
    Ok(vec![out])
}

/// The MQTT topic a message on `subject` is delivered under.
pub(crate) fn subject_to_topic(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for (i, token) in subject.split('.').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if token == "/" {
            continue;
        }
        out.push_str(&token.replace("//", "."));
    }
    out
}

/// True for a topic or filter that starts with `$` (MQTT's reserved topics, which a
/// wildcard at the first level must not match).
pub(crate) fn is_reserved(topic: &str) -> bool {
    topic.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_to_subjects_as_in_nats_server() {
        for (topic, subject) in [
            ("sensors/cold-1/temp", "sensors.cold-1.temp"),
            ("/sensors/temp", "/.sensors.temp"),
            ("sensors/temp/", "sensors.temp./"),
            ("sensors//temp", "sensors./.temp"),
            ("//sensors/temp", "/./.sensors.temp"),
            ("cold-1.temp", "cold-1//temp"),
            ("spBv1.0/plant1", "spBv1//0.plant1"),
            ("a", "a"),
            ("/", "/./"),
        ] {
            assert_eq!(topic_to_subject(topic).as_deref(), Ok(subject), "{topic}");
            assert_eq!(subject_to_topic(subject), topic, "{subject}");
        }
    }

    #[test]
    fn bad_topics_are_refused() {
        assert_eq!(topic_to_subject(""), Err(TopicError::Empty));
        assert_eq!(topic_to_subject("a b"), Err(TopicError::InvalidChar));
        assert_eq!(topic_to_subject("a/+"), Err(TopicError::Wildcard));
        assert_eq!(topic_to_subject("a/#"), Err(TopicError::Wildcard));
    }

    #[test]
    fn filters_map_wildcards_and_add_the_parent_for_hash() {
        let f = |s: &str| filter_to_subjects(s);
        assert_eq!(f("a/+/c"), Ok(vec!["a.*.c".to_string()]));
        assert_eq!(f("a/#"), Ok(vec!["a.>".to_string(), "a".to_string()]));
        assert_eq!(f("#"), Ok(vec![">".to_string()]));
        assert_eq!(f("+"), Ok(vec!["*".to_string()]));
        assert_eq!(
            f("a.b/#"),
            Ok(vec!["a//b.>".to_string(), "a//b".to_string()])
        );
        assert_eq!(f("a/#/b"), Err(TopicError::Wildcard));
        assert_eq!(f("a/b#"), Err(TopicError::Wildcard));
        assert_eq!(f("a+/b"), Err(TopicError::Wildcard));
        assert_eq!(f(""), Err(TopicError::Empty));
    }
}
