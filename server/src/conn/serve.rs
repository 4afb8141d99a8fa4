//! The logged-in part of a connection, the same for both ports: read items, turn them into
//! requests, apply the rate limit, carry them out, until the client quits or goes, is
//! kicked, idles out, or the server shuts down; then leave the chat and flush.

use std::pin::Pin;
use std::time::{Duration, Instant};

use chat_common::ChatError;
use chat_common::command::Request;
use chat_common::json_stream::StreamError;
use tokio::time::Sleep;
use tokio_util::codec::Decoder;

use crate::backend::Backend;
use crate::cmd::{self, Flow};
use crate::conn::outbound::Outbound;
use crate::conn::rate::{Bucket, Verdict};
use crate::conn::reader::{ClientRead, FrameReader};
use crate::ctx::Ctx;
use crate::session::Session;

/// What one decoded item from a client means.
#[derive(Debug)]
pub enum Input {
    /// A request to carry out.
    Request(Request),
    /// Nothing to do (a blank line).
    Ignore,
    /// A bad item: the client is told why and the connection stays.
    Bad(ChatError),
}

impl From<Result<Option<Request>, ChatError>> for Input {
    fn from(parsed: Result<Option<Request>, ChatError>) -> Self {
        match parsed {
            Ok(Some(r)) => Input::Request(r),
            Ok(None) => Input::Ignore,
            Err(e) => Input::Bad(e),
        }
    }
}

/// Resolves (with the timeout) when the idle timer fires; never without one.
async fn idle_elapsed(idle: &mut Option<(Duration, Pin<Box<Sleep>>)>) -> Duration {
    match idle {
        Some((after, timer)) => {
            timer.as_mut().await;
            *after
        }
        None => std::future::pending().await,
    }
}

/// The error for a message over the rate limit.
fn rate_refusal(b: &Bucket) -> ChatError {
    let limit = b.limit();
    ChatError::RateLimited {
        rate: limit.rate,
        burst: limit.burst,
        wait_ms: u64::try_from(b.wait().as_millis().max(1)).unwrap_or(u64::MAX),
    }
}

/// Serves a logged-in client until it is done. `unit` names an item in errors (`frame`,
/// `line`); `interpret` turns a decoded item into an [`Input`].
pub async fn serve<B, R, D>(
    session: Session<B>,
    mut reader: FrameReader<R, D>,
    out: Outbound,
    ctx: &Ctx<B>,
    unit: &'static str,
    interpret: impl Fn(D::Item) -> Input,
) where
    B: Backend,
    R: ClientRead,
    D: Decoder<Error = StreamError>,
{
    let mut bucket = ctx.cfg.rate.map(|limit| Bucket::new(limit, Instant::now()));
    // With an idle timeout, a timer that every item pushes back; without, no timer at all
    // (thousands of quiet connections should not each keep one armed).
    let mut idle = ctx
        .cfg
        .idle_timeout
        .map(|after| (after, Box::pin(tokio::time::sleep(after))));
    loop {
        tokio::select! {
            item = reader.next() => match item {
                Some(Ok(item)) => {
                    if let Some((after, timer)) = idle.as_mut() {
                        timer.as_mut().reset(tokio::time::Instant::now() + *after);
                    }
                    let input = interpret(item);
                    // Every message costs a token, bad ones too; leaving never does.
                    let counted = !matches!(input, Input::Ignore | Input::Request(Request::Quit));
                    if let Some(b) = bucket.as_mut().filter(|_| counted) {
                        match b.check(Instant::now()) {
                            Verdict::Allow => {}
                            Verdict::Refuse => {
                                session.error(&rate_refusal(b));
                                continue;
                            }
                            Verdict::Kick => {
                                tracing::warn!(user = %session.name, "disconnecting a client that keeps flooding");
                                session.error(&ChatError::Flooding);
                                break;
                            }
                        }
                    }
                    match input {
                        Input::Request(req) => {
                            if cmd::execute(req, &session).await == Flow::Quit {
                                break;
                            }
                        }
                        Input::Ignore => {}
                        Input::Bad(why) => session.error(&why),
                    }
                }
                Some(Err(StreamError::TooLarge { limit })) => {
                    session.error(&ChatError::TooLarge { unit, limit });
                    break;
                }
                Some(Err(StreamError::Io(_))) | None => break,
            },
            after = idle_elapsed(&mut idle) => {
                tracing::info!(user = %session.name, "disconnecting an idle client");
                let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                session.error(&ChatError::Idle { after_ms });
                break;
            }
            _ = out.queue.closed() => break,
            _ = ctx.shutdown.cancelled() => {
                session.system("The server is shutting down. Goodbye!");
                break;
            }
        }
    }
    session.leave().await;
    out.finish().await;
}
