//! End-to-end tests of the listeners over real sockets on 127.0.0.1, with real clients
//! (a tokio TCP stream, a UDP socket, util-linux `logger`) and the ingest queue's far end
//! played by the test.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use sightline_model::{LogBatch, LogRecord, LogStream};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::receiver::{SOURCE, SyslogConfig, SyslogListeners, start};
use crate::metrics::{RejectLabels, SourceLabels};
use crate::{CollectorMetrics, IngestHandle, IngestRequest};

const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    listeners: SyslogListeners,
    tcp: SocketAddr,
    udp: SocketAddr,
    requests: mpsc::Receiver<IngestRequest>,
    ingest: IngestHandle,
    metrics: CollectorMetrics,
    shutdown: watch::Sender<bool>,
}

async fn harness(queue: usize, configure: impl FnOnce(&mut SyslogConfig)) -> Harness {
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = SyslogConfig {
        tcp_addr: Some(localhost),
        udp_addr: Some(localhost),
        ..SyslogConfig::default()
    };
    configure(&mut config);
    let (ingest, requests) = IngestHandle::channel(queue);
    let metrics = CollectorMetrics::default();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let listeners = start(config, ingest.clone(), metrics.clone(), shutdown_rx)
        .await
        .unwrap();
    let (tcp, udp) = (listeners.tcp.unwrap(), listeners.udp.unwrap());
    assert_ne!(tcp.port(), 0);
    assert_ne!(udp.port(), 0);
    Harness {
        listeners,
        tcp,
        udp,
        requests,
        ingest,
        metrics,
        shutdown,
    }
}

/// Receives batches, acknowledging each, until `n` records arrived; returns the streams with
/// one record each, in arrival order.
async fn receive_records(
    requests: &mut mpsc::Receiver<IngestRequest>,
    n: usize,
) -> Vec<(LogStream, LogRecord)> {
    let mut out = Vec::new();
    while out.len() < n {
        let request = tokio::time::timeout(WAIT, requests.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} records arrived: {out:#?}", out.len()))
            .expect("ingest queue closed");
        out.extend(flatten(&request.batch));
        request.ack.send(Ok(())).unwrap();
    }
    assert_eq!(out.len(), n, "more records than expected: {out:#?}");
    out
}

fn flatten(batch: &LogBatch) -> Vec<(LogStream, LogRecord)> {
    assert_eq!(batch.tenant.as_str(), "default");
    let mut out = Vec::new();
    for stream in &batch.streams {
        // Every stream's labels are derived from its resource.
        assert_eq!(
            stream.labels,
            sightline_model::index_labels_from_resource(&stream.resource)
        );
        for record in &stream.records {
            out.push((
                LogStream {
                    records: Vec::new(),
                    ..stream.clone()
                },
                record.clone(),
            ));
        }
    }
    out
}

fn resource<'a>(stream: &'a LogStream, name: &str) -> Option<&'a str> {
    stream
        .resource
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn attribute<'a>(record: &'a LogRecord, name: &str) -> Option<&'a str> {
    record
        .attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn source_labels() -> SourceLabels {
    SourceLabels {
        signal: "logs",
        source: SOURCE,
        tenant: "default".into(),
    }
}

fn received(m: &CollectorMetrics) -> u64 {
    m.records_received.get_or_create(&source_labels()).get()
}

fn accepted(m: &CollectorMetrics) -> u64 {
    m.records_accepted.get_or_create(&source_labels()).get()
}

fn rejected(m: &CollectorMetrics, reason: &'static str) -> u64 {
    let labels = RejectLabels {
        signal: "logs",
        source: SOURCE,
        tenant: "default".into(),
        reason,
    };
    m.records_rejected.get_or_create(&labels).get()
}

