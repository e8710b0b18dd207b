//! MQTT packets on the wire, through the `rumqttc` codec.
//!
//! Inside rill every packet is an MQTT 5 packet (`rumqttc`'s v5 types: a superset of
//! 3.1.1's). A 3.1.1 connection converts at this edge only: [`decode`] turns a 3.1.1
//! packet into its v5 form (no properties) and [`encode`] turns a v5 packet back into
//! 3.1.1 (dropping properties, mapping reason codes onto 3.1.1's return codes). The
//! session and delivery code above never branch on the version except where MQTT 5 adds
//! behaviour.
//!
//! The protocol version is known from the first packet, which must be CONNECT:
//! [`peek_connect`] reads its protocol name and level before either decoder runs.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
pub(crate) use rumqttc::v5::mqttbytes::QoS;
pub(crate) use rumqttc::v5::mqttbytes::v5;

/// The MQTT protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// Why bytes could not be read as a packet.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// The first packet is not a CONNECT.
    #[error("first packet is not CONNECT")]
    NotConnect,
    /// CONNECT names a protocol or level rill does not speak (3.1 and older).
    #[error("unsupported protocol {0:?} level {1}")]
    Protocol(String, u8),
    /// A packet larger than the server's maximum.
    #[error("packet too large")]
    TooLarge,
    /// Anything else the codec refused.
    #[error("malformed packet: {0}")]
    Malformed(String),
}

/// Reads the protocol version from a CONNECT at the start of `buf`.
/// `Ok(None)`: more bytes are needed.
///
/// # Errors
/// [`CodecError::NotConnect`], or [`CodecError::Protocol`] for a protocol name or level
/// other than `MQTT` 4 or 5.
pub(crate) fn peek_connect(buf: &[u8]) -> Result<Option<Version>, CodecError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != 0x10 {
        return Err(CodecError::NotConnect);
    }
    // The remaining length is a 1–4 byte varint; the protocol name and level follow it.
    let Some(len_bytes) = buf[1..].iter().take(4).position(|b| b & 0x80 == 0) else {
        return match buf.len() >= 5 {
            true => Err(CodecError::Malformed("remaining length".into())),
            false => Ok(None),
        };
    };
    let at = 2 + len_bytes;
    let Some(name_len) = buf.get(at..at + 2) else {
        return Ok(None);
    };
    let name_len = usize::from(u16::from_be_bytes([name_len[0], name_len[1]]));
    let Some(name) = buf.get(at + 2..at + 2 + name_len) else {
        return Ok(None);
    };
    let Some(&level) = buf.get(at + 2 + name_len) else {
        return Ok(None);
    };
    match (name, level) {
        (b"MQTT", 4) => Ok(Some(Version::V4)),
        (b"MQTT", 5) => Ok(Some(Version::V5)),
        _ => Err(CodecError::Protocol(
            String::from_utf8_lossy(name).into_owned(),
            level,
        )),
    }
}

/// Decodes one packet from `buf` (consuming it) in its v5 form; `Ok(None)` when `buf`
/// does not hold a whole packet yet.
///
/// # Errors
/// [`CodecError`] for anything that is not a valid packet of `version`, or larger than
/// `max_size`.
pub(crate) fn decode(
    version: Version,
    buf: &mut BytesMut,
    max_size: usize,
) -> Result<Option<v5::Packet>, CodecError> {
    if buf.is_empty() {
        return Ok(None);
    }
    match version {
        Version::V5 => {
            // rumqttc wants a body for DISCONNECT; MQTT 5 allows none (reason 0).
            if buf.len() >= 2 && buf[0] == 0xE0 && buf[1] == 0 {
                let _ = buf.split_to(2);
                return Ok(Some(v5::Packet::Disconnect(v5::Disconnect::new(
                    v5::DisconnectReasonCode::NormalDisconnection,
                ))));
            }
            let max = u32::try_from(max_size).unwrap_or(u32::MAX);
            match v5::Packet::read(buf, Some(max)) {
                Ok(p) => Ok(Some(p)),
                Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                Err(rumqttc::v5::mqttbytes::Error::PayloadSizeLimitExceeded { .. }) => {
                    Err(CodecError::TooLarge)
                }
                Err(e) => Err(CodecError::Malformed(e.to_string())),
            }
        }
        Version::V4 => match v4::Packet::read(buf, max_size) {
            Ok(p) => Ok(Some(from_v4(p))),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(_)) => {
                Err(CodecError::TooLarge)
            }
            Err(e) => Err(CodecError::Malformed(e.to_string())),
        },
    }
}

