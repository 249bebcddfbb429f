//! Trace search: a TraceQL query (or Tempo's `tags=` logfmt) run over the span store.
//!
//! The query's prefilter (the per-span conjunctions every match implies) becomes index
//! conditions ([`SpanCondition`]), the store names the newest candidate traces, and each
//! candidate is read whole and checked by the TraceQL evaluator, newest first, until `limit`
//! traces matched or [`MAX_INSPECTED_TRACES`] were read. Conditions the index cannot answer
//! exactly (regexes, `!=`, comparisons on attributes, floats) are left to the evaluator, so
//! the index only narrows and never decides.

use std::ops::Bound;

use sightline_indexer::{AttrScope, CandidateQuery, SpanCondition, TraceStore};
use sightline_model::{Cancellation, SpanBatch, StatusCode, TenantId, TraceId};
use sightline_traceql::{
    CmpOp, Condition, Field, Intrinsic, Query, Scope, SpanRef, SpanSet, Static,
};

use super::ApiError;

/// Candidate traces read at most per search.
pub const MAX_INSPECTED_TRACES: usize = 10_000;

/// What to look for.
#[derive(Debug, Clone)]
pub enum Search {
    TraceQl(Box<Query>),
    /// Tempo's `tags=`: each `key=value` met by some span of the trace (its attribute or
    /// its resource's, as text; `name` is the span name).
    Tags(Vec<(String, String)>),
}

/// One search request.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub tenant: TenantId,
    pub search: Search,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Trace duration bounds (Tempo's `minDuration`, `maxDuration`).
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    pub limit: usize,
}

/// A matching trace.
#[derive(Debug, Clone)]
pub struct Found {
    pub trace_id: TraceId,
    pub trace: SpanBatch,
    /// Spansets the query selected (for tag searches: one set of the spans that met a tag).
    pub spansets: Vec<SpanSet>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    pub traces: Vec<Found>,
    pub inspected: usize,
}

/// Runs a search on the store; stops (with an error) when `cancel` fires.
pub fn search(
    store: &TraceStore,
    request: &SearchRequest,
    cancel: &Cancellation,
) -> Result<SearchOutcome, ApiError> {
    let must = match &request.search {
        Search::TraceQl(q) => index_conditions(&q.prefilter()),
        Search::Tags(tags) => tags
            .iter()
            .map(|(k, v)| vec![tag_condition(k, v)])
            .collect(),
    };
    // Most searches match most of their candidates: ask for a few times `limit`, and for
    // ten times more (up to MAX_INSPECTED_TRACES) while too few matched and more exist.
    let mut asked = (request.limit * 20).clamp(200, MAX_INSPECTED_TRACES);
    let mut seen = std::collections::HashSet::new();
    let mut out = SearchOutcome::default();
    loop {
        let candidates = store
            .candidate_traces(
                &request.tenant,
                &CandidateQuery {
                    start_ns: request.start_ns,
                    end_ns: request.end_ns,
                    must: &must,
                    max_traces: asked,
                    newest_only: true,
                },
                cancel,
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let exhausted = candidates.len() < asked;
        for (trace_id, _) in candidates {
            if out.traces.len() >= request.limit {
                break;
            }
            if seen.insert(trace_id) {
                inspect(store, request, trace_id, cancel, &mut out)?;
            }
        }
        if out.traces.len() >= request.limit || exhausted || asked >= MAX_INSPECTED_TRACES {
            return Ok(out);
        }
        asked = (asked * 10).min(MAX_INSPECTED_TRACES);
    }
}

/// Reads one candidate whole and keeps it if the search matches it.
fn inspect(
    store: &TraceStore,
    request: &SearchRequest,
    trace_id: TraceId,
    cancel: &Cancellation,
    out: &mut SearchOutcome,
) -> Result<(), ApiError> {
    {
        cancel.check().map_err(ApiError::from)?;
        out.inspected += 1;
        let Some(trace) = store
            .trace(&request.tenant, &trace_id, i64::MIN, i64::MAX)
            .map_err(|e| ApiError::internal(e.to_string()))?
        else {
            return Ok(());
        };
        let summary = TraceSummary::of(&trace);
        if request
            .min_duration_ns
            .is_some_and(|d| summary.duration_ns < d)
            || request
                .max_duration_ns
                .is_some_and(|d| summary.duration_ns > d)
        {
            return Ok(());
        }
        let spans: Vec<SpanRef<'_>> = trace
            .spans()
            .map(|(resource, scope, span)| SpanRef {
                resource,
                scope,
                span,
            })
            .collect();
        let spansets = match &request.search {
            Search::TraceQl(q) => q.evaluate(&spans),
            Search::Tags(tags) => tag_match(tags, &spans).into_iter().collect(),
        };
        if !spansets.is_empty() {
            out.traces.push(Found {
                trace_id,
                spansets,
                trace: trace.clone(),
            });
        }
    }
    Ok(())
}

/// What the search answer says of a whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub start_ns: i64,
    pub duration_ns: i64,
}