/// Polls `condition` until it holds, failing the test after [`WAIT`].
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn udp_client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn tcp_and_udp_messages_arrive_as_batches_and_bad_ones_are_counted() {
    let mut h = harness(16, |_| {}).await;

    let mut tcp = TcpStream::connect(h.tcp).await.unwrap();
    let octet_counted = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] \u{FEFF}An application event";
    let mut stream = format!("{} {octet_counted}", octet_counted.len()).into_bytes();
    stream.extend_from_slice(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed\r\n");
    stream.extend_from_slice(b"no PRI here\n");
    stream.extend(std::iter::repeat_n(b'x', 1 << 20));
    stream.extend_from_slice(b"\n<13>Oct 11 22:14:16 mymachine su: after the big one\n");
    tcp.write_all(&stream).await.unwrap();

    let udp = udp_client().await;
    udp.send_to(b"<14>1 - web-1 nginx 12 - - GET /", h.udp)
        .await
        .unwrap();
    udp.send_to(b"<14 broken", h.udp).await.unwrap();

    let mut records = receive_records(&mut h.requests, 4).await;
    records.sort_by(|a, b| a.1.body.cmp(&b.1.body));
    let bodies: Vec<_> = records.iter().map(|(_, r)| r.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "'su root' failed",
            "An application event",
            "GET /",
            "after the big one"
        ]
    );

    let (stream, record) = &records[1];
    assert_eq!(resource(stream, "service.name"), Some("evntslog"));
    assert_eq!(stream.labels.get("service_name"), Some("evntslog"));
    assert_eq!(
        stream.labels.get("host_name"),
        Some("mymachine.example.com")
    );
    assert_eq!(
        attribute(record, "syslog.sd.exampleSDID@32473.eventSource"),
        Some("Application")
    );
    assert_eq!(attribute(record, "syslog.facility"), Some("local4"));
    assert_eq!(record.timestamp_ns, 1_065_910_455_003_000_000);
    assert!(record.observed_timestamp_ns > record.timestamp_ns);

    let (stream, record) = &records[2];
    assert_eq!(resource(stream, "service.name"), Some("nginx"));
    assert_eq!(resource(stream, "host.name"), Some("web-1"));
    assert_eq!(attribute(record, "syslog.procid"), Some("12"));
    assert_eq!(
        record.timestamp_ns, record.observed_timestamp_ns,
        "NILVALUE time"
    );

    let metrics = h.metrics.clone();
    eventually("accepted count", || accepted(&metrics) == 4).await;
    // 5 TCP frames and 2 datagrams; the broken datagram may be read after the batch left.
    eventually("received count", || received(&metrics) == 7).await;
    eventually("parse errors", || rejected(&metrics, "parse_error") == 2).await;
    assert_eq!(rejected(&h.metrics, "message_too_long"), 1);

    // The connection is still usable after the oversized line.
    tcp.write_all(b"<13>1 - - late - - - still here\n")
        .await
        .unwrap();
    let records = receive_records(&mut h.requests, 1).await;
    assert_eq!(records[0].1.body, "still here");

    h.shutdown.send(true).unwrap();
    tokio::time::timeout(WAIT, h.listeners.join())
        .await
        .unwrap();
}

#[tokio::test]
async fn records_of_one_read_share_a_batch_grouped_by_service_and_host() {
    let mut h = harness(16, |c| c.batch_max_delay = Duration::from_millis(200)).await;
    let mut tcp = TcpStream::connect(h.tcp).await.unwrap();
    let lines = "<13>1 - a sshd - - - 1\n<13>1 - a cron - - - 2\n\
                 <13>1 - a sshd - - - 3\n<13>1 - b sshd - - - 4\n";
    tcp.write_all(lines.as_bytes()).await.unwrap();
    let request = tokio::time::timeout(WAIT, h.requests.recv())
        .await
        .unwrap()
        .unwrap();
    let batch = request.batch.clone();
    request.ack.send(Ok(())).unwrap();
    let summary: Vec<(Option<&str>, Option<&str>, Vec<&str>)> = batch
        .streams
        .iter()
        .map(|s| {
            let bodies = s.records.iter().map(|r| r.body.as_str()).collect();
            (
                s.labels.get("service_name"),
                s.labels.get("host_name"),
                bodies,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("sshd"), Some("a"), vec!["1", "3"]),
            (Some("cron"), Some("a"), vec!["2"]),
            (Some("sshd"), Some("b"), vec!["4"]),
        ]
    );
}

