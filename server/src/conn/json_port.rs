//! A connection on the JSON port (PROTOCOL.md §2–§4): raw-name login, then a stream of JSON
//! frames.

use std::future::Future;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use chat_common::command;
use chat_common::json_stream::JsonStreamDecoder;
use chat_common::link::ConnId;
use chat_common::login::{self, LoginSplit};
use chat_common::name::parse_name;
use chat_common::{ChatError, Refusal};
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

use crate::backend::Backend;
use crate::conn::reader::ClientRead;
use crate::conn::serve::{self, Input};
use crate::core::frames::Format;
use crate::ctx::Ctx;
use crate::net::limits::Unnamed;
use crate::session::{Session, login_error};

/// Serves one JSON-port connection until it closes.
///
/// Not an `async fn`: the socket is split now and the task holds only the connection's own
/// future (see `Chat::publish` on why that matters for memory per connection).
pub fn handle<B: Backend>(
    socket: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    unnamed: Unnamed,
    ctx: Ctx<B>,
) -> impl Future<Output = ()> + Send {
    let _ = socket.set_nodelay(true);
    let (rd, wr) = socket.into_split();
    serve(rd, wr, peer, conn, unnamed, ctx)
}

/// Serves one connection on the TLS port: the handshake (within the login timeout), then
/// the JSON port inside it.
pub async fn handle_tls<B: Backend>(
    socket: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    peer: SocketAddr,
    conn: ConnId,
    unnamed: Unnamed,
    ctx: Ctx<B>,
) {
    let _ = socket.set_nodelay(true);
    let handshake = tokio::time::timeout(ctx.cfg.login_timeout, acceptor.accept(socket));
    let done = tokio::select! {
        done = handshake => done,
        _ = Box::pin(unnamed.evicted()) => {
            tracing::debug!(%peer, "TLS handshake closed to make room for a newer one");
            return;
        }
    };
    match done {
        Ok(Ok(tls)) => {
            let (rd, wr) = tokio::io::split(tls);
            serve(rd, wr, peer, conn, unnamed, ctx).await;
        }
        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// The JSON port over any stream's halves (plain TCP, TLS, or an in-memory pipe in tests).
///
/// Not an `async fn`, and the login's values live in a block that ends before the
/// logged-in loop is awaited: an `async fn` keeps its arguments twice, and a value that was
/// borrowed keeps its room in the future until its scope ends, even after it is moved into
/// the loop. Every idle connection of a large room pays for that room (BENCHMARKS.md,
/// "Memory per connection").
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in every connection's future"
)]
pub fn serve<B, R, W>(
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    conn: ConnId,
    unnamed: Unnamed,
    ctx: Ctx<B>,
) -> impl Future<Output = ()> + Send
where
    B: Backend,
    R: ClientRead,
    W: AsyncWrite + Unpin + Send + 'static,
{
    async move {
        let logged_in = {
            let out = ctx.outbound(wr, ctx.cfg.welcome_gap);
            let mut buf = BytesMut::with_capacity(256);
            let refuse = |to: &str, refusal: Refusal| {
                ctx.stats().refused(refusal.code());
                let err = ChatError::Refused(refusal);
                out.push_raw(login_error(ctx.chat.server_ip(), to, &err, Format::Json));
            };

            let read = read_login(&mut rd, &mut buf, &unnamed, &ctx).await;
            // What the login read; the frame reader counts the rest.
            ctx.stats()
                .bytes_in
                .add(u64::try_from(buf.len()).unwrap_or(u64::MAX));
            let split = match read {
                Login::Name(split) => split,
                Login::Evicted => {
                    refuse("", unnamed.eviction());
                    return out.finish().await;
                }
                Login::TimedOut => {
                    let timeout_ms =
                        u64::try_from(ctx.cfg.login_timeout.as_millis()).unwrap_or(u64::MAX);
                    refuse("", Refusal::LoginTimeout { timeout_ms });
                    return out.finish().await;
                }
                Login::Closed => return out.finish().await,
            };
            let name = match parse_name(&buf[..split.name_len]) {
                Ok(name) => name,
                Err(e) => {
                    let shown = String::from_utf8_lossy(&buf[..split.name_len]).into_owned();
                    refuse(&shown, e.into());
                    return out.finish().await;
                }
            };
            buf.advance(split.consumed);
            // It sent a name: no longer one of its address's idle unnamed connections.
            drop(unnamed);
            // Boxed: the login runs once, and inline its state would widen every
            // connection's future for as long as it lives.
            let login = Box::pin(Session::login(
                &ctx.chat,
                conn,
                name.clone(),
                peer,
                Format::Json,
                &out.queue,
            ));
            let session = match login.await {
                Ok(s) => s,
                Err(refusal) => {
                    refuse(&name, refusal);
                    return out.finish().await;
                }
            };
            tracing::debug!(%peer, name = %session.name, "logged in (json)");
            let frames = ctx.reader(rd, JsonStreamDecoder::new(ctx.cfg.max_frame), buf);
            serve::serve(session, frames, out, &ctx, "frame", |item| match item {
                Ok(frame) => {
                    let label = frame.label.map(String::into_boxed_str);
                    (
                        command::parse_json(frame.to, frame.msg).map(Some).into(),
                        label,
                    )
                }
                Err(bad) => (Input::Bad(bad.into()), None),
            })
        };
        logged_in.await;
    }
}

