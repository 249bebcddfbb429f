//! A deterministic generator of realistic application logs for the ingest benchmark.
//!
//! The estate is the reference one from the design: finance-cloud microservices (budget
//! preparation, approval, treasury payment, accounting, …) on a few pods each, in `prod` and
//! `staging`. Service volumes, message templates, endpoints, user ids and SQL tables follow
//! Zipf distributions, as real traffic does: a few chatty services and templates dominate, a
//! long tail is rare. Each service writes either JSON lines or plain logfmt-style lines,
//! 100–400 bytes, with request ids, trace ids, latencies and sizes as variables.
//!
//! The same seed and byte budget give the same records bit for bit, so the raw file the
//! brute-force peer scans and the stream the load generator sends are identical without
//! storing per-line metadata. Timestamps advance with the bytes produced, spread evenly over
//! the simulated span.
//!
//! One token, [`RARE_ORDER_ID`], is planted in exactly [`RARE_ORDER_COUNT`] lines spread over
//! the whole span: the benchmark's rare-term query looks for it (every other order id is
//! drawn from 10^10 values, so it is as rare as any real order number).

use std::fmt::Write as _;

use crate::rng::{Rng, Zipf};

/// The planted rare order id.
pub const RARE_ORDER_ID: &str = "ord-0004242424";
/// How many lines carry [`RARE_ORDER_ID`].
pub const RARE_ORDER_COUNT: u64 = 8;

/// Services of the estate, most chatty first (volume follows a Zipf law over this order).
pub const SERVICES: &[&str] = &[
    "api-gateway",
    "budget-preparation",
    "treasury-payment",
    "auth-service",
    "accounting-ledger",
    "budget-approval",
    "indicator-management",
    "user-center",
    "report-engine",
    "notification",
    "file-storage",
    "audit-trail",
    "payroll",
    "tax-gateway",
    "bank-connector",
    "workflow-engine",
    "search-service",
    "config-center",
    "scheduler",
    "data-sync",
    "asset-registry",
    "procurement",
    "contract-service",
    "invoice-service",
    "cache-proxy",
    "message-relay",
    "district-portal",
    "analytics-etl",
    "identity-bridge",
    "ocr-service",
    "pdf-renderer",
    "archive-service",
    "quota-service",
    "health-checker",
    "license-service",
    "geo-service",
    "billing-export",
    "sso-adapter",
    "dictionary-service",
    "statistics-api",
];

/// Pods per service (stream cardinality: services × pods × environments).
pub const PODS_PER_SERVICE: usize = 3;

const ENDPOINTS: &[&str] = &[
    "/api/v1/budgets",
    "/api/v1/budgets/{id}",
    "/api/v1/payments",
    "/api/v1/payments/{id}/status",
    "/api/v1/indicators",
    "/api/v1/indicators/{id}",
    "/api/v1/approvals/pending",
    "/api/v1/users/{id}",
    "/api/v1/reports/{id}/export",
    "/api/v1/ledger/entries",
    "/api/v1/districts/{id}/summary",
    "/api/v1/contracts/{id}",
    "/api/v1/invoices",
    "/api/v1/files/{id}",
    "/api/v1/login",
    "/api/v1/token/refresh",
    "/healthz",
    "/metrics",
];

const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "GET", "PUT", "GET", "DELETE"];

const TABLES: &[&str] = &[
    "budget_item",
    "payment_order",
    "ledger_entry",
    "indicator",
    "approval_task",
    "user_account",
    "district",
    "contract",
    "invoice",
    "audit_event",
];

const DOWNSTREAMS: &[&str] = &[
    "postgres-main:5432",
    "redis-cache:6379",
    "treasury-payment:8080",
    "bank-connector:8443",
    "auth-service:8080",
    "tax-gateway:9090",
];

const DECLINE_REASONS: &[&str] = &[
    "insufficient_quota",
    "account_frozen",
    "limit_exceeded",
    "duplicate_request",
    "signature_invalid",
];

/// Message kinds, most frequent first; each has a severity.
#[derive(Debug, Clone, Copy)]
enum Kind {
    HttpAccess,
    SqlQuery,
    CacheHit,
    CacheMiss,
    AuthOk,
    BudgetSaved,
    ApprovalStep,
    JobProgress,
    PaymentSubmitted,
    RetryScheduled,
    SlowQuery,
    PaymentDeclined,
    Timeout,
    PoolExhausted,
    Exception,
}

