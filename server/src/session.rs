//! What the two ports have in common once a connection is accepted: its outbound queue
//! and writer task, the login through the broker, replies, and leaving.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::ServerFrame;
use chat_common::json_stream::StreamError;
use chat_common::link::{ConnId, ToBroker};
use netkit::queue::{self, QueueTx};
use netkit::writer::WriterExit;
use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;
use tokio::time::Sleep;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::cli::Config;
use crate::cmd::{Command, Flow};
use crate::frames::{self, Format};
use crate::hub::{Hub, UNAVAILABLE};
use crate::rate::{Bucket, Verdict};
use crate::reader::{ClientRead, FrameReader};

/// What every connection handler gets.
#[derive(Clone)]
pub struct Ctx {
    /// The server's shared state.
    pub hub: Arc<Hub>,
    /// Settings.
    pub cfg: Arc<Config>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

/// The sending half of a connection: its queue and the task writing it to the socket.
pub struct Outbound {
    /// The queue (the hub holds a clone once the client logs in).
    pub queue: QueueTx,
    writer: JoinHandle<WriterExit>,
}

impl Outbound {
    /// Starts the writer task. `gap` is the pause after the first frame (see
    /// [`netkit::writer::run_with_gap`]).
    pub fn start<W>(wr: W, cfg: &Config, gap: Duration) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (queue, rx) = queue::channel(cfg.client_queue_bytes);
        let writer = tokio::spawn(netkit::writer::run_with_gap(rx, wr, gap));
        Outbound { queue, writer }
    }

    /// Queues raw bytes (the line port's prompt, frames before login).
    pub fn push_raw(&self, bytes: bytes::Bytes) {
        let _ = self.queue.push(bytes);
    }

    /// Lets the writer flush what is queued, then closes the socket. Bounded in time: a
    /// peer that does not read cannot keep the task alive.
    pub async fn finish(self) {
        let Outbound { queue, mut writer } = self;
        drop(queue);
        if tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}

/// A logged-in client.
pub struct Session {
    /// The connection id, unique in this process.
    pub conn: ConnId,
    /// The logged-in name.
    pub name: String,
    /// Which port it came from.
    pub format: Format,
    /// Shared state.
    pub hub: Arc<Hub>,
}

impl Session {
    /// Registers `name` with the broker and waits for the answer. On success the hub has
    /// already queued the welcome frame.
    pub async fn login(
        ctx: &Ctx,
        conn: ConnId,
        name: String,
        peer: SocketAddr,
        format: Format,
        out: &QueueTx,
    ) -> Result<Session, String> {
        let ip = peer.ip().to_string();
        let (done, link) = ctx.hub.begin_login(conn, &name, &ip, format, out.clone())?;
        let hub = ctx.hub.clone();
        if link
            .send(&ToBroker::Register {
                conn,
                name: name.clone(),
                ip,
            })
            .await
            .is_err()
        {
            hub.leave(conn);
            return Err(UNAVAILABLE.to_string());
        }
        match tokio::time::timeout(ctx.cfg.login_timeout, done).await {
            Ok(Ok(Ok(()))) => Ok(Session {
                conn,
                name,
                format,
                hub,
            }),
            Ok(Ok(Err(reason))) => Err(reason),
            Ok(Err(_)) => Err(UNAVAILABLE.to_string()),
            Err(_) => {
                hub.leave(conn);
                Err("the chat service did not answer in time; try again shortly".to_string())
            }
        }
    }

    /// Queues a frame for this client.
    pub fn reply(&self, frame: &ServerFrame) {
        self.hub.send_to(self.conn, frame);
    }

    /// Queues an error frame (`msg` is prefixed with `Error: `).
    pub fn error(&self, msg: impl std::fmt::Display) {
        self.reply(&frames::error(self.hub.server_ip(), &self.name, msg));
    }

    /// Queues a notice.
    pub fn system(&self, msg: impl Into<String>) {
        self.reply(&frames::system(self.hub.server_ip(), &self.name, msg));
    }

    /// Leaves the chat: the broker frees the name and tells everyone.
    pub async fn leave(self) {
        if let Some(link) = self.hub.leave(self.conn) {
            let _ = link.send(&ToBroker::Unregister { conn: self.conn }).await;
        }
    }
}

/// An error frame for a client that is not logged in (yet).
pub fn login_error(
    hub: &Hub,
    name: &str,
    msg: impl std::fmt::Display,
    format: Format,
) -> bytes::Bytes {
    frames::encode(&frames::error(hub.server_ip(), name, msg), format)
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

/// The error text for a message over the rate limit.
fn rate_refusal(b: &Bucket) -> String {
    let limit = b.limit();
    format!(
        "rate limit exceeded ({} messages per second, bursts of {}): message not delivered; wait {} ms",
        limit.rate,
        limit.burst,
        b.wait().as_millis().max(1)
    )
}

/// What one decoded item from a client means.
pub enum Input {
    /// A command to carry out.
    Command(Command),
    /// Nothing to do (a blank line).
    Ignore,
    /// A bad item: the client is told why and the connection stays.
    Bad(String),
}

/// The logged-in part of a connection, the same for both ports: read items, turn them
/// into commands with `interpret`, until the client quits or goes, is kicked, or the server
/// shuts down; then leave the chat and flush. `unit` names an item in errors ("frame").
pub async fn serve<R, D>(
    session: Session,
    mut reader: FrameReader<R, D>,
    out: Outbound,
    ctx: &Ctx,
    unit: &str,
    interpret: impl Fn(D::Item) -> Input,
) where
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
                    let counted = !matches!(input, Input::Ignore | Input::Command(Command::Quit));
                    if let Some(b) = bucket.as_mut().filter(|_| counted) {
                        match b.check(Instant::now()) {
                            Verdict::Allow => {}
                            Verdict::Refuse => {
                                session.error(rate_refusal(b));
                                continue;
                            }
                            Verdict::Kick => {
                                tracing::warn!(user = %session.name, "disconnecting a client that keeps flooding");
                                session.error("disconnected: too many messages over the rate limit");
                                break;
                            }
                        }
                    }
                    match input {
                        Input::Command(cmd) => {
                            if cmd.execute(&session).await == Flow::Quit {
                                break;
                            }
                        }
                        Input::Ignore => {}
                        Input::Bad(why) => session.error(why),
                    }
                }
                Some(Err(StreamError::TooLarge { limit })) => {
                    session.error(format!("{unit} larger than {limit} bytes; closing the connection"));
                    break;
                }
                Some(Err(StreamError::Io(_))) | None => break,
            },
            after = idle_elapsed(&mut idle) => {
                tracing::info!(user = %session.name, "disconnecting an idle client");
                session.error(format!(
                    "disconnected: nothing received for {} s",
                    after.as_secs_f32()
                ));
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
