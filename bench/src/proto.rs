//! The two protocols the load generator speaks: the chat system's JSON port and IRC (for
//! the peers). Only what a benchmark needs: log in, send public and private messages,
//! and find benchmark payloads in received lines without parsing the whole line.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Which server is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// The chat system's JSON port.
    Chat,
    /// An IRC server (ngircd, inspircd), all users in one channel.
    Irc,
}

/// The IRC channel every benchmark user joins.
pub const CHANNEL: &str = "#bench";

/// Marks a benchmark payload: `~B|sender|seq|micros|padding`.
pub const MARK: &[u8] = b"~B|";

/// A payload with its identity and send time, padded with `x` to `size` bytes.
pub fn payload(sender: u32, seq: u64, micros: u64, size: usize) -> String {
    let mut p = format!("~B|{sender}|{seq}|{micros}|");
    while p.len() < size {
        p.push('x');
    }
    p
}

/// A payload found in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Sender index.
    pub sender: u32,
    /// Sequence number.
    pub seq: u64,
    /// Send time, microseconds since the run's start.
    pub micros: u64,
}

/// Finds a benchmark payload in a received line.
pub fn find_payload(line: &[u8]) -> Option<Seen> {
    let at = memmem::find(line, MARK)? + MARK.len();
    let mut fields = line[at..].splitn(4, |b| *b == b'|');
    let num = |f: Option<&[u8]>| -> Option<u64> {
        let f = f?;
        if f.is_empty() || f.len() > 20 {
            return None;
        }
        f.iter().try_fold(0u64, |acc, b| {
            b.is_ascii_digit()
                .then(|| acc.wrapping_mul(10).wrapping_add(u64::from(b - b'0')))
        })
    };
    let sender = u32::try_from(num(fields.next())?).ok()?;
    let seq = num(fields.next())?;
    let micros = num(fields.next())?;
    Some(Seen {
        sender,
        seq,
        micros,
    })
}

/// A logged-in client: a line reader and a writer.
pub struct Client {
    /// Reading half with its buffer.
    pub reader: LineReader,
    /// Writing half.
    pub writer: OwnedWriteHalf,
    /// The protocol.
    pub proto: Proto,
    /// The client's name.
    pub name: String,
}

/// Reads `\n`-terminated lines with large reads.
pub struct LineReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    read_size: usize,
}

impl LineReader {
    /// Wraps a read half; `read_size` bytes are asked for per read.
    pub fn new(rd: OwnedReadHalf, read_size: usize) -> Self {
        LineReader {
            rd,
            buf: BytesMut::new(),
            read_size,
        }
    }

    /// Calls `f` on every complete line currently buffered, reading once first if none
    /// is. Returns the number of lines, or 0 at EOF.
    pub async fn next_batch(&mut self, mut f: impl FnMut(&[u8])) -> std::io::Result<usize> {
        loop {
            let mut n = 0;
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &self.buf) {
                f(&self.buf[start..end]);
                start = end + 1;
                n += 1;
            }
            self.buf.advance(start);
            if n > 0 {
                return Ok(n);
            }
            self.buf.reserve(self.read_size);
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Ok(0);
            }
        }
    }

    /// The next line (for logins), owned.
    pub async fn line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf) {
                let line = self.buf.split_to(end + 1);
                return Ok(Some(line[..end].to_vec()));
            }
            self.buf.reserve(4096);
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