#[tokio::test]
async fn batches_flush_at_the_record_limit_without_waiting_for_the_delay() {
    let mut h = harness(16, |c| {
        c.batch_max_records = 2;
        c.batch_max_delay = Duration::from_secs(3600);
    })
    .await;
    let udp = udp_client().await;
    for i in 0..4 {
        udp.send_to(format!("<13>1 - h app - - - m{i}").as_bytes(), h.udp)
            .await
            .unwrap();
    }
    let records = receive_records(&mut h.requests, 4).await;
    assert_eq!(records.len(), 4);
}

#[tokio::test]
async fn tcp_retries_on_overload_until_the_batch_is_accepted() {
    // A queue of one, filled by someone else: the syslog batch is refused as overloaded.
    let mut h = harness(1, |_| {}).await;
    let filler = tokio::spawn({
        let ingest = h.ingest.clone();
        async move { ingest.ingest(LogBatch::default()).await }
    });
    eventually("queue full", || h.requests.len() == 1).await;

    let mut tcp = TcpStream::connect(h.tcp).await.unwrap();
    tcp.write_all(b"<13>1 - h app - - - kept despite overload\n")
        .await
        .unwrap();
    let metrics = h.metrics.clone();
    eventually("message read", || received(&metrics) == 1).await;
    // Several retry rounds pass while the queue stays full.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let filled = h.requests.recv().await.unwrap();
    assert_eq!(filled.batch.record_count(), 0);
    filled.ack.send(Ok(())).unwrap();
    filler.await.unwrap().unwrap();

    let records = receive_records(&mut h.requests, 1).await;
    assert_eq!(records[0].1.body, "kept despite overload");
    eventually("accepted count", || accepted(&metrics) == 1).await;
    assert_eq!(rejected(&h.metrics, "overloaded"), 0);
}

#[tokio::test]
async fn udp_drops_and_counts_batches_when_overloaded() {
    let mut h = harness(1, |_| {}).await;
    let filler = tokio::spawn({
        let ingest = h.ingest.clone();
        async move { ingest.ingest(LogBatch::default()).await }
    });
    eventually("queue full", || h.requests.len() == 1).await;

    let udp = udp_client().await;
    udp.send_to(b"<13>1 - h app - - - dropped", h.udp)
        .await
        .unwrap();
    let metrics = h.metrics.clone();
    eventually("overload counted", || rejected(&metrics, "overloaded") == 1).await;

    let filled = h.requests.recv().await.unwrap();
    filled.ack.send(Ok(())).unwrap();
    filler.await.unwrap().unwrap();
    udp.send_to(b"<13>1 - h app - - - delivered", h.udp)
        .await
        .unwrap();
    let records = receive_records(&mut h.requests, 1).await;
    assert_eq!(records[0].1.body, "delivered");
    assert_eq!(received(&h.metrics), 2);
}

