//! The metrics endpoint: a tiny HTTP/1.x server that answers `GET /metrics` with the
//! registry's page and closes the connection.
//!
//! Hand-written on tokio rather than with hyper: the endpoint reads one request head and
//! writes one answer, which is a few dozen lines, and hyper (with its connection handling,
//! keep-alive and body types) would be the largest dependency of both binaries for it. What
//! it must guarantee is small and checked here: a request head is bounded
//! ([`MAX_REQUEST`]) and must arrive within [`READ_TIMEOUT`], answers are bounded in time
//! too, at most [`MAX_CONNECTIONS`] are served at once (more are closed unread), and
//! nothing a peer sends can make it panic. A scrape never touches the chat's hot paths: it
//! reads atomics (and takes a lock or two that the hot paths hold only briefly).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::metrics::Registry;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The largest request head read (request line and headers); past it the answer is 431.
pub const MAX_REQUEST: usize = 8 * 1024;

/// How long a peer may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long writing an answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more are closed at once, unread.
pub const MAX_CONNECTIONS: usize = 16;

/// How long the accept loop backs off after a failed accept (usually EMFILE).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (`head`: a `HEAD`, answered without the body).
    Metrics {
        /// Whether only the head is wanted.
        head: bool,
    },
    /// Any other path: 404.
    NotFound,
    /// A method other than `GET` or `HEAD`: 405.
    MethodNotAllowed,
    /// Not an HTTP request line: 400.
    BadRequest,
}

/// Where a complete request head ends in `buf` (after its blank line), if it is there.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the request whose head is `head` asks for: only its request line matters
/// (`METHOD TARGET HTTP/1.x`); a query string is ignored.
pub fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    let path = target.split(['?', '#']).next().unwrap_or(target);
    if path == "/metrics" {
        Route::Metrics { head }
    } else {
        Route::NotFound
    }
}

/// A whole answer: status line, headers (`Connection: close`, the length) and body.
pub fn response(status: &str, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// The answer to what was read, `None` when there is nothing to answer (the peer closed
/// or went silent before a whole head).
fn answer(read: Read, registry: &Registry) -> Option<Vec<u8>> {
    let plain = "text/plain; charset=utf-8";
    Some(match read {
        Read::Head(head) => match route(&head) {
            Route::Metrics { head } => {
                response("200 OK", CONTENT_TYPE, registry.render().as_bytes(), head)
            }
            Route::NotFound => {
                response("404 Not Found", plain, b"not found: try /metrics\n", false)
            }
            Route::MethodNotAllowed => response(
                "405 Method Not Allowed",
                plain,
                b"GET or HEAD only\n",
                false,
            ),
            Route::BadRequest => response("400 Bad Request", plain, b"bad request\n", false),
        },
        Read::TooLarge => response(
            "431 Request Header Fields Too Large",
            plain,
            b"request too large\n",
            false,
        ),
        Read::Gone => return None,
    })
}

/// What reading a request head gave.
enum Read {
    Head(Vec<u8>),
    TooLarge,
    Gone,
}

async fn read_head(socket: &mut TcpStream) -> Read {
    let mut buf = Vec::with_capacity(1024);
    let reading = async {
        let mut chunk = [0u8; 1024];
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return Read::Gone,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(end) = head_end(&buf) {
                buf.truncate(end);
                return Read::Head(std::mem::take(&mut buf));
            }
            if buf.len() > MAX_REQUEST {
                return Read::TooLarge;
            }
        }
    };
    tokio::time::timeout(READ_TIMEOUT, reading)
        .await
        .unwrap_or(Read::Gone)
}

/// Serves one connection: one request, one answer, closed.
async fn serve_one(mut socket: TcpStream, registry: Arc<Registry>) {
    let read = read_head(&mut socket).await;
    let Some(bytes) = answer(read, &registry) else {
        return;
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        socket.write_all(&bytes).await?;
        socket.shutdown().await
    })
    .await;
}

/// Answers scrapes on `listener` until `shutdown` resolves. Each connection is its own
/// task; a failed accept backs off instead of spinning.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => return,
        };
        match accepted {
            Ok((socket, _)) => {
                // Over the limit: dropped, which closes it.
                let Ok(place) = places.clone().try_acquire_owned() else {
                    continue;
                };
                let registry = registry.clone();
                tokio::spawn(async move {
                    serve_one(socket, registry).await;
                    drop(place);
                });
            }
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Kind;

    #[test]
    fn only_get_and_head_of_metrics_are_served() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        for garbage in [
            &b""[..],
            b"\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(route(garbage), Route::BadRequest, "{garbage:?}");
        }
    }

    #[test]
    fn a_head_ends_at_its_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn answers_say_their_length_and_close() {
        let r = String::from_utf8(response("200 OK", CONTENT_TYPE, b"abc", false)).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
        let head = response("200 OK", CONTENT_TYPE, b"abc", true);
        assert!(head.ends_with(b"Content-Length: 3\r\nConnection: close\r\n\r\n"));
        let r = response("405 Method Not Allowed", "text/plain", b"", false);
        assert!(String::from_utf8_lossy(&r).contains("Allow: GET, HEAD\r\n"));
    }

    /// Sends `request` (then closes its side when `close`) and reads the whole answer.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8], close: bool) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        if close {
            s.shutdown().await.expect("shutdown");
        }
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read");
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test]
    async fn serves_the_page_over_tcp_and_refuses_the_rest() {
        let registry = Registry::new();
        registry.register(Arc::new(|e: &mut crate::metrics::Exposition| {
            e.family("up_total", "Ups.", Kind::Counter)
                .sample(&[], 1u64);
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, registry, async {
            let _ = stopped.await;
        }));

        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false).await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4\r\n"),
            "{ok}"
        );
        assert!(
            ok.ends_with("\r\n\r\n# HELP up_total Ups.\n# TYPE up_total counter\nup_total 1\n")
        );

        let missing = exchange(addr, b"GET /other HTTP/1.1\r\n\r\n", false).await;
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let garbage = exchange(addr, b"\x00\x01\x02 hello\n\n", false).await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        let huge = vec![b'a'; MAX_REQUEST + 2048];
        let big = exchange(addr, &huge, false).await;
        assert!(big.starts_with("HTTP/1.1 431 "), "{big}");
        // Closed before a whole head: nothing to answer, and the server goes on.
        assert_eq!(exchange(addr, b"GET /metr", true).await, "");
        let again = exchange(addr, b"GET /metrics HTTP/1.0\n\n", false).await;
        assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");

        let _ = stop.send(());
        server.await.expect("the accept loop ends at shutdown");
    }
}