impl TraceSummary {
    pub fn of(trace: &SpanBatch) -> Self {
        let mut start = i64::MAX;
        let mut end = i64::MIN;
        let mut root = None;
        for (resource, _, span) in trace.spans() {
            start = start.min(span.start_ns);
            end = end.max(span.end_ns);
            if span.is_root() && root.is_none() {
                root = Some((resource.service_name().to_string(), span.name.clone()));
            }
        }
        Self {
            root_service: root.as_ref().map(|r| r.0.clone()),
            root_name: root.map(|r| r.1),
            start_ns: start,
            duration_ns: end.saturating_sub(start).max(0),
        }
    }
}

/// The spans meeting each tag, if every tag is met by some span.
fn tag_match(tags: &[(String, String)], spans: &[SpanRef<'_>]) -> Option<SpanSet> {
    let mut matched = Vec::new();
    for (key, value) in tags {
        let hits: Vec<usize> = spans
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                (key == "name" && &s.span.name == value)
                    || s.span
                        .attributes
                        .iter()
                        .chain(&s.resource.resource)
                        .any(|(k, v)| k == key && &v.to_text() == value)
            })
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            return None;
        }
        matched.extend(hits);
    }
    matched.sort_unstable();
    matched.dedup();
    Some(SpanSet {
        spans: matched,
        scalar: None,
        attributes: Vec::new(),
    })
}

fn tag_condition(key: &str, value: &str) -> SpanCondition {
    match key {
        "name" => SpanCondition::Name(value.to_string()),
        "service.name" => SpanCondition::Service(value.to_string()),
        _ => SpanCondition::Attribute {
            scope: AttrScope::Either,
            name: key.to_string(),
            value: value.to_string(),
        },
    }
}

/// The index conditions implied by TraceQL's prefilter: per conjunction, the conditions the
/// index answers exactly; trace-level ones (`rootName`, `rootServiceName`) become their own
/// conjunction on the root span.
pub fn index_conditions(prefilter: &[Vec<Condition>]) -> Vec<Vec<SpanCondition>> {
    let mut out = Vec::new();
    for conjunction in prefilter {
        let mut span_level = Vec::new();
        for c in conjunction {
            match (&c.field, c.op, &c.value) {
                (Field::Intrinsic(Intrinsic::RootName), CmpOp::Eq, Static::Str(s)) => {
                    out.push(vec![SpanCondition::Root, SpanCondition::Name(s.clone())]);
                }
                (Field::Intrinsic(Intrinsic::RootServiceName), CmpOp::Eq, Static::Str(s)) => {
                    out.push(vec![SpanCondition::Root, SpanCondition::Service(s.clone())]);
                }
                _ => span_level.extend(span_condition(c)),
            }
        }
        if !span_level.is_empty() {
            out.push(span_level);
        }
    }
    out
}

fn span_condition(c: &Condition) -> Option<SpanCondition> {
    let text = |v: &Static| match v {
        Static::Str(s) => Some(s.clone()),
        Static::Int(i) => Some(i.to_string()),
        Static::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (&c.field, c.op) {
        (Field::Intrinsic(Intrinsic::Name), CmpOp::Eq) => match &c.value {
            Static::Str(s) => Some(SpanCondition::Name(s.clone())),
            _ => None,
        },
        (Field::Intrinsic(Intrinsic::Status), CmpOp::Eq) => match c.value {
            Static::Status(s) => Some(SpanCondition::Status(status_number(s))),
            _ => None,
        },
        (Field::Intrinsic(Intrinsic::Kind), CmpOp::Eq) => match c.value {
            Static::Kind(k) => Some(SpanCondition::Kind(k.as_i32() as u64)),
            _ => None,
        },
        (Field::Intrinsic(Intrinsic::Duration), op) => {
            let ns = match c.value {
                Static::Duration(ns) | Static::Int(ns) => u64::try_from(ns).ok()?,
                _ => return None,
            };
            let (lo, hi) = match op {
                CmpOp::Gt => (Bound::Excluded(ns), Bound::Unbounded),
                CmpOp::Ge => (Bound::Included(ns), Bound::Unbounded),
                CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(ns)),
                CmpOp::Le => (Bound::Unbounded, Bound::Included(ns)),
                CmpOp::Eq => (Bound::Included(ns), Bound::Included(ns)),
                _ => return None,
            };
            Some(SpanCondition::Duration(lo, hi))
        }
        (Field::Attribute { scope, name }, CmpOp::Eq) => {
            let value = text(&c.value)?;
            let scope = match scope {
                Scope::Span => AttrScope::Span,
                Scope::Resource if name == "service.name" => {
                    return Some(SpanCondition::Service(value));
                }
                Scope::Resource => AttrScope::Resource,
                Scope::Unscoped => AttrScope::Either,
                Scope::Instrumentation => return None,
            };
            Some(SpanCondition::Attribute {
                scope,
                name: name.clone(),
                value,
            })
        }
        _ => None,
    }
}

