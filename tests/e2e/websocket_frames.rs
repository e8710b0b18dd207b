//! WebSocket at the frame level, against rill and nats-server alike: protocol lines split
//! across fragments and across messages, a ping between fragments, the close handshake,
//! and permessage-deflate frames (RSV1) in both directions. The tiny client here frames
//! by hand on purpose: it is the test's probe, so it can send what libraries would not.

use std::io::{Read, Write};
use std::time::Duration;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use rill_tests::ServerKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::websocket::{ws_server, ws_url};

const WAIT: Duration = Duration::from_secs(10);
const BINARY: u8 = 2;
const CONTINUATION: u8 = 0;
const CLOSE: u8 = 8;
const PING: u8 = 9;
const PONG: u8 = 10;

/// One frame as read.
#[derive(Debug)]
pub(crate) struct Frame {
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A hand-framing WebSocket client.
pub(crate) struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Upgrades, offering `extensions`; returns the client and the response head.
    pub(crate) async fn connect(url: &str, extensions: Option<&str>) -> (RawWs, String) {
        let ext = extensions.map_or(String::new(), |e| {
            format!("Sec-WebSocket-Extensions: {e}\r\n")
        });
        Self::connect_with(url, &ext).await
    }

    /// Upgrades with `headers` (whole `Name: value\r\n` lines) added to the request;
    /// returns the client and the response head.
    pub(crate) async fn connect_with(url: &str, headers: &str) -> (RawWs, String) {
        let addr = url.trim_start_matches("ws://");
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .expect("send upgrade");
        let mut ws = RawWs {
            stream,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(end) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
                ws.buf.drain(..end + 4);
                break head;
            }
            ws.fill().await;
        };
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        (ws, head)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("server answered in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Sends one masked frame.
    pub(crate) async fn send(&mut self, fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) {
        let mut frame = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let key = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.stream.write_all(&frame).await.expect("send frame");
    }

    /// Reads one (unmasked) frame.
    async fn recv(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return frame;
            }
            self.fill().await;
        }
    }

    /// Reads the server's INFO.
    pub(crate) async fn info(&mut self) -> serde_json::Value {
        let (info, _) = self.data_until(b"\r\n").await;
        serde_json::from_slice(&info[5..]).expect("INFO json")
    }

    /// Sends `CONNECT <connect>`, then `then` and `PING` in one frame; returns the data
    /// that came back up to `until`.
    pub(crate) async fn login(
        &mut self,
        connect: &serde_json::Value,
        then: &str,
        until: &[u8],
    ) -> String {
        let line = format!("CONNECT {connect}\r\n{then}PING\r\n");
        self.send(true, false, BINARY, line.as_bytes()).await;
        let (answer, _) = self.data_until(until).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Reads data frames (inflating compressed ones) until `marker` has arrived; control
    /// frames are returned alongside.
    pub(crate) async fn data_until(&mut self, marker: &[u8]) -> (Vec<u8>, Vec<Frame>) {
        let (mut data, mut control) = (Vec::new(), Vec::new());
        while !data.windows(marker.len()).any(|w| w == marker) {
            let frame = self.recv().await;
            match frame.opcode {
                BINARY | CONTINUATION if frame.rsv1 => data.extend(inflate(&frame.payload)),
                BINARY | CONTINUATION => data.extend(frame.payload),
                _ => control.push(frame),
            }
        }
        (data, control)
    }
}

fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let (len, mut at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    at += len;
    let frame = Frame {
        rsv1: b0 & 0x40 != 0,
        opcode: b0 & 0x0f,
        payload,
    };
    Some((frame, at))
}

/// A permessage-deflate payload inflated (the `00 00 ff ff` tail restored).
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::new();
    let mut decoder = DeflateDecoder::new(&input[..]);
    // The stream has no final block, so reading ends with an "unexpected end" error
    // after everything has been produced.
    let _ = decoder.read_to_end(&mut out);
    out
}

/// A message deflated as permessage-deflate sends it (sync flush, tail removed).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("deflate");
    encoder.flush().expect("sync flush");
    let mut out = encoder.get_ref().clone();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush tail");
    out.truncate(out.len() - 4);
    out
}

fn contains(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn protocol_split_across_fragments_and_messages_with_a_ping_between() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = ws_server(kind, "port: -1\nno_tls: true", "").await;
        let (mut ws, head) = RawWs::connect(&ws_url(&server), None).await;
        assert!(!head.contains("permessage-deflate"), "{kind:?}: {head}");
        let info = ws.recv().await;
        assert_eq!(info.opcode, BINARY, "{kind:?}");
        assert!(info.payload.starts_with(b"INFO {"), "{kind:?}");

        ws.send(false, false, BINARY, b"CONNECT {\"verbose\":false}\r\nSU")
            .await;
        ws.send(true, false, PING, b"hb").await;
        ws.send(false, false, CONTINUATION, b"B t 1\r\nPUB t 5\r\nhel")
            .await;
        ws.send(true, false, CONTINUATION, b"lo\r\nPING\r\n").await;
        let (data, control) = ws.data_until(b"PONG\r\n").await;
        assert!(
            contains(&data, b"MSG t 1 5\r\nhello\r\n"),
            "{kind:?}: {data:?}"
        );
        assert!(
            control
                .iter()
                .any(|f| f.opcode == PONG && f.payload == b"hb"),
            "{kind:?}: {control:?}"
        );

        // A 200 KB publish sent as four separate messages.
        let payload = vec![b'z'; 200_000];
        let mut publish = format!("PUB t {}\r\n", payload.len()).into_bytes();
        publish.extend_from_slice(&payload);
        publish.extend_from_slice(b"\r\nPING\r\n");
        for part in publish.chunks(publish.len() / 4 + 1) {
            ws.send(true, false, BINARY, part).await;
        }
        let (data, _) = ws.data_until(b"PONG\r\n").await;
        let mut expected = b"MSG t 1 200000\r\n".to_vec();
        expected.extend_from_slice(&payload);
        assert!(contains(&data, &expected), "{kind:?}: large message lost");

        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        ws.send(true, false, CLOSE, &close).await;
        let reply = loop {
            let f = ws.recv().await;
            if f.opcode == CLOSE {
                break f;
            }
        };
        assert_eq!(
            reply.payload.get(..2),
            Some(&[0x03, 0xe8][..]),
            "{kind:?}: 1000"
        );
    }
}