enum Login {
    Name(LoginSplit),
    TimedOut,
    /// Closed to make room for a newer connection from its address.
    Evicted,
    Closed,
}

/// Reads until the name is complete: a terminator arrived, or the bytes stopped (PROTOCOL.md
/// §2.1). The seed clients send the bare name in one write and then wait for the welcome:
/// when the first read brings several bytes and a second look, after letting the runtime
/// run, finds nothing more, that is the name, at once (before, every such login waited the
/// whole 50 ms grace period). A name that comes in pieces (one byte per read, or more bytes
/// at that second look) is someone typing or trickling: it is waited for up to the grace
/// period after each piece.
async fn read_login<B, R: ClientRead>(
    rd: &mut R,
    buf: &mut BytesMut,
    unnamed: &Unnamed,
    ctx: &Ctx<B>,
) -> Login {
    let deadline = tokio::time::Instant::now() + ctx.cfg.login_timeout;
    let mut in_pieces = false;
    loop {
        if buf.len() == 1 {
            in_pieces = true;
        }
        if buf.len() > 1 && !in_pieces {
            // The name came in one piece. The bytes of one write arrive together: look once
            // more without waiting; anything there means it is coming in pieces after all.
            in_pieces = true;
            tokio::task::yield_now().await;
            match rd.read_buf(buf).now_or_never() {
                None => return Login::Name(login::split_at_timeout(buf)),
                Some(Ok(0) | Err(_)) => return Login::Closed,
                Some(Ok(_)) => {
                    if let Some(split) = login::split_login(buf) {
                        return Login::Name(split);
                    }
                    continue;
                }
            }
        }
        let wait_until = if buf.is_empty() {
            deadline
        } else {
            deadline.min(tokio::time::Instant::now() + ctx.cfg.login_grace)
        };
        tokio::select! {
            read = tokio::time::timeout_at(wait_until, rd.read_buf(buf)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Login::Closed,
                Ok(Ok(_)) => {
                    if let Some(split) = login::split_login(buf) {
                        return Login::Name(split);
                    }
                }
                Err(_) if buf.is_empty() => return Login::TimedOut,
                Err(_) => return Login::Name(login::split_at_timeout(buf)),
            },
            // Boxed: rarely needed, and inline it would stay in every connection's layout.
            _ = Box::pin(unnamed.evicted()) => return Login::Evicted,
            _ = ctx.shutdown.cancelled() => return Login::Closed,
        }
    }
}