fn status_number(s: StatusCode) -> u64 {
    s.as_i32() as u64
}

/// Traces a metrics query may read; past it the query is refused (an approximate answer
/// would look exact).
pub const MAX_METRICS_TRACES: usize = 200_000;

/// Runs a TraceQL metrics query over `[start_ns, end_ns)` in steps of `step_ns`: every trace
/// the prefilter admits is read and fed to the evaluator.
pub fn metrics(
    store: &TraceStore,
    tenant: &TenantId,
    query: &Query,
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    cancel: &Cancellation,
) -> Result<(Vec<sightline_traceql::MetricsSeries>, usize), ApiError> {
    let mut evaluator = sightline_traceql::MetricsEvaluator::new(query, start_ns, end_ns, step_ns)
        .map_err(|e| ApiError::bad_request(describe_error(&e)))?;
    let must = index_conditions(&query.prefilter());
    let candidates = store
        .candidate_traces(
            tenant,
            &CandidateQuery {
                start_ns,
                end_ns,
                must: &must,
                max_traces: MAX_METRICS_TRACES + 1,
                newest_only: false,
            },
            cancel,
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
    cancel.check().map_err(ApiError::from)?;
    if candidates.len() > MAX_METRICS_TRACES {
        return Err(ApiError::bad_request(format!(
            "the metrics query would read more than {MAX_METRICS_TRACES} traces; narrow the time range or the filter"
        )));
    }
    let inspected = candidates.len();
    for (trace_id, _) in candidates {
        cancel.check().map_err(ApiError::from)?;
        let Some(trace) = store
            .trace(tenant, &trace_id, i64::MIN, i64::MAX)
            .map_err(|e| ApiError::internal(e.to_string()))?
        else {
            continue;
        };
        let spans: Vec<SpanRef<'_>> = trace
            .spans()
            .map(|(resource, scope, span)| SpanRef {
                resource,
                scope,
                span,
            })
            .collect();
        evaluator
            .observe(&spans)
            .map_err(|e| ApiError::bad_request(describe_error(&e)))?;
    }
    let series = evaluator
        .finish()
        .map_err(|e| ApiError::bad_request(describe_error(&e)))?;
    Ok((series, inspected))
}

/// A refused TraceQL query in words: what kind of refusal, where, and why.
pub fn describe_error(e: &sightline_traceql::TraceQlError) -> String {
    let what = match e.kind {
        sightline_traceql::ErrorKind::Syntax => "syntax error",
        sightline_traceql::ErrorKind::Invalid => "invalid TraceQL",
        sightline_traceql::ErrorKind::Unsupported => {
            "valid TraceQL that Sightline does not support"
        }
        sightline_traceql::ErrorKind::Limit => "query over a limit",
    };
    if e.line == 0 {
        return format!("{what}: {}", e.message);
    }
    let message = e
        .message
        .strip_prefix("syntax error: ")
        .unwrap_or(&e.message);
    format!("{what} at line {}, column {}: {message}", e.line, e.column)
}

/// Tempo's `tags=` parameter: logfmt `key=value` pairs, values optionally double-quoted.
pub fn parse_logfmt(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            ApiError::bad_request(format!("invalid tags {text:?}: expected key=value pairs"))
        })?;
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ApiError::bad_request(format!(
                "invalid tags {text:?}: bad key {key:?}"
            )));
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            v.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or_else(|| {
                ApiError::bad_request(format!("invalid tags {text:?}: unterminated quote"))
            })?;
            value = v;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        out.push((key.to_string(), value));
        rest = rest.trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_tags_parse_with_quotes_and_refuse_garbage() {
        assert_eq!(
            parse_logfmt(r#"service.name=pay http.route="/a b" x="q\"uote""#).unwrap(),
            vec![
                ("service.name".into(), "pay".into()),
                ("http.route".into(), "/a b".into()),
                ("x".into(), "q\"uote".into()),
            ]
        );
        assert!(parse_logfmt("novalue").is_err());
        assert!(parse_logfmt(r#"a="open"#).is_err());
        assert!(parse_logfmt("").unwrap().is_empty());
    }

    #[test]
    fn traceql_prefilters_become_index_conditions_and_root_intrinsics_their_own() {
        let q = sightline_traceql::parse(
            r#"{ rootServiceName = "front" && .http.status_code = 500 && duration > 1s && name =~ "GE.*" }"#,
        )
        .unwrap();
        let got = index_conditions(&q.prefilter());
        assert!(got.contains(&vec![
            SpanCondition::Root,
            SpanCondition::Service("front".into())
        ]));
        assert!(got.contains(&vec![
            SpanCondition::Attribute {
                scope: AttrScope::Either,
                name: "http.status_code".into(),
                value: "500".into()
            },
            SpanCondition::Duration(Bound::Excluded(1_000_000_000), Bound::Unbounded),
        ]));
        assert_eq!(got.len(), 2, "the regex is left to the evaluator: {got:?}");
    }
}
