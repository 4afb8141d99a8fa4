//! `echo`: the least work any server could do for the `rtt` workload, to measure the
//! ceiling this machine and this load generator allow.
//!
//! It speaks just enough of the JSON port for `chat-bench rtt`: it reads the name line,
//! answers a welcome, then writes every frame it receives straight back to the same
//! connection with a newline after it. No parsing, no routing, no second process, one
//! thread: whatever round-trip rate `rtt` reaches against it is an upper bound for any
//! chat server on the same machine (ours crosses two processes and a broker hop).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Options of `echo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to listen on (loopback only); port 0 picks one, printed as
    /// `listening on IP:PORT`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// Serves until the process is stopped.
pub async fn run(a: Args) -> anyhow::Result<()> {
    if !a.listen.ip().is_loopback() {
        bail!(
            "the echo responder only listens on loopback, not {}",
            a.listen
        );
    }
    let listener = TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve(socket).await;
        });
    }
}

const WELCOME: &[u8] = b"{\"type\":\"welcome\",\"msg\":\"Welcome\"}\n";

async fn serve(mut socket: TcpStream) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    // The name ends at the first newline; anything after it is already a frame.
    let mut logged_in = false;
    loop {
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut from = 0;
        if !logged_in {
            let Some(nl) = memchr::memchr(b'\n', &buf) else {
                continue;
            };
            socket.write_all(WELCOME).await?;
            logged_in = true;
            from = nl + 1;
        }
        // Echo each complete frame (they end at '}' and carry no nested braces in the
        // benchmark) with a newline; keep an incomplete tail for the next read.
        let mut done = from;
        for end in memchr::memchr_iter(b'}', &buf[from..]) {
            let end = from + end + 1;
            out.extend_from_slice(&buf[done..end]);
            out.push(b'\n');
            done = end;
        }
        if !out.is_empty() {
            socket.write_all(&out).await?;
            out.clear();
        }
        buf.drain(..done);
    }
}
