//! The syslog listeners: a TCP acceptor with one task per connection, and a UDP socket.
//!
//! Both decode and parse messages, batch the records (per stream) and hand each batch to
//! the [`IngestHandle`], flushing when a batch reaches `batch_max_records` or
//! `batch_max_bytes`, or when its oldest record is `batch_max_delay` old.
//!
//! Syslog has no acknowledgement, so overload is handled per transport:
//! - TCP applies backpressure: on [`IngestError::Overloaded`] the connection retries with
//!   exponential backoff and does not read its socket meanwhile, so the sender's buffer fills
//!   and the sender slows down or buffers on its side (rsyslog, syslog-ng do).
//! - UDP cannot push back: the receive loop never waits for the WAL (a small queue of batches
//!   decouples it from a flusher task), and a batch that finds the queue or the WAL full is
//!   dropped and counted as rejected with reason `overloaded`.
//!
//! Every message is counted as received; those that cannot be used are counted as rejected
//! (`parse_error`, `message_too_long`, `truncated_frame`, `overloaded`, `shutting_down`,
//! `storage_error`) and logged at most once per second per listener.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use sightline_model::{LogBatch, TenantId};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::batch::Batcher;
use super::framing::{DEFAULT_MAX_MESSAGE_BYTES, Frame, FrameDecoder};
use super::parser::{SyslogError, parse};
use crate::{CollectorMetrics, IngestError, IngestHandle};

/// The `source` label of this receiver's metrics.
pub const SOURCE: &str = "syslog";

/// Bytes requested from a TCP socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Largest UDP payload (65535 minus the 8-byte UDP header; IPv4 allows 20 bytes less).
const MAX_DATAGRAM: usize = 65_535 - 8;
/// Datagrams read per wake-up of the UDP loop before counters are updated.
const UDP_BURST: u64 = 256;
/// Batches a UDP listener may have waiting for the WAL before it drops new ones.
const UDP_FLUSH_QUEUE: usize = 4;
/// TCP retry backoff on overload: first and longest wait.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(10);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Overload retries still attempted for a batch once shutdown has begun.
const RETRIES_AFTER_SHUTDOWN: u32 = 10;
/// At most one warning per this interval per listener; the rest are counted as suppressed.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how to listen for syslog; `[syslog]` in the server's TOML reads `tenant`,
/// `max_message_bytes` and `max_tcp_connections` (the server sets the addresses from its
/// `[server] syslog_addr`, with every other listen address; batching is not configurable).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// TCP listen address (RFC 6587); `None` disables TCP. Port 0 picks a free port.
    #[serde(skip)]
    pub tcp_addr: Option<SocketAddr>,
    /// UDP listen address (RFC 5426); `None` disables UDP. Port 0 picks a free port.
    #[serde(skip)]
    pub udp_addr: Option<SocketAddr>,
    /// The tenant every record received on these listeners belongs to (syslog cannot name one).
    #[serde(rename = "tenant")]
    pub default_tenant: TenantId,
    /// Longest message accepted, in bytes without framing; longer ones are skipped and
    /// counted as rejected (`message_too_long`).
    pub max_message_bytes: usize,
    /// A batch is flushed when it holds this many records...
    #[serde(skip)]
    pub batch_max_records: usize,
    /// ...or this many bytes of bodies and attributes...
    #[serde(skip)]
    pub batch_max_bytes: usize,
    /// ...or when its oldest record has waited this long.
    #[serde(skip)]
    pub batch_max_delay: Duration,
    /// Concurrent TCP connections; further clients wait in the kernel's accept backlog.
    pub max_tcp_connections: usize,
}

impl Default for SyslogConfig {
    /// Both transports on `127.0.0.1:5514` (the design's default), tenant `default`, 64 KiB
    /// messages, batches of 1000 records / 1 MiB / 10 ms, 1024 TCP connections.
    fn default() -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 5514));
        Self {
            tcp_addr: Some(addr),
            udp_addr: Some(addr),
            default_tenant: TenantId::default_tenant(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            batch_max_records: 1000,
            batch_max_bytes: 1 << 20,
            batch_max_delay: Duration::from_millis(10),
            max_tcp_connections: 1024,
        }
    }
}

/// The running listeners: their bound addresses, and the tasks to wait for after shutdown.
#[derive(Debug)]
pub struct SyslogListeners {
    /// The bound TCP address (with the real port when configured with port 0).
    pub tcp: Option<SocketAddr>,
    /// The bound UDP address (with the real port when configured with port 0).
    pub udp: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl SyslogListeners {
    /// Waits until every listener and connection task has finished, i.e. until shutdown was
    /// signalled and all pending batches were flushed.
    pub async fn join(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "syslog listener task failed");
            }
        }
    }
}

