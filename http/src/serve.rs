//! Serving HTTP and gRPC with the limits every listener needs against stalled, idle and
//! abundant connections — the accept loop axum's `serve` does not let us configure.
//!
//! * **Connection cap**: one semaphore across all listeners; a connection beyond it is
//!   closed at once (clients reconnect) instead of holding a file descriptor, so idle
//!   connections cannot exhaust the open-file limit and starve every port.
//! * **Idle timeout**: a connection that neither reads nor writes for `idle_timeout` is
//!   closed ([`LimitedConn`]); it must exceed the query timeout, since a request being
//!   evaluated is silent too.
//! * **Header read timeout** (HTTP/1): hyper closes a connection that does not send a whole
//!   request head within it.
//! * **Body read timeout**: a request body that stalls longer than it fails the request
//!   (400) and frees the connection.
//! * **Graceful shutdown**: stop accepting, let requests in flight finish within `grace`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The limits of every listener of one server.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections across all listeners at most.
    pub permits: Arc<Semaphore>,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// Connections closed at once because the cap was reached.
    pub refused: Arc<AtomicU64>,
}

impl ConnectionLimits {
    pub fn new(
        max_connections: usize,
        idle_timeout: Duration,
        header_read_timeout: Duration,
        body_read_timeout: Duration,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            idle_timeout,
            header_read_timeout,
            body_read_timeout,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.permits.available_permits()
    }

    /// Accepts the next connection the cap allows; connections beyond it are closed.
    pub async fn accept(&self, listener: &TcpListener) -> LimitedConn {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait for descriptors to free up rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return LimitedConn::new(
                        stream,
                        permit,
                        self.header_read_timeout,
                        self.idle_timeout,
                    );
                }
                Err(_) => {
                    let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        tracing::warn!(%peer, max_connections = self.max_connections, refused = n, "connection limit reached; closing new connections");
                    }
                    drop(stream);
                }
            }
        }
    }

    /// The accepted connections of `listener` as a stream, for tonic's
    /// `serve_with_incoming_shutdown`.
    pub fn incoming(
        self,
        listener: TcpListener,
    ) -> impl futures::Stream<Item = io::Result<LimitedConn>> + Send + 'static {
        futures::stream::unfold((self, listener), |(limits, listener)| async move {
            let conn = limits.accept(&listener).await;
            Some((Ok(conn), (limits, listener)))
        })
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits up to `grace` for
/// requests in flight.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
        .service(router);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            conn = limits.accept(&listener) => conn,
            () = &mut shutdown => break,
        };
        let served = builder
            .serve_connection_with_upgrades(
                TokioIo::new(conn),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let served = graceful.watch(served);
        tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "requests still running after the shutdown grace period");
        }
    }
}

/// A connection holding its place under the cap, closed when it sends nothing within
/// `first_byte_timeout` of opening (the header read timeout: hyper's own starts only once
/// the protocol is known, which takes a first byte), or later goes `idle_timeout` without a
/// byte read or written.
pub struct LimitedConn {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    has_read: bool,
    last_active: Instant,
    /// Armed for `last_active + idle_timeout`; re-armed lazily when it fires early.
    idle: Pin<Box<Sleep>>,
}

impl LimitedConn {
    fn new(
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        first_byte_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            stream,
            _permit: permit,
            first_byte_timeout,
            idle_timeout,
            has_read: false,
            last_active: now,
            idle: Box::pin(tokio::time::sleep_until(now + first_byte_timeout)),
        }
    }

    fn allowed_silence(&self) -> Duration {
        if self.has_read {
            self.idle_timeout
        } else {
            self.first_byte_timeout
        }
    }

    /// While waiting for bytes: an error once the connection has been idle too long.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let silence = self.allowed_silence();
            let due = self.last_active + silence;
            if Instant::now() >= due {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection silent for {silence:?}"),
                ));
            }
            self.idle.as_mut().reset(due);
        }
    }
}

impl AsyncRead for LimitedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.last_active = Instant::now();
                this.has_read = true;
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for LimitedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        if r.is_ready() {
            this.last_active = Instant::now();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if r.is_ready() {
            this.last_active = Instant::now();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for LimitedConn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
