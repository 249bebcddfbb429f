//! The sender: takes the buffer's records in order and posts each to the server until it is
//! accepted (2xx) or refused for good (any other 4xx but 408 and 429: retrying the same
//! bytes cannot succeed). Everything else — no connection, a timeout, 429, 5xx — is retried
//! with exponential backoff from 250 ms to 30 s, never sooner than the server's
//! `Retry-After`; meanwhile collection goes on into the buffer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::buffer::{Buffer, Kind, Record};
use crate::metrics::AgentMetrics;
use crate::shutdown::Shutdown;

/// What to do with a record after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Retry after at least this long (the server's hint, if any).
    Retry(Option<Duration>),
    /// Refused for good: the status and the server's reason.
    Rejected(u16, String),
}

/// The outcome of a response with `status` and its `Retry-After` header.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry(retry_after.and_then(parse_retry_after)),
        _ => Outcome::Rejected(status, body.chars().take(512).collect()),
    }
}

/// `Retry-After` as seconds or an HTTP date; capped at 5 minutes, so that a wrong clock or a
/// confused proxy cannot stall the agent for hours.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate(v)?;
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(300)))
}

fn httpdate(v: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(v).ok().or_else(|| {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
        let parts: Vec<&str> = v.split_whitespace().collect();
        if parts.len() != 6 || parts[5] != "GMT" {
            return None;
        }
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = months.iter().position(|m| *m == parts[2])? + 1;
        let text = format!("{}-{month:02}-{:0>2}T{}Z", parts[3], parts[1], parts[4]);
        humantime::parse_rfc3339(&text).ok()
    })
}

/// Where each kind of record goes, and how to present it.
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: String,
    pub tenant: Option<String>,
    pub token: Option<String>,
    pub timeout: Duration,
}

pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs until `shutdown`: sends what the buffer holds, in order.
pub fn run(
    buffer: Arc<Buffer>,
    target: Target,
    metrics: Arc<AgentMetrics>,
    shutdown: Arc<Shutdown>,
) {
    let client = match reqwest::blocking::Client::builder()
        .timeout(target.timeout)
        .user_agent(concat!("sightline-agent/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; nothing will be sent");
            return;
        }
    };
    let mut backoff = MIN_BACKOFF;
    while !shutdown.is_set() {
        let record = match buffer.peek(Duration::from_millis(500)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading the buffer");
                if shutdown.wait(Duration::from_secs(1)) {
                    break;
                }
                continue;
            }
        };
        let outcome = send(&client, &target, &record);
        metrics.sent(record.kind, &outcome);
        match outcome {
            Outcome::Delivered => {
                backoff = MIN_BACKOFF;
                if let Err(e) = buffer.ack(&record) {
                    tracing::warn!(error = %e, "recording the buffer's cursor");
                }
            }
            Outcome::Rejected(status, reason) => {
                tracing::warn!(status, %reason, kind = ?record.kind, bytes = record.payload.len(),
                    "the server refused a batch; it is dropped (retrying cannot succeed)");
                backoff = MIN_BACKOFF;
                if let Err(e) = buffer.ack(&record) {
                    tracing::warn!(error = %e, "recording the buffer's cursor");
                }
            }
            Outcome::Retry(hint) => {
                let wait = hint.map_or(backoff, |h| h.max(backoff));
                tracing::debug!(?wait, "server unavailable; retrying");
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if shutdown.wait(wait) {
                    break;
                }
            }
        }
    }
}

fn send(client: &reqwest::blocking::Client, target: &Target, record: &Record) -> Outcome {
    let base = target.base_url.trim_end_matches('/');
    let req = match record.kind {
        Kind::RemoteWrite => client
            .post(format!("{base}/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0"),
        Kind::OtlpLogs => client
            .post(format!("{base}/v1/logs"))
            .header("Content-Type", "application/x-protobuf"),
        Kind::LokiPush => client
            .post(format!("{base}/loki/api/v1/push"))
            .header("Content-Type", "application/json"),
    };
    let mut req = req.body(record.payload.clone());
    if let Some(t) = &target.tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    if let Some(t) = &target.token {
        req = req.bearer_auth(t);
    }
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.text().unwrap_or_default();
            classify(status, retry_after.as_deref(), &body)
        }
        Err(e) => {
            tracing::debug!(error = %e, "sending a batch");
            Outcome::Retry(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_or_not_as_the_protocol_says() {
        assert_eq!(classify(204, None, ""), Outcome::Delivered);
        assert_eq!(
            classify(429, Some("3"), ""),
            Outcome::Retry(Some(Duration::from_secs(3)))
        );
        assert_eq!(classify(503, None, ""), Outcome::Retry(None));
        assert_eq!(classify(408, None, ""), Outcome::Retry(None));
        assert_eq!(
            classify(400, None, "out of order sample"),
            Outcome::Rejected(400, "out of order sample".into())
        );
        assert_eq!(
            classify(503, Some("86400"), ""),
            Outcome::Retry(Some(Duration::from_secs(300))),
            "capped"
        );
        // A date in the past: retry now.
        assert_eq!(
            classify(503, Some("Sun, 06 Nov 1994 08:49:37 GMT"), ""),
            Outcome::Retry(Some(Duration::ZERO))
        );
        assert_eq!(classify(503, Some("soon"), ""), Outcome::Retry(None));
    }
}