/// Binds the configured sockets, then spawns their receive loops and returns the bound
/// addresses.
///
/// Binding happens before this returns, so a port conflict is reported here and port 0 can be
/// resolved from the result. The listeners run until `shutdown` becomes `true` (or its sender
/// is dropped): they stop accepting, flush what they hold and end; await
/// [`SyslogListeners::join`] to know when.
pub async fn start(
    config: SyslogConfig,
    ingest: IngestHandle,
    metrics: CollectorMetrics,
    shutdown: watch::Receiver<bool>,
) -> io::Result<SyslogListeners> {
    for (name, value) in [
        ("max_message_bytes", config.max_message_bytes),
        ("batch_max_records", config.batch_max_records),
        ("batch_max_bytes", config.batch_max_bytes),
        ("max_tcp_connections", config.max_tcp_connections),
    ] {
        if value == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("syslog config: {name} must be at least 1"),
            ));
        }
    }
    let tcp = match config.tcp_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error("tcp", addr, e))?,
        ),
        None => None,
    };
    let udp = match config.udp_addr {
        Some(addr) => Some(
            UdpSocket::bind(addr)
                .await
                .map_err(|e| bind_error("udp", addr, e))?,
        ),
        None => None,
    };
    let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
    let udp_addr = udp.as_ref().map(UdpSocket::local_addr).transpose()?;

    let config = Arc::new(config);
    let mut tasks = Vec::new();
    if let Some(listener) = tcp {
        let shared = Arc::new(Shared::new(
            "tcp",
            config.clone(),
            ingest.clone(),
            metrics.clone(),
        ));
        tasks.push(tokio::spawn(tcp_accept_loop(
            listener,
            shared,
            shutdown.clone(),
        )));
    }
    if let Some(socket) = udp {
        let shared = Arc::new(Shared::new("udp", config.clone(), ingest, metrics));
        tasks.push(tokio::spawn(udp_receive_loop(socket, shared, shutdown)));
    }
    Ok(SyslogListeners {
        tcp: tcp_addr,
        udp: udp_addr,
        tasks,
    })
}

fn bind_error(transport: &str, addr: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot bind syslog {transport} listener on {addr}: {e}"),
    )
}

/// What every task of one listener shares.
struct Shared {
    transport: &'static str,
    config: Arc<SyslogConfig>,
    ingest: IngestHandle,
    metrics: CollectorMetrics,
    warnings: Mutex<WarnLimiter>,
}

impl Shared {
    fn new(
        transport: &'static str,
        config: Arc<SyslogConfig>,
        ingest: IngestHandle,
        metrics: CollectorMetrics,
    ) -> Self {
        Self {
            transport,
            config,
            ingest,
            metrics,
            warnings: Mutex::new(WarnLimiter::default()),
        }
    }

    fn tenant(&self) -> &str {
        self.config.default_tenant.as_str()
    }

    fn batcher(&self) -> Batcher {
        Batcher::new(
            self.config.default_tenant.clone(),
            self.config.batch_max_records,
            self.config.batch_max_bytes,
            self.config.batch_max_delay,
        )
    }

    fn reject(&self, reason: &'static str, records: u64) {
        self.metrics
            .rejected(SOURCE, self.tenant(), reason, records);
    }

    /// Counts and (rate-limited) logs a message that cannot be used.
    fn reject_message(&self, peer: SocketAddr, error: &SyslogError) {
        self.reject(error.reason(), 1);
        let allowed = self
            .warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .allow(std::time::Instant::now());
        if let Some(suppressed) = allowed {
            tracing::warn!(
                transport = self.transport,
                %peer,
                %error,
                suppressed,
                "dropping syslog message"
            );
        }
    }

    /// Parses one message into `batcher`, or counts why it cannot be.
    fn accept_message(&self, peer: SocketAddr, message: &[u8], now_ns: i64, batcher: &mut Batcher) {
        match parse(message, now_ns) {
            Ok(parsed) => {
                let (resource, record) = parsed.into_resource_and_record(now_ns);
                batcher.push(resource, record);
            }
            Err(error) => self.reject_message(peer, &error),
        }
    }
}