/// Encodes `packet` for a connection of `version` into `out`.
///
/// # Errors
/// [`CodecError::Malformed`] when the codec refuses the packet (a field too long).
pub(crate) fn encode(
    version: Version,
    packet: &v5::Packet,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let written = match version {
        Version::V5 => packet
            .write(out, None)
            .map_err(|e| CodecError::Malformed(e.to_string())),
        Version::V4 => match to_v4(packet) {
            Some(p) => p
                .write(out, usize::MAX)
                .map_err(|e| CodecError::Malformed(e.to_string())),
            // Packets 3.1.1 has no form of (a server DISCONNECT, AUTH): nothing to send.
            None => Ok(0),
        },
    };
    written.map(drop)
}

fn qos_from_v4(q: rumqttc::mqttbytes::QoS) -> QoS {
    match q {
        rumqttc::mqttbytes::QoS::AtMostOnce => QoS::AtMostOnce,
        rumqttc::mqttbytes::QoS::AtLeastOnce => QoS::AtLeastOnce,
        rumqttc::mqttbytes::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos_to_v4(q: QoS) -> rumqttc::mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => rumqttc::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::mqttbytes::QoS::ExactlyOnce,
    }
}

/// A 3.1.1 packet in its v5 form.
fn from_v4(p: v4::Packet) -> v5::Packet {
    match p {
        v4::Packet::Connect(c) => from_v4_connect(c),
        v4::Packet::Publish(p) => v5::Packet::Publish(v5::Publish {
            dup: p.dup,
            qos: qos_from_v4(p.qos),
            retain: p.retain,
            topic: bytes::Bytes::from(p.topic),
            pkid: p.pkid,
            payload: p.payload,
            properties: None,
        }),
        v4::Packet::PubAck(a) => v5::Packet::PubAck(v5::PubAck::new(a.pkid, None)),
        v4::Packet::PubRec(a) => v5::Packet::PubRec(v5::PubRec::new(a.pkid, None)),
        v4::Packet::PubRel(a) => v5::Packet::PubRel(v5::PubRel::new(a.pkid, None)),
        v4::Packet::PubComp(a) => v5::Packet::PubComp(v5::PubComp::new(a.pkid, None)),
        v4::Packet::Subscribe(s) => v5::Packet::Subscribe(v5::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| v5::Filter::new(f.path, qos_from_v4(f.qos)))
                .collect(),
            properties: None,
        }),
        v4::Packet::Unsubscribe(u) => v5::Packet::Unsubscribe(v5::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
            properties: None,
        }),
        v4::Packet::PingReq => v5::Packet::PingReq(v5::PingReq),
        v4::Packet::PingResp => v5::Packet::PingResp(v5::PingResp),
        v4::Packet::Disconnect => v5::Packet::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::NormalDisconnection,
        )),
        // Server-to-client packets a client must not send: read as a malformed DISCONNECT.
        v4::Packet::ConnAck(_) | v4::Packet::SubAck(_) | v4::Packet::UnsubAck(_) => {
            v5::Packet::Disconnect(v5::Disconnect::new(v5::DisconnectReasonCode::ProtocolError))
        }
    }
}

fn from_v4_connect(c: v4::Connect) -> v5::Packet {
    let will = c.last_will.map(|w| v5::LastWill {
        topic: bytes::Bytes::from(w.topic),
        message: w.message,
        qos: qos_from_v4(w.qos),
        retain: w.retain,
        properties: None,
    });
    let login = c.login.map(|l| v5::Login {
        username: l.username,
        password: l.password,
    });
    let connect = v5::Connect {
        keep_alive: c.keep_alive,
        client_id: c.client_id,
        clean_start: c.clean_session,
        properties: None,
    };
    v5::Packet::Connect(connect, will, login)
}