const KINDS: &[Kind] = &[
    Kind::HttpAccess,
    Kind::SqlQuery,
    Kind::CacheHit,
    Kind::AuthOk,
    Kind::CacheMiss,
    Kind::BudgetSaved,
    Kind::ApprovalStep,
    Kind::JobProgress,
    Kind::PaymentSubmitted,
    Kind::RetryScheduled,
    Kind::SlowQuery,
    Kind::PaymentDeclined,
    Kind::Timeout,
    Kind::PoolExhausted,
    Kind::Exception,
];

/// OpenTelemetry severity: (number, text).
fn severity(kind: Kind) -> (i32, &'static str) {
    match kind {
        Kind::SqlQuery | Kind::CacheHit | Kind::CacheMiss => (5, "DEBUG"),
        Kind::RetryScheduled | Kind::SlowQuery | Kind::PaymentDeclined => (13, "WARN"),
        Kind::Timeout | Kind::PoolExhausted | Kind::Exception => (17, "ERROR"),
        _ => (9, "INFO"),
    }
}

/// One generated log record.
#[derive(Debug, Clone)]
pub struct Record {
    pub timestamp_ns: u64,
    pub service: usize,
    pub pod: usize,
    pub prod: bool,
    pub severity_number: i32,
    pub severity_text: &'static str,
    /// 16-byte trace id for lines written inside a traced request.
    pub trace_id: Option<[u8; 16]>,
    /// The line exactly as the application wrote it (no newline).
    pub line: String,
}

impl Record {
    pub fn service_name(&self) -> &'static str {
        SERVICES[self.service]
    }

    pub fn pod_name(&self) -> String {
        pod_name(self.service, self.pod)
    }

    pub fn environment(&self) -> &'static str {
        environment(self.prod)
    }
}

/// The pod name of a service's pod, e.g. `treasury-payment-5f7c9-1`.
pub fn pod_name(service: usize, pod: usize) -> String {
    format!(
        "{}-{:05x}-{}",
        SERVICES[service],
        (service as u32).wrapping_mul(2_654_435_761) & 0xfffff,
        pod
    )
}

pub fn environment(prod: bool) -> &'static str {
    if prod { "prod" } else { "staging" }
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub seed: u64,
    /// Stop once at least this many bytes (lines plus newlines) have been produced.
    pub total_bytes: u64,
    /// First timestamp, Unix ns.
    pub start_ns: u64,
    /// Simulated time covered by `total_bytes`.
    pub span_ns: u64,
}

/// Iterator over the records of one configuration.
#[derive(Debug)]
pub struct LogGenerator {
    config: GenConfig,
    rng: Rng,
    service_zipf: Zipf,
    kind_zipf: Zipf,
    endpoint_zipf: Zipf,
    table_zipf: Zipf,
    user_zipf: Zipf,
    json_services: Vec<bool>,
    produced_bytes: u64,
    next_rare: u64,
    rare_planted: u64,
}

impl LogGenerator {
    pub fn new(config: GenConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        // About a third of the services log JSON, the rest plain text.
        let json_services = (0..SERVICES.len()).map(|_| rng.chance(0.35)).collect();
        let next_rare = config.total_bytes / (RARE_ORDER_COUNT + 1);
        Self {
            service_zipf: Zipf::new(SERVICES.len(), 1.0),
            kind_zipf: Zipf::new(KINDS.len(), 1.2),
            endpoint_zipf: Zipf::new(ENDPOINTS.len(), 1.1),
            table_zipf: Zipf::new(TABLES.len(), 1.0),
            user_zipf: Zipf::new(80_000, 0.9),
            json_services,
            produced_bytes: 0,
            next_rare,
            rare_planted: 0,
            config,
            rng,
        }
    }

    /// Bytes produced so far (lines plus one newline each).
    pub fn produced_bytes(&self) -> u64 {
        self.produced_bytes
    }

    fn hex(&mut self, out: &mut String, digits: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut left = digits;
        while left > 0 {
            let mut v = self.rng.next_u64();
            for _ in 0..left.min(16) {
                out.push(HEX[(v & 15) as usize] as char);
                v >>= 4;
            }
            left = left.saturating_sub(16);
        }
    }

    fn endpoint(&mut self, out: &mut String) {
        let e = ENDPOINTS[self.endpoint_zipf.sample(&mut self.rng)];
        match e.split_once("{id}") {
            Some((a, b)) => {
                let id = self.rng.below(100_000);
                let _ = write!(out, "{a}{id}{b}");
            }
            None => out.push_str(e),
        }
    }

    fn order_id(&mut self, plant: bool) -> String {
        if plant {
            RARE_ORDER_ID.to_string()
        } else {
            format!("ord-{:010}", self.rng.below(10_000_000_000))
        }
    }