/// "At most one log line per interval", remembering how many were held back.
#[derive(Debug, Default)]
struct WarnLimiter {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    /// `Some(number suppressed since the last one)` when a warning may be logged now.
    fn allow(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < WARN_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Resolves once shutdown is requested; a dropped sender counts as a request, so listeners
/// never outlive the server that started them.
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn is_shutting_down(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The wall clock in Unix nanoseconds: the observed time of records received now.
fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

async fn tcp_accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_tcp_connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; nothing sensible left to do if it were
            },
        };
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    let task = serve_connection(stream, peer, shared, shutdown.clone(), permit);
                    connections.spawn(task);
                }
                Err(error) => {
                    // Usually EMFILE or a connection reset before accept: not fatal, but do
                    // not spin on it.
                    tracing::warn!(transport = "tcp", %error, "syslog accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut decoder = FrameDecoder::new(shared.config.max_message_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut batcher = shared.batcher();
    let mut eof = false;
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            () = sleep_until(batcher.deadline()) => {
                flush_with_backpressure(&shared, &mut batcher, &shutdown).await;
            }
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {
                    decode_frames(&shared, peer, &mut decoder, &mut buf, &mut batcher, false);
                    if batcher.is_full() {
                        flush_with_backpressure(&shared, &mut batcher, &shutdown).await;
                    }
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "syslog tcp connection failed");
                    break;
                }
            },
        }
    }
    // Frames already read are not lost on shutdown; a partial frame is (the sender cannot
    // know which of its bytes we read, so it cannot be "at least once" either way).
    decode_frames(&shared, peer, &mut decoder, &mut buf, &mut batcher, eof);
    flush_with_backpressure(&shared, &mut batcher, &shutdown).await;
}

/// Takes every complete frame out of `buf` into `batcher`; with `eof`, also the final
/// unterminated one. Counts everything as received. The batch may grow past its limit by
/// what one read holds (at most `READ_CHUNK` bytes of frames); the caller flushes after.
fn decode_frames(
    shared: &Shared,
    peer: SocketAddr,
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    batcher: &mut Batcher,
    eof: bool,
) {
    let now_ns = unix_now_ns();
    let (mut records, mut bytes) = (0u64, 0u64);
    loop {
        let frame = if eof {
            decoder.decode_eof(buf)
        } else {
            decoder.decode(buf)
        };
        let Some(frame) = frame else { break };
        records += 1;
        match frame {
            Frame::Message(message) => {
                bytes += message.len() as u64;
                shared.accept_message(peer, &message, now_ns, batcher);
            }
            Frame::Rejected(error) => {
                if let SyslogError::MessageTooLong { len, .. }
                | SyslogError::UnterminatedMessageTooLong { len, .. } = error
                {
                    bytes += len as u64;
                }
                shared.reject_message(peer, &error);
            }
        }
    }
    if records > 0 {
        shared
            .metrics
            .received(SOURCE, shared.tenant(), records, bytes);
    }
}