/// The 3.1.1 form of a packet the server sends; `None` when 3.1.1 has none.
fn to_v4(p: &v5::Packet) -> Option<v4::Packet> {
    Some(match p {
        v5::Packet::ConnAck(a) => v4::Packet::ConnAck(v4::ConnAck {
            session_present: a.session_present,
            code: connack_code_v4(a.code),
        }),
        v5::Packet::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: qos_to_v4(p.qos),
            retain: p.retain,
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        }),
        v5::Packet::PubAck(a) => v4::Packet::PubAck(v4::PubAck::new(a.pkid)),
        v5::Packet::PubRec(a) => v4::Packet::PubRec(v4::PubRec::new(a.pkid)),
        v5::Packet::PubRel(a) => v4::Packet::PubRel(v4::PubRel::new(a.pkid)),
        v5::Packet::PubComp(a) => v4::Packet::PubComp(v4::PubComp::new(a.pkid)),
        v5::Packet::SubAck(a) => v4::Packet::SubAck(v4::SubAck::new(
            a.pkid,
            a.return_codes
                .iter()
                .map(|c| match c {
                    v5::SubscribeReasonCode::Success(q) => {
                        v4::SubscribeReasonCode::Success(qos_to_v4(*q))
                    }
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        v5::Packet::UnsubAck(a) => v4::Packet::UnsubAck(v4::UnsubAck::new(a.pkid)),
        v5::Packet::PingResp(_) => v4::Packet::PingResp,
        _ => return None,
    })
}

/// MQTT 5 CONNACK reasons as 3.1.1 return codes.
fn connack_code_v4(code: v5::ConnectReturnCode) -> v4::ConnectReturnCode {
    use v5::ConnectReturnCode as C;
    match code {
        C::Success => v4::ConnectReturnCode::Success,
        C::RefusedProtocolVersion | C::UnsupportedProtocolVersion => {
            v4::ConnectReturnCode::RefusedProtocolVersion
        }
        C::BadClientId | C::ClientIdentifierNotValid => v4::ConnectReturnCode::BadClientId,
        C::BadUserNamePassword | C::BadAuthenticationMethod => {
            v4::ConnectReturnCode::BadUserNamePassword
        }
        C::NotAuthorized | C::Banned => v4::ConnectReturnCode::NotAuthorized,
        _ => v4::ConnectReturnCode::ServiceUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_bytes(p: v4::Packet) -> BytesMut {
        let mut b = BytesMut::new();
        p.write(&mut b, usize::MAX).expect("encode");
        b
    }

    #[test]
    fn the_version_is_read_from_connect_at_every_split() {
        let full = v4_bytes(v4::Packet::Connect(v4::Connect::new("dev-1")));
        for cut in 0..full.len() {
            assert!(matches!(peek_connect(&full[..cut]), Ok(None) | Ok(Some(_))));
        }
        assert_eq!(peek_connect(&full).ok().flatten(), Some(Version::V4));
        let mut v3 = full.to_vec();
        v3[8] = 3;
        assert!(matches!(peek_connect(&v3), Err(CodecError::Protocol(_, 3))));
        assert!(matches!(
            peek_connect(&[0x30, 0]),
            Err(CodecError::NotConnect)
        ));
    }

    #[test]
    fn a_v4_publish_reads_as_v5_and_goes_back_unchanged() {
        let mut p = v4::Publish::new("a/b", rumqttc::mqttbytes::QoS::AtLeastOnce, "hi");
        p.pkid = 7;
        let original = v4_bytes(v4::Packet::Publish(p));
        let mut buf = original.clone();
        let packet = decode(Version::V4, &mut buf, 1024)
            .expect("decode")
            .expect("whole");
        let mut out = BytesMut::new();
        encode(Version::V4, &packet, &mut out).expect("encode");
        assert_eq!(out, original);
        let mut half = original.clone();
        half.truncate(original.len() - 1);
        assert!(matches!(decode(Version::V4, &mut half, 1024), Ok(None)));
    }

    #[test]
    fn an_empty_v5_disconnect_is_a_normal_disconnect() {
        let mut buf = BytesMut::from(&[0xE0u8, 0x00][..]);
        let p = decode(Version::V5, &mut buf, 1024).expect("decode");
        assert!(matches!(p, Some(v5::Packet::Disconnect(d))
            if d.reason_code == v5::DisconnectReasonCode::NormalDisconnection));
        assert!(buf.is_empty());
    }
}
