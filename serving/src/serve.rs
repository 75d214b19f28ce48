//! The HTTP server every TempoVoice binary runs.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a client may take and how many may be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From a request's first byte to the end of its headers; a client slower than
    /// this is disconnected (so slow-header clients cannot hold connections).
    pub header_read_timeout: Duration,
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
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
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
        let service = router.clone().map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let service = TowerToHyperService::new(service.map_err(|e: Infallible| match e {}));
        let builder = Arc::clone(&builder);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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
        let started = std::time::Instant::now();
        let mut buf = [0u8; 256];
        // The server closes it (read returns 0, or the connection resets) well before
        // this test's own bound.
        let read = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf)).await.expect("dropped");
        assert!(matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"), "{read:?}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(900), "not before the timeout: {waited:?}");
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
