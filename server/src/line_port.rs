//! A connection on the line port (design §3): a nickname prompt, then one command or
//! message per line, answered with readable lines.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chat_common::line::LineDecoder;
use chat_common::link::ConnId;
use chat_common::name::validate_name;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use crate::cmd::Command;
use crate::frames::Format;
use crate::hub::UNAVAILABLE;
use crate::reader::FrameReader;
use crate::session::{self, Ctx, Input, Outbound, Session};

/// A person may mistype their nickname a few times before the connection is closed.
const NAME_ATTEMPTS: usize = 5;

const PROMPT: &str = "Welcome to the chat! Enter your nickname: ";

/// Serves one line-port connection until it closes.
pub async fn handle(socket: TcpStream, peer: SocketAddr, conn: ConnId, ctx: Ctx) {
    let _ = socket.set_nodelay(true);
    let (rd, wr) = socket.into_split();
    let out = Outbound::start(wr, &ctx.cfg, Duration::ZERO);
    let mut lines = FrameReader::new(rd, LineDecoder::new(ctx.cfg.max_frame), BytesMut::new());
    out.push_raw(Bytes::from_static(PROMPT.as_bytes()));

    let Some(session) = login(&mut lines, peer, conn, &ctx, &out).await else {
        return out.finish().await;
    };
    tracing::debug!(%peer, name = %session.name, "logged in (line)");
    session::serve(session, lines, out, &ctx, "line", |item| match item {
        Ok(line) => Command::from_line(&line).map_or(Input::Ignore, Input::Command),
        Err(_) => Input::Bad("that line is not valid UTF-8".to_string()),
    })
    .await;
}

/// Asks for a nickname until one is accepted, the attempts run out, or the peer goes.
async fn login(
    lines: &mut FrameReader<OwnedReadHalf, LineDecoder>,
    peer: SocketAddr,
    conn: ConnId,
    ctx: &Ctx,
    out: &Outbound,
) -> Option<Session> {
    let say = |text: String| out.push_raw(Bytes::from(text));
    for _ in 0..NAME_ATTEMPTS {
        let line = tokio::select! {
            l = tokio::time::timeout(ctx.cfg.login_timeout, lines.next()) => l,
            _ = ctx.shutdown.cancelled() => return None,
        };
        let name = match line {
            Ok(Some(Ok(Ok(name)))) => name.trim().to_string(),
            Ok(Some(Ok(Err(_)))) => {
                say(format!("Error: that line is not valid UTF-8\r\n{PROMPT}"));
                continue;
            }
            Err(_) => {
                let secs = ctx.cfg.login_timeout.as_secs_f32();
                say(format!(
                    "\r\nError: no nickname received within {secs} s. Bye.\r\n"
                ));
                return None;
            }
            Ok(Some(Err(_))) | Ok(None) => return None,
        };
        if let Err(e) = validate_name(&name) {
            say(format!("Error: invalid nickname: {e}\r\n{PROMPT}"));
            continue;
        }
        match Session::login(ctx, conn, name, peer, Format::Line, &out.queue).await {
            Ok(session) => return Some(session),
            Err(reason) if reason == UNAVAILABLE => {
                say(format!("Error: {reason}\r\n"));
                return None;
            }
            Err(reason) => say(format!("Error: {reason}\r\n{PROMPT}")),
        }
    }
    say("Too many attempts. Bye.\r\n".to_string());
    None
}
