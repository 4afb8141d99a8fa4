//! The logged-in part of a connection, the same for both ports: read items, turn them into
//! requests, charge what they cost to the client's flood budget (the reader then holds the
//! client back while it is spent), carry them out, until the client quits or goes, is
//! kicked, idles out, or the server shuts down; then leave the chat and flush.

use std::pin::Pin;
use std::time::Duration;

use chat_common::ChatError;
use chat_common::command::Request;
use chat_common::frame::encoded_len;
use chat_common::json_stream::StreamError;
use tokio::time::Sleep;
use tokio_util::codec::Decoder;

use crate::backend::Backend;
use crate::cmd::{self, Flow};
use crate::conn::flood::{self, ITEM_COST, REPLY_COST};
use crate::conn::outbound::Outbound;
use crate::conn::reader::{ClientRead, FrameReader, is_unfinished};
use crate::core::requests::Label;
use crate::core::stats::Disconnect;
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

/// Refuses a message whose text would exceed the size limit once encoded (PROTOCOL.md
/// §6.2): on the line port a control byte is one byte in and six out (`\u0001`), so a line
/// within the limit can make a frame six times over it, and a link message over the
/// broker's limit, which would cost the whole server its link.
fn within_limit(input: Input, limit: usize) -> Input {
    let text = match &input {
        Input::Request(Request::Public { text, .. } | Request::Private { text, .. }) => text,
        _ => return input,
    };
    let encoded = encoded_len(text);
    if encoded > limit {
        return Input::Bad(ChatError::MessageTooLarge { encoded, limit });
    }
    input
}

/// What carrying out `input` makes the server send, for the flood budget (PROTOCOL.md
/// §6.7); the bytes read for it were charged as they came in.
fn cost<B: Backend>(input: &Input, session: &Session<B>) -> u64 {
    match input {
        Input::Request(req) => {
            // Only a message to everyone and `/list` depend on who is online: only they
            // take the hub's lock to ask.
            let (users, list_bytes) = match req {
                Request::Public { .. } | Request::List => session.chat.hub().audience(),
                _ => (1, 0),
            };
            flood::request_cost(req, &session.name, users, list_bytes)
        }
        Input::Ignore => ITEM_COST,
        Input::Bad(_) => REPLY_COST,
    }
}

/// Serves a logged-in client until it is done. `unit` names an item in errors (`frame`,
/// `line`); `interpret` turns a decoded item into an [`Input`] and the item's label, which
/// goes on every answer to it (PROTOCOL.md §3.4).
///
/// Not an `async fn`: that would keep its arguments twice in every connection's future
/// (see `conn::json_port::serve`).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in every connection's future"
)]
pub fn serve<'a, B, R, D>(
    mut session: Session<B>,
    mut reader: FrameReader<R, D>,
    out: Outbound,
    ctx: &'a Ctx<B>,
    unit: &'static str,
    interpret: impl Fn(D::Item) -> (Input, Label) + Send + 'a,
) -> impl Future<Output = ()> + Send + 'a
where
    B: Backend,
    R: ClientRead,
    D: Decoder<Error = StreamError> + Send + 'a,
    D::Item: Send,
{
    async move {
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
                        ctx.stats().messages_in.inc();
                        ctx.stats().bytes_in.add(reader.take_bytes_read());
                        // Its answer is written without coalescing.
                        out.queue.peer_spoke();
                        if let Some((after, timer)) = idle.as_mut() {
                            timer.as_mut().reset(tokio::time::Instant::now() + *after);
                        }
                        // Scoped, so that the pair is not kept across the wait below.
                        let input = {
                            let (input, label) = interpret(item);
                            session.label = label;
                            within_limit(input, ctx.cfg.max_frame)
                        };
                        if reader.is_paced() {
                            reader.charge(cost(&input, &session));
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
                        session.label = None;
                    }
                    Some(Err(StreamError::TooLarge { limit })) => {
                        ctx.stats().disconnected(Disconnect::TooLarge);
                        session.error(&ChatError::TooLarge { unit, limit });
                        break;
                    }
                    Some(Err(StreamError::Io(e))) if is_unfinished(&e) => {
                        ctx.stats().disconnected(Disconnect::Unfinished);
                        let after_ms = u64::try_from(ctx.cfg.frame_timeout.as_millis()).unwrap_or(u64::MAX);
                        session.error(&ChatError::Unfinished { unit, after_ms });
                        break;
                    }
                    Some(Err(StreamError::Io(_))) | None => break,
                },
                after = idle_elapsed(&mut idle) => {
                    if reader.held_back() {
                        // Not idle: sending, and held back by its budget.
                        if let Some((after, timer)) = idle.as_mut() {
                            timer.as_mut().reset(tokio::time::Instant::now() + *after);
                        }
                        continue;
                    }
                    tracing::info!(user = %session.name, "disconnecting an idle client");
                    ctx.stats().disconnected(Disconnect::Idle);
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
        ctx.stats().bytes_in.add(reader.take_bytes_read());
        session.leave().await;
        out.finish().await;
    }
}
