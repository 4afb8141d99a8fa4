//! Just enough of the NATS client protocol to check a node from a test without a NATS
//! crate: its greeting, and one request and its reply (a JetStream API call is one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::TIMEOUT;

/// Whether the node at `addr` accepts a client: it sends `INFO {...}` first.
pub(crate) fn greets(addr: SocketAddr) -> Result<(), String> {
    let (_, mut reader) = connect(addr)?;
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.starts_with("INFO ") {
        Ok(())
    } else {
        Err(format!("greeting {line:?}"))
    }
}

fn connect(addr: SocketAddr) -> Result<(TcpStream, BufReader<TcpStream>), String> {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let reader = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
    Ok((s, reader))
}

/// Publishes `payload` on `subject` over a new connection to `url` (`nats://host:port`)
/// and returns the payload of the first reply, within [`TIMEOUT`]. A JetStream API call
/// is one: `request(url, "$JS.API.STREAM.CREATE.S", br#"{"name":"S",...}"#)`.
///
/// With no subscriber the server answers at once with a 503 status (`no_responders`),
/// returned as an error, so an unready JetStream fails fast instead of timing out.
pub fn request(url: &str, subject: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    let hostport = url.strip_prefix("nats://").unwrap_or(url);
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|e| format!("{url}: not host:port ({e})"))?;
    let (mut s, mut reader) = connect(addr)?;
    let mut msg = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\
         \"no_responders\":true}}\r\nSUB _INBOX.testkit 1\r\nPUB {subject} _INBOX.testkit {}\r\n",
        payload.len()
    )
    .into_bytes();
    msg.extend_from_slice(payload);
    msg.extend_from_slice(b"\r\n");
    s.write_all(&msg).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading the reply: {e}")),
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("PING") => s.write_all(b"PONG\r\n").map_err(|e| e.to_string())?,
            Some("-ERR") => return Err(line.trim().to_string()),
            // MSG <subject> <sid> <size>; HMSG <subject> <sid> <header size> <total size>.
            Some(kind @ ("MSG" | "HMSG")) => {
                let size = |w: Option<&&str>| -> Result<usize, String> {
                    w.and_then(|w| w.parse().ok())
                        .ok_or_else(|| format!("bad {kind} line {line:?}"))
                };
                let total = size(words.last())?;
                let headers = if kind == "HMSG" {
                    size(words.get(words.len() - 2))?
                } else {
                    0
                };
                let mut body = vec![0; total + 2];
                reader.read_exact(&mut body).map_err(|e| e.to_string())?;
                let head = String::from_utf8_lossy(&body[..headers.min(total)]);
                if head.starts_with("NATS/1.0 503") {
                    return Err(format!("no responders on {subject}"));
                }
                body.truncate(total);
                return Ok(body.split_off(headers.min(total)));
            }
            _ => {} // INFO, +OK, PONG
        }
    }
    Err(format!("no reply on {subject} in {TIMEOUT:?}"))
}