/// Hands the pending batch to the WAL, retrying on overload with exponential backoff. The
/// caller does not read its socket meanwhile: that is the TCP backpressure. Once shutdown
/// has begun, retries are limited and what still does not fit is dropped and counted.
async fn flush_with_backpressure(
    shared: &Shared,
    batcher: &mut Batcher,
    shutdown: &watch::Receiver<bool>,
) {
    let Some(batch) = batcher.take() else { return };
    let records = batch.record_count() as u64;
    let mut backoff = RETRY_BACKOFF_MIN;
    let mut retries_after_shutdown = 0;
    loop {
        // `ingest` consumes the batch and does not give it back on overload: keep a copy.
        match shared.ingest.ingest(batch.clone()).await {
            Ok(()) => {
                shared.metrics.accepted(SOURCE, shared.tenant(), records);
                return;
            }
            Err(IngestError::Overloaded) => {
                if is_shutting_down(shutdown) {
                    retries_after_shutdown += 1;
                    if retries_after_shutdown > RETRIES_AFTER_SHUTDOWN {
                        tracing::error!(
                            transport = "tcp",
                            records,
                            "ingest queue still full at shutdown, dropping syslog batch"
                        );
                        shared.reject("overloaded", records);
                        return;
                    }
                    backoff = backoff.min(RETRY_BACKOFF_MIN * 5);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            }
            Err(error) => {
                report_ingest_failure(shared, &error, records);
                return;
            }
        }
    }
}

/// Counts and logs a batch the ingest path refused for good.
fn report_ingest_failure(shared: &Shared, error: &IngestError, records: u64) {
    let reason = match error {
        IngestError::Overloaded => "overloaded",
        IngestError::ShuttingDown => "shutting_down",
        IngestError::Storage(_) => "storage_error",
    };
    shared.reject(reason, records);
    match error {
        IngestError::Overloaded => {
            let allowed = shared
                .warnings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .allow(std::time::Instant::now());
            if let Some(suppressed) = allowed {
                tracing::warn!(
                    transport = shared.transport,
                    records,
                    suppressed,
                    "ingest queue full, dropping syslog batch"
                );
            }
        }
        // Data loss an operator must know about.
        _ => {
            let transport = shared.transport;
            tracing::error!(transport, records, %error, "syslog batch not written");
        }
    }
}

async fn udp_receive_loop(
    socket: UdpSocket,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (queue, pending) = mpsc::channel(UDP_FLUSH_QUEUE);
    let flusher = tokio::spawn(udp_flush_loop(pending, shared.clone()));
    let mut datagram = vec![0u8; MAX_DATAGRAM + 1];
    let mut batcher = shared.batcher();
    loop {
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            () = sleep_until(batcher.deadline()) => {
                enqueue_udp_batch(&shared, &mut batcher, &queue);
            }
            received = socket.recv_from(&mut datagram) => match received {
                Ok((len, peer)) => {
                    let mut bytes = len as u64;
                    let mut datagrams = 1;
                    handle_datagram(&shared, &datagram[..len], peer, &mut batcher, &queue);
                    // Drain what the kernel already holds before counting, so the counters
                    // are touched once per burst rather than once per datagram.
                    while datagrams < UDP_BURST {
                        let Ok((len, peer)) = socket.try_recv_from(&mut datagram) else { break };
                        handle_datagram(&shared, &datagram[..len], peer, &mut batcher, &queue);
                        bytes += len as u64;
                        datagrams += 1;
                    }
                    shared.metrics.received(SOURCE, shared.tenant(), datagrams, bytes);
                }
                Err(error) => {
                    // E.g. ICMP port unreachable reported on some platforms: not fatal.
                    tracing::debug!(%error, "syslog udp receive failed");
                }
            },
        }
    }
    enqueue_udp_batch(&shared, &mut batcher, &queue);
    drop(queue);
    if let Err(e) = flusher.await {
        tracing::error!(error = %e, "syslog udp flusher failed");
    }
}

/// One datagram into `batcher` (RFC 5426 §3.1: one message per datagram, no framing),
/// queueing the batch when it is full.
fn handle_datagram(
    shared: &Shared,
    datagram: &[u8],
    peer: SocketAddr,
    batcher: &mut Batcher,
    queue: &mpsc::Sender<LogBatch>,
) {
    let limit = shared.config.max_message_bytes;
    if datagram.len() > limit {
        shared.reject_message(
            peer,
            &SyslogError::MessageTooLong {
                len: datagram.len(),
                limit,
            },
        );
    } else {
        shared.accept_message(peer, datagram, unix_now_ns(), batcher);
    }
    if batcher.is_full() {
        enqueue_udp_batch(shared, batcher, queue);
    }
}

/// Queues the pending UDP batch for the flusher; drops and counts it when the queue is full.
fn enqueue_udp_batch(shared: &Shared, batcher: &mut Batcher, queue: &mpsc::Sender<LogBatch>) {
    let Some(batch) = batcher.take() else { return };
    let records = batch.record_count() as u64;
    if queue.try_send(batch).is_err() {
        report_ingest_failure(shared, &IngestError::Overloaded, records);
    }
}

/// Hands batches to the ingest queue as they come. Nobody waits on a datagram's
/// acknowledgement, so batches are not held back one fsync at a time (which, on a loaded
/// machine, let the small queue in front overflow and dropped datagrams); the ingest queue
/// stays the bound on what is in flight.
async fn udp_flush_loop(mut pending: mpsc::Receiver<LogBatch>, shared: Arc<Shared>) {
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(batch) = pending.recv().await {
        let shared = shared.clone();
        in_flight.spawn(async move {
            let records = batch.record_count() as u64;
            match shared.ingest.ingest(batch).await {
                Ok(()) => shared.metrics.accepted(SOURCE, shared.tenant(), records),
                Err(error) => report_ingest_failure(&shared, &error, records),
            }
        });
        // Reap finished acknowledgements so the set does not grow.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_limited_to_one_per_second_with_a_suppressed_count() {
        let mut limiter = WarnLimiter::default();
        let t0 = std::time::Instant::now();
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0 + Duration::from_millis(10)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_millis(999)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(limiter.allow(t0 + Duration::from_millis(1001)), None);
    }

    #[test]
    fn default_config_matches_the_design() {
        let config = SyslogConfig::default();
        assert_eq!(
            config.tcp_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 5514)))
        );
        assert_eq!(config.max_message_bytes, 65_536);
    }
}