#[tokio::test]
async fn shutdown_flushes_pending_batches_and_stops_listening() {
    let mut h = harness(16, |c| c.batch_max_delay = Duration::from_secs(3600)).await;
    let mut tcp = TcpStream::connect(h.tcp).await.unwrap();
    tcp.write_all(b"<13>1 - h app - - - over tcp\n")
        .await
        .unwrap();
    let udp = udp_client().await;
    udp.send_to(b"<13>1 - h app - - - over udp", h.udp)
        .await
        .unwrap();
    let metrics = h.metrics.clone();
    eventually("both read", || received(&metrics) == 2).await;
    assert!(h.requests.is_empty(), "nothing flushed before the delay");

    h.shutdown.send(true).unwrap();
    let mut records = receive_records(&mut h.requests, 2).await;
    records.sort_by(|a, b| a.1.body.cmp(&b.1.body));
    assert_eq!(records[0].1.body, "over tcp");
    assert_eq!(records[1].1.body, "over udp");
    tokio::time::timeout(WAIT, h.listeners.join())
        .await
        .expect("listeners end after shutdown");
    assert!(
        TcpStream::connect(h.tcp).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn real_logger_over_tcp_and_udp() {
    let logger = Path::new("/usr/bin/logger");
    if !logger.exists() {
        println!("skipping: /usr/bin/logger (util-linux) is not installed");
        return;
    }
    let mut h = harness(16, |_| {}).await;
    let runs: [(&[&str], u16, &str, &str); 4] = [
        (
            &["--rfc5424", "--tcp", "--octet-count", "-p", "local0.err"],
            h.tcp.port(),
            "sl-tcp-octets",
            "hello over tcp with octet counting",
        ),
        (
            &["--rfc5424", "--tcp", "-p", "user.notice"],
            h.tcp.port(),
            "sl-tcp-lf",
            "hello over tcp with newlines",
        ),
        (
            &["--rfc5424", "--udp", "-p", "daemon.info"],
            h.udp.port(),
            "sl-udp-5424",
            "hello over udp in rfc 5424",
        ),
        (
            &["--rfc3164", "--udp", "-p", "auth.warning"],
            h.udp.port(),
            "sl-udp-3164",
            "hello over udp in rfc 3164",
        ),
    ];
    for (args, port, tag, text) in runs {
        let status = tokio::process::Command::new(logger)
            .args(args)
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--tag",
                tag,
                text,
            ])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "logger {args:?} failed: {status}");
    }
    let records = receive_records(&mut h.requests, 4).await;
    let find = |tag: &str| {
        records
            .iter()
            .find(|(s, _)| resource(s, "service.name") == Some(tag))
            .unwrap_or_else(|| panic!("no record from {tag}: {records:#?}"))
    };
    let expect = [
        (
            "sl-tcp-octets",
            "hello over tcp with octet counting",
            "local0",
            17,
        ),
        ("sl-tcp-lf", "hello over tcp with newlines", "user", 10),
        ("sl-udp-5424", "hello over udp in rfc 5424", "daemon", 9),
        ("sl-udp-3164", "hello over udp in rfc 3164", "auth", 13),
    ];
    for (tag, text, facility, severity_number) in expect {
        let (stream, record) = find(tag);
        assert_eq!(record.body, text, "{tag}");
        assert_eq!(stream.labels.get("service_name"), Some(tag));
        assert!(
            resource(stream, "host.name").is_some_and(|h| !h.is_empty()),
            "{tag}: {stream:?}"
        );
        assert_eq!(
            attribute(record, "syslog.facility"),
            Some(facility),
            "{tag}"
        );
        assert_eq!(record.severity_number, severity_number, "{tag}");
        // logger stamps the current time. RFC 3164 carries no zone and is read as UTC, so
        // allow for the machine's zone there.
        let tolerance_s = if tag.contains("3164") { 15 * 3600 } else { 60 };
        let skew = (record.timestamp_ns - record.observed_timestamp_ns).abs();
        assert!(
            skew < tolerance_s * 1_000_000_000,
            "{tag}: timestamp off by {skew} ns"
        );
        if tag.contains("5424") || tag.starts_with("sl-tcp") {
            assert_eq!(attribute(record, "syslog.version"), Some("1"), "{tag}");
            assert_eq!(
                attribute(record, "syslog.sd.timeQuality.tzKnown"),
                Some("1"),
                "{tag}"
            );
        }
    }
    assert_eq!(rejected(&h.metrics, "parse_error"), 0);
}
