//! Request parameters of the query APIs: GET query strings and form-encoded POST bodies,
//! repeated keys kept (`match[]`), and Loki's time, duration and step formats.

use std::time::Duration;

use axum::http::HeaderMap;

use super::ApiError;

/// All parameters of a request, in order, from the query string and a form body.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Self(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A time parameter, or `default` when absent.
    pub fn time_ns(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_time_ns(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid {key} time {v:?}: expected Unix nanoseconds, Unix seconds or RFC 3339"
                ))
            }),
        }
    }

    /// `start` and `end` in ns: `end` defaults to now, `start` to `default_span` before it,
    /// and `end` must not come before `start`.
    pub fn range_ns(&self, default_span: i64) -> Result<(i64, i64), ApiError> {
        let end = self.time_ns("end", crate::now_ns())?;
        let start = self.time_ns("start", end - default_span)?;
        if end < start {
            return Err(ApiError::bad_request(
                "end timestamp must not be before start time",
            ));
        }
        Ok((start, end))
    }

    /// `step` in ns: a positive duration or seconds; by default Loki's, about 250 points
    /// over `[start, end]` and at least one second.
    pub fn step_ns(&self, start: i64, end: i64) -> Result<i64, ApiError> {
        match self.get("step") {
            Some(s) => parse_duration(s)
                .map(|d| d.as_nanos() as i64)
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid step {s:?}: expected a positive duration or seconds"
                    ))
                }),
            None => Ok(((end - start) / 250).max(1_000_000_000) / 1_000_000_000 * 1_000_000_000),
        }
    }

    pub fn usize(&self, key: &str, default: usize) -> Result<usize, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid {key} {v:?}: expected a non-negative integer"
                ))
            }),
        }
    }
}

/// Loki's time formats: RFC 3339, Unix seconds with a fraction, or an integer that is taken
/// as nanoseconds when it is too large to be seconds (as Loki's `parseTimestamp` does).
pub fn parse_time_ns(v: &str) -> Option<i64> {
    if let Ok(i) = v.parse::<i64>() {
        // 1e11 s is the year 5138: anything larger is nanoseconds.
        return Some(if i.abs() < 100_000_000_000 {
            i * 1_000_000_000
        } else {
            i
        });
    }
    if let Ok(f) = v.parse::<f64>() {
        return f.is_finite().then_some((f * 1e9) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

/// A duration as Prometheus/Loki write them (`5m`, `1h30m`, `250ms`) or float seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    if let Ok(f) = v.parse::<f64>() {
        return (f.is_finite() && f >= 0.0).then(|| Duration::from_secs_f64(f));
    }
    humantime::parse_duration(v).ok()
}

/// The tenant of a query request (`X-Scope-OrgID`, `default` when absent).
pub use sightline_http::tenant_from_headers as tenant;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_loki_format() {
        assert_eq!(parse_time_ns("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(
            parse_time_ns("1700000000000000000"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time_ns("1700000000.5"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_time_ns("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_time_ns("yesterday"), None);
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
    }

    #[test]
    fn repeated_keys_are_kept() {
        let p = Params::parse(
            Some("match[]=%7Ba%3D%22b%22%7D&match[]=x&limit=5"),
            &HeaderMap::new(),
            b"",
        );
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), vec!["{a=\"b\"}", "x"]);
        assert_eq!(p.usize("limit", 100).unwrap(), 5);
    }
}
