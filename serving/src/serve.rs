//! The HTTP server every TempoVoice binary runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long a client may take and how many may be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From a request's first byte to the end of its headers; a client slower than
    /// this is disconnected (so slow-header clients cannot hold connections).
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request. Longer than a load
    /// balancer's own idle timeout (an ALB's is at most 4,000 s): a target that
    /// closes a kept-alive connection first races the balancer's next request on it,
    /// which the balancer answers 502.
    pub idle_timeout: Duration,
    /// From a request's headers to its response; past it the request is answered
    /// 408. An upgraded connection (a WebSocket) is not bounded by it.
    pub request_timeout: Duration,
    /// Open connections at most; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(4_010),
            request_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and
/// waits for open connections to finish their requests (callers bound the wait).
/// Each request carries the peer's address for axum's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // hyper's own header timeout also runs while a kept-alive connection waits for
    // its next request; `ConnectionClock` times the two apart.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    let builder = Arc::new(builder.http1_only());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Real-time traffic (media frames, marks) goes out at once, not held back by
        // Nagle's algorithm for an acknowledgement.
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(ConnectionClock::new());
        let (on_request, on_response) = (Arc::clone(&clock), Arc::clone(&clock));
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                on_request.set(BUSY);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .map_response(move |response: axum::response::Response| {
                let upgraded = response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS;
                on_response.set(if upgraded { UPGRADED } else { IDLE });
                response
            });
        let service = TowerToHyperService::new(service.map_err(|e: Infallible| match e {}));
        let builder = Arc::clone(&builder);
        let io = TokioIo::new(Clocked { stream, clock: Arc::clone(&clock) });
        let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => {
                    if let Err(e) = ended {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                }
                why = clock.expired(limits) => tracing::debug!(peer = %peer, why, "connection closed"),
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

// What a connection is doing, for its clock.
const IDLE: u8 = 0;
const HEADERS: u8 = 1;
const BUSY: u8 = 2;
const UPGRADED: u8 = 3;

/// Times a connection's two waits apart: for its next request (`idle_timeout`) and,
/// from that request's first byte, for the end of its headers
/// (`header_read_timeout`). A request being answered, and an upgraded connection,
/// are not timed here (the request timeout bounds the first).
struct ConnectionClock {
    state: AtomicU8,
    /// When the state was entered, in milliseconds since `origin`.
    since_ms: AtomicU64,
    origin: Instant,
    changed: Notify,
}

impl ConnectionClock {
    fn new() -> Self {
        Self { state: AtomicU8::new(IDLE), since_ms: AtomicU64::new(0), origin: Instant::now(), changed: Notify::new() }
    }

    fn set(&self, state: u8) {
        self.since_ms.store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.state.store(state, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: a waiting connection starts reading a request.
    fn on_read(&self) {
        // A plain load first: on a busy or upgraded connection (every media frame of
        // a call) that is all a read costs.
        if self.state.load(Ordering::Relaxed) == IDLE
            && self.state.compare_exchange(IDLE, HEADERS, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.since_ms.store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// Resolves when the connection has waited too long, saying for what.
    async fn expired(&self, limits: Limits) -> &'static str {
        loop {
            let changed = self.changed.notified();
            let state = self.state.load(Ordering::Acquire);
            let since = self.origin + Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
            let (deadline, why) = match state {
                IDLE => (since + limits.idle_timeout, "idle past its timeout"),
                HEADERS => (since + limits.header_read_timeout, "request headers too slow"),
                _ => {
                    changed.await;
                    continue;
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    let unchanged = self.state.load(Ordering::Acquire) == state
                        && self.origin + Duration::from_millis(self.since_ms.load(Ordering::Relaxed)) == since;
                    if unchanged {
                        return why;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Clocked {
    stream: TcpStream,
    clock: Arc<ConnectionClock>,
}

impl AsyncRead for Clocked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.on_read();
        }
        polled
    }
}

impl AsyncWrite for Clocked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route(
                "/",
                axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            serve(listener, router, limits, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (addr, tx, task)
    }

    #[tokio::test]
    async fn a_client_that_sends_its_headers_too_slowly_is_dropped() {
        let limits = Limits { header_read_timeout: Duration::from_secs(1), ..Limits::default() };
        let (addr, stop, task) = start(limits).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        // The server closes it (read returns 0, or the connection resets) well before
        // this test's own bound.
        let read = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf)).await.expect("dropped");
        assert!(matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"), "{read:?}");
        // A prompt client is served meanwhile, and sees its own address.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = ok.local_addr().unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        ok.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with(&local.to_string()), "{answer}");
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    /// A kept-alive connection waiting for its next request is not timed as slow
    /// headers: it stays open past the header timeout, until the idle timeout.
    #[tokio::test]
    async fn a_kept_alive_connection_outlives_the_header_timeout_until_its_idle_timeout() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3),
            ..Limits::default()
        };
        let (addr, stop, task) = start(limits).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The second request comes after twice the header timeout: it is answered
        // only if waiting for it was not timed as slow headers.
        for _ in 0..2 {
            client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap().unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{:?}", &buf[..n]);
            // Twice the header timeout between requests.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf)).await.expect("closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_request_past_its_time_is_answered_408_and_connections_are_limited() {
        let limits = Limits { request_timeout: Duration::from_secs(1), max_connections: 1, ..Limits::default() };
        let (addr, stop, task) = start(limits).await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        // The one connection is taken: a second waits in the backlog, unanswered.
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await.is_err(), "waits");
        let mut answer = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), first.read(&mut answer)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"), "{:?}", &answer[..n]);
        drop(first);
        // Its connection closed, the second is served.
        let mut rest = String::new();
        tokio::time::timeout(Duration::from_secs(10), second.read_to_string(&mut rest)).await.unwrap().unwrap();
        assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
