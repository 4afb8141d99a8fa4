//! The network side: one receive thread per connection owns the socket and turns its bytes
//! into [`NetEvent`]s (parsed with `common`'s decoder), and one writer thread sends what the
//! UI queues. The UI thread never blocks on I/O: it only pushes to channels.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chat_common::{ServerFrameDecoder, StreamError};
use crossbeam_channel::{Receiver, Sender, unbounded};
use tokio_util::codec::Decoder;

use crate::state::{Action, NetEvent, TlsSettings};
use crate::tls::{TlsSession, TlsWriter};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest frame accepted from a server.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Something that wakes the UI up when an event arrives (egui's `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

struct Handle {
    out: Sender<Bytes>,
    /// The socket once connected, so `close` can shut it down from the UI thread.
    socket: Arc<Mutex<Option<TcpStream>>>,
}

/// Runs the connections the state asks for.
pub struct Net {
    events: Sender<NetEvent>,
    conns: HashMap<u64, Handle>,
}

impl Net {
    /// A network side reporting to `events`.
    pub fn new(events: Sender<NetEvent>) -> Self {
        Net {
            events,
            conns: HashMap::new(),
        }
    }

    /// Carries out one action; `wake` is called after each event the threads send.
    pub fn apply(&mut self, action: Action, wake: &Waker) {
        match action {
            Action::Connect {
                conn,
                addr,
                name,
                tls,
            } => {
                let (out_tx, out_rx) = unbounded();
                let socket = Arc::new(Mutex::new(None));
                let (events, wake, sock) = (self.events.clone(), wake.clone(), socket.clone());
                let spawned = thread::Builder::new()
                    .name(format!("chat-recv-{conn}"))
                    .spawn(move || {
                        let target = Target {
                            addr: &addr,
                            name: &name,
                            tls: tls.as_ref(),
                        };
                        run_connection(conn, target, out_rx, &sock, &events, &wake)
                    });
                if let Err(e) = spawned {
                    let _ = self.events.send(NetEvent::ConnectFailed {
                        conn,
                        reason: e.to_string(),
                    });
                }
                self.conns.insert(
                    conn,
                    Handle {
                        out: out_tx,
                        socket,
                    },
                );
            }
            Action::Send { conn, frame } => {
                if let Some(h) = self.conns.get(&conn) {
                    let from = chat_common::Sender {
                        name: String::new(),
                        ip: String::new(),
                    };
                    let _ = h.out.send(Bytes::from(frame.to_json(&from)));
                }
            }
            Action::Close { conn } => {
                if let Some(h) = self.conns.remove(&conn) {
                    // Dropping `out` lets the writer flush (a `/quit`) and stop; shutting
                    // the read side down wakes the receive thread.
                    drop(h.out);
                    if let Some(s) = lock(&h.socket).as_ref() {
                        let _ = s.shutdown(Shutdown::Read);
                    }
                }
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for (_, h) in self.conns.drain() {
            if let Some(s) = lock(&h.socket).as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn lock(m: &Mutex<Option<TcpStream>>) -> std::sync::MutexGuard<'_, Option<TcpStream>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a connection goes.
struct Target<'a> {
    addr: &'a str,
    name: &'a str,
    tls: Option<&'a TlsSettings>,
}

/// The sending side: plain, or through the TLS session.
enum Outgoing {
    Plain(TcpStream),
    Tls(TlsWriter),
}

impl Outgoing {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Outgoing::Plain(s) => s.write_all(bytes),
            Outgoing::Tls(w) => w.write_all(bytes),
        }
    }

    /// Ends the write side (after a TLS close notification), so a `/quit` is delivered.
    fn finish(&mut self) {
        match self {
            Outgoing::Plain(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Outgoing::Tls(w) => w.close(),
        }
    }
}

/// Connects (and shakes hands) and splits the stream into its two sides.
fn open(target: &Target) -> Result<(TcpStream, Box<dyn Read + Send>, Outgoing), String> {
    let mut stream = connect(target.addr)?;
    let _ = stream.set_nodelay(true);
    let session = match target.tls {
        Some(settings) => Some(TlsSession::handshake(
            &mut stream,
            settings,
            CONNECT_TIMEOUT,
        )?),
        None => None,
    };
    let clone = || stream.try_clone().map_err(|e| e.to_string());
    let (r, w) = (clone()?, clone()?);
    Ok(match session {
        None => (stream, Box::new(r), Outgoing::Plain(w)),
        Some(tls) => (
            stream,
            Box::new(tls.reader(r)),
            Outgoing::Tls(tls.writer(w)),
        ),
    })
}

fn run_connection(
    conn: u64,
    target: Target,
    out: Receiver<Bytes>,
    socket: &Mutex<Option<TcpStream>>,
    events: &Sender<NetEvent>,
    wake: &Waker,
) {
    let emit = |event: NetEvent| {
        let _ = events.send(event);
        wake();
    };
    let (raw, mut reader, writer) = match open(&target) {
        Ok(parts) => parts,
        Err(reason) => return emit(NetEvent::ConnectFailed { conn, reason }),
    };
    let name = target.name;
    *lock(socket) = Some(raw);
    // The name with a newline: the server takes it at once, without its grace period.
    let mut login = writer;
    if let Err(e) = login.write_all(format!("{name}\n").as_bytes()) {
        return emit(NetEvent::Closed {
            conn,
            reason: e.to_string(),
        });
    }
    let _ = thread::Builder::new()
        .name(format!("chat-send-{conn}"))
        .spawn(move || write_loop(login, out));

    let mut decoder = ServerFrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let reason = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break "the server closed the connection".to_string(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break e.to_string(),
        }
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Ok(frame))) => {
                    let _ = events.send(NetEvent::Frame { conn, frame });
                }
                Ok(Some(Err(e))) => tracing::warn!("ignoring a bad frame from the server: {e}"),
                Ok(None) => break,
                Err(StreamError::TooLarge { limit }) => {
                    if let Some(s) = lock(socket).as_ref() {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    return emit(NetEvent::Closed {
                        conn,
                        reason: format!("the server sent a frame over {limit} bytes"),
                    });
                }
                Err(StreamError::Io(e)) => {
                    return emit(NetEvent::Closed {
                        conn,
                        reason: e.to_string(),
                    });
                }
            }
        }
        // One wake-up per read, not per frame: a burst costs one repaint.
        wake();
    };
    emit(NetEvent::Closed { conn, reason });
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .collect();
    let mut last = format!("no address found for {addr}");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn write_loop(mut stream: Outgoing, out: Receiver<Bytes>) {
    for frame in out.iter() {
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
    // The UI closed the connection: finish the write side so a `/quit` is delivered.
    stream.finish();
}