#[tokio::test]
async fn compressed_frames_flow_both_ways_when_negotiated() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = ws_server(kind, "port: -1\nno_tls: true\ncompression: true", "").await;
        let offer = "permessage-deflate; client_max_window_bits";
        let (mut ws, head) = RawWs::connect(&ws_url(&server), Some(offer)).await;
        let agreed = head
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("sec-websocket-extensions:")
            })
            .unwrap_or_default()
            .to_string();
        assert!(
            agreed.ends_with(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ),
            "{kind:?}: {head}"
        );
        let info = ws.recv().await;
        assert!(info.rsv1, "{kind:?}: INFO is compressed");
        assert!(inflate(&info.payload).starts_with(b"INFO {"), "{kind:?}");

        let text = "{\"sensor\":\"t1\",\"celsius\":21.5}".repeat(500);
        let ops = format!(
            "CONNECT {{\"verbose\":false}}\r\nSUB dash 1\r\nPUB dash {}\r\n{text}\r\nPING\r\n",
            text.len()
        );
        let compressed = deflate(ops.as_bytes());
        assert!(compressed.len() < ops.len() / 10);
        ws.send(true, true, BINARY, &compressed).await;
        let (data, _) = ws.data_until(b"PONG\r\n").await;
        let expected = format!("MSG dash 1 {}\r\n{text}\r\n", text.len());
        assert!(
            contains(&data, expected.as_bytes()),
            "{kind:?}: message lost"
        );
    }
}

#[tokio::test]
async fn refused_upgrades_get_nats_servers_status_and_log_line() {
    let cases = [
        (
            "Origin: http://evil.example\r\n",
            "GET",
            "403",
            "origin not allowed: not same origin",
        ),
        ("", "POST", "405", "request method must be GET"),
    ];
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = ws_server(kind, "port: -1\nno_tls: true\nsame_origin: true", "").await;
        let url = ws_url(&server);
        let addr = url.trim_start_matches("ws://");
        for (header, method, status, log) in cases {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let req = format!(
                "{method} / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{header}\r\n"
            );
            stream.write_all(req.as_bytes()).await.expect("send");
            let mut answer = vec![0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut answer))
                .await
                .expect("answered")
                .expect("read");
            let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{kind:?}: {answer}"
            );
            rill_tests::check_for(WAIT, || async {
                server
                    .logs()
                    .contains(&format!("websocket handshake error: {log}"))
            })
            .await;
        }
    }
}

#[tokio::test]
async fn a_payload_over_max_payload_closes_with_1009_as_nats_server() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = ws_server(kind, "port: -1\nno_tls: true", "max_payload: 1024").await;
        let (mut ws, _) = RawWs::connect(&ws_url(&server), None).await;
        let info = ws.recv().await;
        assert!(info.payload.starts_with(b"INFO {"), "{kind:?}");
        let mut publish = b"CONNECT {\"verbose\":false}\r\nPUB t 2000\r\n".to_vec();
        publish.extend_from_slice(&[b'x'; 2000]);
        publish.extend_from_slice(b"\r\n");
        ws.send(true, false, BINARY, &publish).await;
        let (data, control) = ws.data_until(b"-ERR").await;
        assert!(
            contains(&data, b"-ERR 'Maximum Payload Violation'"),
            "{kind:?}: {data:?}"
        );
        let close = match control.into_iter().find(|f| f.opcode == CLOSE) {
            Some(f) => f,
            None => loop {
                let f = ws.recv().await;
                if f.opcode == CLOSE {
                    break f;
                }
            },
        };
        assert_eq!(
            close.payload.get(..2),
            Some(&1009u16.to_be_bytes()[..]),
            "{kind:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&close.payload[2..]),
            "Maximum Message Payload Exceeded",
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn configured_headers_come_with_the_upgrade_answer() {
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = ws_server(
            kind,
            "port: -1\nno_tls: true\nheaders { \"X-Edge\": \"yes\", \"Cache-Control\": \"no-store\" }",
            "",
        )
        .await;
        let (_ws, head) = RawWs::connect(&ws_url(&server), None).await;
        let lines: Vec<String> = head.lines().map(str::to_ascii_lowercase).collect();
        for want in ["x-edge: yes", "cache-control: no-store"] {
            assert!(lines.iter().any(|l| l == want), "{kind:?}: {head}");
        }
    }
}
