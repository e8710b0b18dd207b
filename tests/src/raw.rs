//! A byte-level TCP client for checking exact protocol frames (`INFO`, `-ERR '…'`, `MSG`, `HMSG`).
//!
//! It does no parsing beyond splitting lines: tests send raw bytes and compare what comes back.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Default time to wait for a line before failing.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// A raw protocol connection. [`Conn::connect`] has already read the server's `INFO` line.
#[derive(Debug)]
pub struct Conn {
    stream: BufReader<TcpStream>,
    info: serde_json::Value,
}

impl Conn {
    /// Connects to `127.0.0.1:<port>` and reads the `INFO` line (panics if it is not `INFO {json}`).
    pub async fn connect(port: u16) -> Conn {
        Conn::try_connect(port)
            .await
            .unwrap_or_else(|line| panic!("expected INFO, got {line:?}"))
    }

    /// Connects and reads the first line: the connection if it is `INFO {json}`, else the line (for
    /// example `-ERR 'maximum connections exceeded'`).
    pub async fn try_connect(port: u16) -> Result<Conn, String> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        let mut conn = Conn {
            stream: BufReader::new(stream),
            info: serde_json::Value::Null,
        };
        let line = conn.read_line().await;
        let json = line.strip_prefix("INFO ").ok_or_else(|| line.clone())?;
        conn.info = serde_json::from_str(json.trim_end())
            .unwrap_or_else(|e| panic!("INFO is not JSON ({e}): {json:?}"));
        Ok(conn)
    }

    /// The server's `INFO` JSON.
    pub fn info(&self) -> &serde_json::Value {
        &self.info
    }

    /// Writes bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).await.expect("write to server");
        stream.flush().await.expect("flush to server");
    }

    /// Reads one line including its `\r\n`; panics after 5 s or at EOF.
    pub async fn read_line(&mut self) -> String {
        match self.try_read_line(LINE_TIMEOUT).await {
            Some(line) => line,
            None => panic!("no line from server within {LINE_TIMEOUT:?} (or connection closed)"),
        }
    }

    /// Reads one line including its `\r\n`, or `None` on timeout or EOF.
    pub async fn try_read_line(&mut self, timeout: Duration) -> Option<String> {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(timeout, self.stream.read_until(b'\n', &mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf).into_owned()),
            _ => None,
        }
    }

    /// Reads exactly `n` bytes (a payload and its `\r\n`); panics after 5 s.
    pub async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(LINE_TIMEOUT, self.stream.read_exact(&mut buf))
            .await
            .expect("timed out reading bytes")
            .expect("read bytes from server");
        buf
    }

    /// Collects every byte that arrives until `timeout` passes or the server closes the connection.
    pub async fn read_until(&mut self, timeout: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the accumulated bytes contain `needle` (returns them all) or `timeout` passes (panics).
    pub async fn read_until_contains(&mut self, needle: &[u8], timeout: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        while !out.windows(needle.len()).any(|w| w == needle) {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&chunk[..n]),
                _ => panic!(
                    "{:?} not seen within {timeout:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&out)
                ),
            }
        }
        out
    }

    /// Reads until the accumulated bytes contain `needle` or the server closes the
    /// connection, within `timeout`: the bytes read and whether the connection closed
    /// (`None` when neither happened in time).
    pub async fn read_until_contains_or_close(
        &mut self,
        needle: &[u8],
        timeout: Duration,
    ) -> (Vec<u8>, Option<bool>) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        while !out.windows(needle.len()).any(|w| w == needle) {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&chunk[..n]),
                Ok(_) => return (out, Some(true)),
                Err(_) => return (out, None),
            }
        }
        (out, Some(false))
    }

    /// Returns true if the server closes the connection within `timeout` (bytes before EOF are ignored).
    pub async fn is_closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}