impl Client {
    /// Connects `stream` and logs in as `name`, waiting until the server says so (the chat
    /// welcome; IRC's 001 and, with `join`, the channel's 366).
    pub async fn login(
        stream: TcpStream,
        proto: Proto,
        name: &str,
        timeout: Duration,
        join: bool,
        bare_name: bool,
    ) -> anyhow::Result<Client> {
        let _ = stream.set_nodelay(true);
        let (rd, mut writer) = stream.into_split();
        let mut reader = LineReader::new(rd, 64 * 1024);
        let handshake = async {
            match proto {
                Proto::Chat => {
                    let end = if bare_name { "" } else { "\n" };
                    writer.write_all(format!("{name}{end}").as_bytes()).await?;
                    let line = reader.line().await?.context("closed before the welcome")?;
                    if memmem::find(&line, b"\"type\":\"welcome\"").is_none() {
                        bail!("login refused: {}", String::from_utf8_lossy(&line));
                    }
                }
                Proto::Irc => {
                    writer
                        .write_all(format!("NICK {name}\r\nUSER {name} 0 * :{name}\r\n").as_bytes())
                        .await?;
                    wait_numeric(&mut reader, &mut writer, b" 001 ").await?;
                    if !join {
                        return anyhow::Ok(());
                    }
                    writer
                        .write_all(format!("JOIN {CHANNEL}\r\n").as_bytes())
                        .await?;
                    wait_numeric(&mut reader, &mut writer, b" 366 ").await?;
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .context("login timed out")??;
        Ok(Client {
            reader,
            writer,
            proto,
            name: name.to_string(),
        })
    }

    /// Encodes a public message.
    pub fn public(proto: Proto, msg: &str) -> String {
        match proto {
            Proto::Chat => format!("{{\"to\":\"*\",\"msg\":\"{msg}\"}}"),
            Proto::Irc => format!("PRIVMSG {CHANNEL} :{msg}\r\n"),
        }
    }

    /// Encodes a private message.
    pub fn private(proto: Proto, to: &str, msg: &str) -> String {
        match proto {
            Proto::Chat => format!("{{\"to\":\"{to}\",\"msg\":\"{msg}\"}}"),
            Proto::Irc => format!("PRIVMSG {to} :{msg}\r\n"),
        }
    }

    /// Answers an IRC `PING` line; true if the line was one.
    pub fn pong_for(line: &[u8]) -> Option<Vec<u8>> {
        let rest = line.strip_prefix(b"PING ")?;
        let mut pong = b"PONG ".to_vec();
        pong.extend_from_slice(rest.strip_suffix(b"\r").unwrap_or(rest));
        pong.extend_from_slice(b"\r\n");
        Some(pong)
    }
}

/// The command or numeric of an IRC line (`:prefix CMD ...` or `CMD ...`).
fn irc_command(line: &[u8]) -> &[u8] {
    let mut words = line.split(|b| *b == b' ').filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default();
    if first.starts_with(b":") {
        words.next().unwrap_or_default()
    } else {
        first
    }
}

async fn wait_numeric(
    reader: &mut LineReader,
    writer: &mut OwnedWriteHalf,
    numeric: &[u8],
) -> anyhow::Result<()> {
    let want = numeric.trim_ascii();
    loop {
        let line = reader.line().await?.context("closed during login")?;
        if let Some(pong) = Client::pong_for(&line) {
            writer.write_all(&pong).await?;
            continue;
        }
        let cmd = irc_command(&line);
        if cmd == want {
            return Ok(());
        }
        // ERROR, or a numeric refusing the nick or the join.
        if cmd == b"ERROR"
            || matches!(
                cmd,
                b"432" | b"433" | b"436" | b"471" | b"473" | b"474" | b"475"
            )
        {
            bail!("login refused: {}", String::from_utf8_lossy(&line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_found_in_both_protocols() {
        let p = payload(7, 42, 123_456, 100);
        assert_eq!(p.len(), 100);
        let want = Some(Seen {
            sender: 7,
            seq: 42,
            micros: 123_456,
        });
        let json = format!(
            r#"{{"from":{{"name":"b7","ip":"127.0.0.1"}},"to":"Everyone","msg":"{p}","type":"chat","id":9}}"#
        );
        assert_eq!(find_payload(json.as_bytes()), want);
        let irc = format!(":b7!b7@localhost PRIVMSG #bench :{p}\r");
        assert_eq!(find_payload(irc.as_bytes()), want);
        assert_eq!(find_payload(b"~B|1|2|"), None);
        assert_eq!(find_payload(b"~B|x|2|3|"), None);
        assert_eq!(find_payload(b"no payload"), None);
    }

    #[test]
    fn irc_commands_are_read_from_the_right_word() {
        assert_eq!(
            irc_command(b":srv 265 nick 1 433 :Current local users: 1, Max: 433"),
            b"265"
        );
        assert_eq!(
            irc_command(b":srv 433 * nick :Nickname already in use"),
            b"433"
        );
        assert_eq!(irc_command(b"ERROR :Closing link"), b"ERROR");
    }

    #[test]
    fn pings_are_answered() {
        assert_eq!(
            Client::pong_for(b"PING :irc.local\r"),
            Some(b"PONG :irc.local\r\n".to_vec())
        );
        assert_eq!(Client::pong_for(b":x PRIVMSG"), None);
    }
}
