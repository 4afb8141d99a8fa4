//! A connection on the line port (PROTOCOL.md §7): a nickname prompt, then one command or
//! message per line, answered with readable lines.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chat_common::command;
use chat_common::line::LineDecoder;
use chat_common::link::ConnId;
use chat_common::name::validate_name;
use chat_common::{ChatError, ErrorCode, Refusal};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::backend::Backend;
use crate::conn::outbound::Outbound;
use crate::conn::reader::{ClientRead, FrameReader};
use crate::conn::serve::{self, Input};
use crate::core::frames::Format;
use crate::ctx::Ctx;
use crate::net::limits::Unnamed;
use crate::session::Session;

/// A person may mistype their nickname a few times before the connection is closed.
const NAME_ATTEMPTS: usize = 5;

/// What the server asks for first.
pub const PROMPT: &str = "Welcome to the chat! Enter your nickname: ";

/// Serves one line-port connection until it closes.
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

/// The line port over any stream's halves.
///
/// Not an `async fn`, and the login's values live in a block that ends before the
/// logged-in loop is awaited, for the reason given at [`super::json_port::serve`].
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in every connection's future"
)]
pub fn serve<B, R, W>(
    rd: R,
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
            let out = ctx.outbound(wr, Duration::ZERO);
            let mut lines = ctx.reader(rd, LineDecoder::new(ctx.cfg.max_frame), BytesMut::new());
            out.push_raw(Bytes::from_static(PROMPT.as_bytes()));

            let login = Box::pin(login(&mut lines, peer, conn, &unnamed, &ctx, &out));
            let Some(session) = login.await else {
                return out.finish().await;
            };
            // Logged in: no longer one of its address's unnamed connections.
            drop(unnamed);
            tracing::debug!(%peer, name = %session.name, "logged in (line)");
            // A line has no label (PROTOCOL.md §3.4 is the JSON port's).
            serve::serve(session, lines, out, &ctx, "line", |item| match item {
                Ok(line) => (command::parse_typed(&line).into(), None),
                Err(_) => (Input::Bad(ChatError::BadLine), None),
            })
        };
        logged_in.await;
    }
}

/// Asks for a nickname until one is accepted, the attempts run out, or the peer goes.
async fn login<B: Backend, R: ClientRead>(
    lines: &mut FrameReader<R, LineDecoder>,
    peer: SocketAddr,
    conn: ConnId,
    unnamed: &Unnamed,
    ctx: &Ctx<B>,
    out: &Outbound,
) -> Option<Session<B>> {
    let say = |text: String| out.push_raw(Bytes::from(text));
    // One deadline for the whole login, however many names are tried.
    let deadline = tokio::time::Instant::now() + ctx.cfg.login_timeout;
    for _ in 0..NAME_ATTEMPTS {
        let line = tokio::select! {
            l = tokio::time::timeout_at(deadline, lines.next()) => l,
            // Boxed: rarely needed, and inline it would stay in every connection's layout.
            _ = Box::pin(unnamed.evicted()) => {
                let eviction = unnamed.eviction();
                ctx.stats().refused(eviction.code());
                say(format!("\r\nError: {eviction}\r\n"));
                return None;
            }
            _ = ctx.shutdown.cancelled() => return None,
        };
        let name = match line {
            Ok(Some(Ok(Ok(name)))) => name.trim().to_string(),
            Ok(Some(Ok(Err(_)))) => {
                say(format!("Error: {}\r\n{PROMPT}", ChatError::BadLine));
                continue;
            }
            Err(_) => {
                ctx.stats().refused(ErrorCode::LoginTimeout);
                let secs = ctx.cfg.login_timeout.as_secs_f32();
                say(format!(
                    "\r\nError: no nickname received within {secs} s. Bye.\r\n"
                ));
                return None;
            }
            Ok(Some(Err(_))) | Ok(None) => return None,
        };
        if let Err(e) = validate_name(&name) {
            ctx.stats().refused(ErrorCode::NameInvalid);
            say(format!("Error: invalid nickname: {e}\r\n{PROMPT}"));
            continue;
        }
        let login = Session::login(&ctx.chat, conn, name, peer, Format::Line, &out.queue).await;
        if let Err(refusal) = &login {
            ctx.stats().refused(refusal.code());
        }
        match login {
            Ok(session) => return Some(session),
            // Asking for another name cannot help while the service is away.
            Err(refusal @ Refusal::Unavailable) => {
                say(format!("Error: {refusal}\r\n"));
                return None;
            }
            Err(refusal) => say(format!("Error: {refusal}\r\n{PROMPT}")),
        }
    }
    say("Too many attempts. Bye.\r\n".to_string());
    None
}