    /// The message part of a line: the kind's template with its variables filled.
    fn message(&mut self, kind: Kind, plant: bool) -> String {
        let mut m = String::with_capacity(256);
        let user = self.user_zipf.sample(&mut self.rng);
        match kind {
            Kind::HttpAccess => {
                let method = *self.rng.pick(METHODS);
                let _ = write!(m, "{method} ");
                self.endpoint(&mut m);
                let status = match self.rng.below(100) {
                    0..=89 => 200,
                    90..=93 => 201,
                    94..=95 => 304,
                    96 => 400,
                    97 => 404,
                    98 => 500,
                    _ => 503,
                };
                let ms = self.rng.range(1, 40) * self.rng.range(1, 25);
                let bytes = self.rng.range(80, 48_000);
                let _ = write!(
                    m,
                    " status={status} duration={ms}ms bytes={bytes} user=u{user:05} client=10.{}.{}.{}",
                    self.rng.below(8),
                    self.rng.below(256),
                    self.rng.below(256)
                );
            }
            Kind::SqlQuery => {
                let t = TABLES[self.table_zipf.sample(&mut self.rng)];
                let _ = write!(
                    m,
                    "sql select * from {t} where district_id = {} and fiscal_year = 2026 rows={} elapsed={}ms",
                    self.rng.below(150),
                    self.rng.below(500),
                    self.rng.range(1, 30)
                );
            }
            Kind::CacheHit | Kind::CacheMiss => {
                let what = if matches!(kind, Kind::CacheHit) {
                    "cache hit"
                } else {
                    "cache miss"
                };
                let t = TABLES[self.table_zipf.sample(&mut self.rng)];
                let _ = write!(
                    m,
                    "{what} key={t}:{} ttl={}s",
                    self.rng.below(100_000),
                    60 * self.rng.range(1, 30)
                );
            }
            Kind::AuthOk => {
                let _ = write!(
                    m,
                    "token validated for user u{user:05} scope=finance.read,finance.write expires_in={}s session=",
                    self.rng.range(60, 3600)
                );
                self.hex(&mut m, 24);
            }
            Kind::BudgetSaved => {
                let _ = write!(
                    m,
                    "budget item saved district={} item={} amount={}.{:02} version={} by u{user:05}",
                    self.rng.below(150),
                    self.rng.below(1_000_000),
                    self.rng.below(10_000_000),
                    self.rng.below(100),
                    self.rng.range(1, 12)
                );
            }
            Kind::ApprovalStep => {
                let step = *self
                    .rng
                    .pick(&["submitted", "reviewed", "approved", "returned"]);
                let _ = write!(
                    m,
                    "approval task {} {step} by u{user:05} level={} pending={}",
                    self.rng.below(10_000_000),
                    self.rng.range(1, 4),
                    self.rng.below(40)
                );
            }
            Kind::JobProgress => {
                let _ = write!(
                    m,
                    "batch job reconcile-{} progress {}/{} rate={}/s",
                    self.rng.below(500),
                    self.rng.below(100_000),
                    100_000,
                    self.rng.range(100, 9000)
                );
            }
            Kind::PaymentSubmitted => {
                let order = self.order_id(plant);
                let _ = write!(
                    m,
                    "payment submitted order={order} amount={}.{:02} currency=CNY payee_account=62{:014}",
                    self.rng.below(5_000_000),
                    self.rng.below(100),
                    self.rng.below(100_000_000_000_000)
                );
            }
            Kind::RetryScheduled => {
                let d = *self.rng.pick(DOWNSTREAMS);
                let _ = write!(
                    m,
                    "retry scheduled for call to {d} attempt={} backoff={}ms",
                    self.rng.range(1, 5),
                    100 * self.rng.range(1, 32)
                );
            }
            Kind::SlowQuery => {
                let t = TABLES[self.table_zipf.sample(&mut self.rng)];
                let _ = write!(
                    m,
                    "slow query on {t} took {}ms plan=seq_scan rows_examined={}",
                    self.rng.range(500, 9000),
                    self.rng.range(10_000, 5_000_000)
                );
            }
            Kind::PaymentDeclined => {
                let order = self.order_id(plant);
                let reason = *self.rng.pick(DECLINE_REASONS);
                let _ = write!(
                    m,
                    "payment declined order={order} reason={reason} amount={}.{:02} user=u{user:05}",
                    self.rng.below(5_000_000),
                    self.rng.below(100)
                );
            }
            Kind::Timeout => {
                let d = *self.rng.pick(DOWNSTREAMS);
                // Mostly short timeouts; one in ten is 1000 ms or longer.
                let ms = if self.rng.chance(0.1) {
                    self.rng.range(1000, 30_000)
                } else {
                    self.rng.range(100, 999)
                };
                let _ = write!(m, "timeout after {ms}ms calling {d} request_id=");
                self.hex(&mut m, 16);
            }
            Kind::PoolExhausted => {
                let _ = write!(
                    m,
                    "connection pool exhausted db=postgres-main active={} idle=0 waiting={}",
                    self.rng.range(20, 64),
                    self.rng.range(1, 200)
                );
            }
            Kind::Exception => {
                let _ = write!(
                    m,
                    "unhandled exception java.lang.IllegalStateException: ledger entry {} out of balance at com.finance.ledger.Posting.apply(Posting.java:{})",
                    self.rng.below(10_000_000),
                    self.rng.range(40, 400)
                );
            }
        }
        m
    }
}

