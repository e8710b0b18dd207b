//! The identities a client certificate offers to `verify_and_map`: SAN e-mail addresses,
//! DNS names and URIs, and the subject distinguished name written as nats-server (Go's
//! `pkix.Name.String()`, RFC 2253) writes it: last RDN first, short names for the common
//! attribute types, `#`-hex DER for the others, `+` between the values of one RDN.

use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::RdnSequence;

/// The `subjectAltName` extension.
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// What a client certificate says about its holder, in nats-server's matching order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// SAN e-mail addresses.
    pub emails: Vec<String>,
    /// SAN DNS names.
    pub dns: Vec<String>,
    /// SAN URIs.
    pub uris: Vec<String>,
    /// The subject DN, RFC 2253.
    pub subject: String,
}

impl CertIdentity {
    /// Reads the identities of a DER certificate; `None` when it does not parse.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let mut id = CertIdentity {
            subject: rfc2253(&tbs.subject),
            ..Default::default()
        };
        for ext in tbs.extensions.iter().flatten() {
            if ext.extn_id != SUBJECT_ALT_NAME {
                continue;
            }
            let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
                continue;
            };
            for name in san.0 {
                match name {
                    GeneralName::Rfc822Name(s) => id.emails.push(s.to_string()),
                    GeneralName::DnsName(s) => id.dns.push(s.to_string()),
                    GeneralName::UniformResourceIdentifier(s) => id.uris.push(s.to_string()),
                    _ => {}
                }
            }
        }
        Some(id)
    }

    /// Every name to try against the configured users, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.emails
            .iter()
            .chain(&self.dns)
            .chain(&self.uris)
            .map(String::as_str)
            .chain(std::iter::once(self.subject.as_str()))
    }
}

/// Go's short names for attribute types (the ones `pkix.Name.String()` knows).
fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    Some(match oid.to_string().as_str() {
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

fn rfc2253(name: &RdnSequence) -> String {
    let rdns: Vec<String> = name
        .0
        .iter()
        .rev()
        .map(|rdn| {
            let parts: Vec<String> = rdn.0.iter().map(attribute).collect();
            parts.join("+")
        })
        .collect();
    rdns.join(",")
}

fn attribute(atv: &x509_cert::attr::AttributeTypeAndValue) -> String {
    let string_tags = [
        Tag::Utf8String,
        Tag::PrintableString,
        Tag::Ia5String,
        Tag::TeletexString,
    ];
    let text = std::str::from_utf8(atv.value.value()).ok();
    match (short_name(&atv.oid), text) {
        (Some(key), Some(value)) if string_tags.contains(&atv.value.tag()) => {
            format!("{key}={}", escape(value))
        }
        (key, _) => {
            let hex: String = atv
                .value
                .to_der()
                .unwrap_or_default()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!(
                "{}=#{hex}",
                key.map_or_else(|| atv.oid.to_string(), String::from)
            )
        }
    }
}

/// The attributes of a DN string as a sorted list, for order-insensitive comparison
/// (splits on unescaped `,` and `+`).
pub fn rdn_set(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        match (escaped, c) {
            (false, '\\') => {
                escaped = true;
                current.push(c);
            }
            (false, ',' | '+') => parts.push(std::mem::take(&mut current).trim().to_string()),
            _ => {
                escaped = false;
                current.push(c);
            }
        }
    }
    parts.push(current.trim().to_string());
    parts.sort();
    parts
}

/// RFC 2253 escaping as Go does it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdn_sets_ignore_order() {
        assert_eq!(rdn_set("CN=a,O=b"), rdn_set("O=b, CN=a"));
        assert_ne!(rdn_set("CN=a\\,O=b"), rdn_set("O=b,CN=a"));
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1"), "\\#1");
    }
}
