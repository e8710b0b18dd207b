//! Body templates for `pub` and `reply`, in the spirit of natscli: `{{Count}}`, `{{TimeStamp}}`,
//! `{{Unix}}`, `{{UnixNano}}`, `{{Time}}`, `{{ID}}`, `{{Random}}` / `{{Random min max}}` and, for
//! replies, `{{Request}}` and `{{Subject}}`. Names are case-insensitive and may be padded with
//! spaces (`{{ Count }}`); unknown placeholders are left as they are.

use rand::RngExt;
use time::OffsetDateTime;

/// Values a template can refer to beyond the clock and randomness.
#[derive(Debug, Default, Clone)]
pub(crate) struct Vars<'a> {
    /// The 1-based message number.
    pub(crate) count: u64,
    /// The request body being answered (for `reply`).
    pub(crate) request: Option<&'a [u8]>,
    /// The subject the request arrived on (for `reply`).
    pub(crate) subject: Option<&'a str>,
}

/// Renders `template` with `vars`. Text without `{{` is returned unchanged.
pub(crate) fn render(template: &[u8], vars: &Vars<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = find(rest, b"{{") {
        let Some(len) = find(&rest[start + 2..], b"}}") else {
            break;
        };
        out.extend_from_slice(&rest[..start]);
        let inner = &rest[start + 2..start + 2 + len];
        match expand(&String::from_utf8_lossy(inner), vars) {
            Some(value) => out.extend_from_slice(&value),
            None => out.extend_from_slice(&rest[start..start + 4 + len]),
        }
        rest = &rest[start + 4 + len..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn expand(inner: &str, vars: &Vars<'_>) -> Option<Vec<u8>> {
    let mut words = inner.split_whitespace();
    let name = words.next()?.to_ascii_lowercase();
    let args: Vec<usize> = words.filter_map(|w| w.parse().ok()).collect();
    let now = OffsetDateTime::now_utc();
    let text = match name.as_str() {
        "count" | "cnt" => vars.count.to_string(),
        "timestamp" => crate::parse::rfc3339(now),
        "time" => format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second()),
        "unix" => now.unix_timestamp().to_string(),
        "unixnano" => now.unix_timestamp_nanos().to_string(),
        "id" => random_string(22),
        "random" => match args.as_slice() {
            [min, max] if min <= max => random_string(rand::random_range(*min..=*max)),
            _ => rand::random::<u32>().to_string(),
        },
        "request" => return vars.request.map(<[u8]>::to_vec),
        "subject" => vars.subject?.to_string(),
        _ => return None,
    };
    Some(text.into_bytes())
}

fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, vars: &Vars<'_>) -> String {
        String::from_utf8(render(t.as_bytes(), vars)).unwrap()
    }

    #[test]
    fn count_request_and_unknown() {
        let vars = Vars {
            count: 3,
            request: Some(b"ping"),
            subject: Some("svc.echo"),
        };
        assert_eq!(r("n={{Count}} {{ count }}", &vars), "n=3 3");
        assert_eq!(
            r("echo {{Request}} on {{Subject}}", &vars),
            "echo ping on svc.echo"
        );
        assert_eq!(r("{{Nope}} {{", &vars), "{{Nope}} {{");
        assert_eq!(r("plain", &vars), "plain");
    }

    #[test]
    fn random_and_time() {
        let vars = Vars::default();
        assert_eq!(r("{{Random 5 5}}", &vars).len(), 5);
        assert_eq!(r("{{ID}}", &vars).len(), 22);
        assert!(r("{{TimeStamp}}", &vars).contains('T'));
        assert!(r("{{Unix}}", &vars).parse::<i64>().is_ok());
    }
}