impl Iterator for LogGenerator {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let cfg = &self.config;
        if self.produced_bytes >= cfg.total_bytes {
            return None;
        }
        let timestamp_ns = cfg.start_ns
            + ((u128::from(self.produced_bytes) * u128::from(cfg.span_ns))
                / u128::from(cfg.total_bytes.max(1))) as u64;
        let plant = self.rare_planted < RARE_ORDER_COUNT && self.produced_bytes >= self.next_rare;
        let kind = if plant {
            Kind::PaymentDeclined
        } else {
            KINDS[self.kind_zipf.sample(&mut self.rng)]
        };
        if plant {
            self.rare_planted += 1;
            self.next_rare += cfg.total_bytes / (RARE_ORDER_COUNT + 1);
        }
        let service = self.service_zipf.sample(&mut self.rng);
        let pod = self.rng.below(PODS_PER_SERVICE as u64) as usize;
        let prod = self.rng.chance(0.9);
        let (severity_number, severity_text) = severity(kind);
        let traced = self.rng.chance(0.6);
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        trace_id[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        let message = self.message(kind, plant);

        let secs = timestamp_ns / 1_000_000_000;
        let micros = (timestamp_ns / 1000) % 1_000_000;
        let ts = chrono::DateTime::from_timestamp(secs as i64, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default();
        let service_name = SERVICES[service];
        let mut line = String::with_capacity(message.len() + 160);
        if self.json_services[service] {
            let _ = write!(
                line,
                r#"{{"ts":"{ts}.{micros:06}Z","level":"{}","service":"{service_name}","logger":"com.finance.{}","thread":"http-nio-{}","msg":"{message}""#,
                severity_text.to_ascii_lowercase(),
                service_name.replace('-', "."),
                self.rng.below(200)
            );
            if traced {
                line.push_str(r#","trace_id":""#);
                line.push_str(&hex32(&trace_id));
                line.push('"');
            }
            line.push('}');
        } else {
            let _ = write!(
                line,
                "{ts}.{micros:06}Z {severity_text:<5} [{service_name}] [http-nio-{}] {message}",
                self.rng.below(200)
            );
            if traced {
                line.push_str(" trace_id=");
                line.push_str(&hex32(&trace_id));
            }
        }
        line.truncate(400);
        self.produced_bytes += line.len() as u64 + 1;
        Some(Record {
            timestamp_ns,
            service,
            pod,
            prod,
            severity_number,
            severity_text,
            trace_id: traced.then_some(trace_id),
            line,
        })
    }
}

fn hex32(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32);
    for b in id {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(total_bytes: u64) -> GenConfig {
        GenConfig {
            seed: 42,
            total_bytes,
            start_ns: 1_700_000_000_000_000_000,
            span_ns: 3_600_000_000_000,
        }
    }

    #[test]
    fn deterministic_sized_and_planted() {
        let a: Vec<Record> = LogGenerator::new(config(2_000_000)).collect();
        let b: Vec<Record> = LogGenerator::new(config(2_000_000)).collect();
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.line == y.line));
        let bytes: u64 = a.iter().map(|r| r.line.len() as u64 + 1).sum();
        assert!((2_000_000..2_000_500).contains(&bytes), "{bytes}");
        let rare = a.iter().filter(|r| r.line.contains(RARE_ORDER_ID)).count();
        assert_eq!(rare as u64, RARE_ORDER_COUNT);
        assert!(a.iter().all(|r| (60..=400).contains(&r.line.len())));
        let mean = bytes / a.len() as u64;
        assert!((100..=400).contains(&mean), "mean line length {mean}");
        assert!(a.windows(2).all(|w| w[0].timestamp_ns <= w[1].timestamp_ns));
    }
}
