//! Root-cause ranking: given a symptom (an entity whose signal degraded from a time on), the
//! entities it calls and their metrics, rank the entities most likely to have caused it.
//!
//! # Method, and why
//!
//! The literature offers three families: random walks over an anomaly-weighted dependency
//! graph (MicroRCA, MonitorRank), change-point ranking of every metric (BARO: robust
//! median/IQR scores after a Bayesian change point) and causal discovery (RCD, CIRCA). Causal
//! discovery needs many samples per metric after the fault, and a real incident gives a
//! handful (five-minute CloudWatch rows give three); random walks need tuned restart and
//! weight parameters and reward hubs. We combine the two robust pieces that need neither: a
//! per-metric change score that is calibrated against the metric's own history, and the
//! traversal that operators and the PetShop paper's baseline use — follow the symptom's
//! degradation down the call graph, through degraded entities only, to the deepest ones.
//!
//! 1. **Change of one series** around the onset `t0`: the level is the median of the last
//!    [`Params::recent`] samples before `t0` (recent, so that a series whose level drifted
//!    since the older history is compared with what it was just before); the change is the
//!    largest `|x − level|` at or after `t0`. Its **rarity** is the share of the history's
//!    own changes of that kind (each earlier sample against the median of the `recent`
//!    before it) at least as large: `p = (1 + #≥) / (1 + n)`, an empirical tail probability
//!    that means the same on every series whatever its level, scale, step or noise (a
//!    flapping low-traffic series has many large changes in its history, so a large one now
//!    is not rare). Its **z** is the change over a robust noise scale: the MAD of first
//!    differences (level-free, so older history of another period does not inflate it),
//!    floored at [`Params::resolution`] times the level (a change of less than 1 % of a
//!    series' level is not evidence, however flat its history).
//! 2. **Which series**: the symptom's metric (its name) on every entity that has it — the
//!    degradation propagates as the same signal (latency, errors) along calls; an entity
//!    without that metric is judged on all of its own.
//! 3. **Anomalous**: `z` above [`Params::z`] and, when the history is long enough for a
//!    tail probability that small to exist, rarity at most [`Params::alpha`]. With a history
//!    too short (two samples), `z` alone decides.
//! 4. **Propagation**: the anomalous subgraph is what the symptom reaches along calls
//!    through anomalous entities only — and through entities that report nothing at all (a
//!    pod whose container metrics are kept on its instance says nothing either way; it is
//!    neither a candidate nor counted). A callee there *explains* its caller when its change
//!    goes the same way and is at least half the caller's (or when the two are judged on
//!    different signals, which cannot be compared: a node's CPU below a service's
//!    latency — provided the callee's change is large against its noise, `z` above
//!    [`Params::z`]: a smooth series makes a tiny change rare, not telling): the
//!    symptom's signal (latency, errors) adds up along calls, so a database 3 ms slower
//!    does not explain a service 400 ms slower above it. Candidates are the entities
//!    nothing below explains. A candidate that explains more of the anomalous entities
//!    above it (callers whose change it explains, transitively; the symptom, when it is a
//!    candidate, accounts for itself) ranks higher: a fault in a shared dependency degrades
//!    every path through it, a client-side view of one call degrades one, and a candidate
//!    below that explains nothing above it is an anomaly of its own. Among candidates that
//!    explain as much, one observed from inside ranks before an endpoint known only from
//!    its callers (a load balancer's address mirrors the service behind it); then the
//!    rarer, then larger, change. An entity changed just before the onset (a deploy, a new
//!    version) is explained only by a callee whose change in the same signal accounts for
//!    its own, and ranks first among candidates: changes are the commonest cause of
//!    outages (DESIGN.md: "recent deploys"). Volume is the exception to all this: load
//!    flows *down* the calls, so a callee whose judged change is in how much traffic it
//!    received (`is_volume`: requests, calls, observation counts) explains nothing above it,
//!    and with a degraded caller it is no candidate either — that caller sent it (a retry
//!    storm triples the queries its target makes to its database). An entity judged on its
//!    own series is judged on how its traffic went before how much of it came. A callee
//!    whose judged change is kept per caller (the service graph's `client` label) and
//!    shows in one caller's series only, while others report it unchanged, explains
//!    nothing either: a shared dependency's fault reaches every caller, so that caller's
//!    own side (its connection pool, its network) is where it is (another caller's view
//!    counts as changed when its change is telling, `z` above [`Params::z`]). A place's
//!    change in a resource (CPU, memory, disk, network, by the words of the metric's name)
//!    that the member it would explain also changed in is that member's doing: a node's
//!    CPU is the sum of its pods'. A service all of whose members that serve (that report
//!    traffic, when any does: a standby receiving nothing cannot show a fault in serving)
//!    are degraded is the cause shared by them, not any one member.
//! 5. **Silence and place.** A series that reported regularly up to the onset and has been
//!    silent since for more than three of its steps has *stopped* — its rarity the share of
//!    its history's gaps as long (push and scrape both miss a sample now and then; three
//!    in a row is an outage of the reporter). A stop does not judge its entity (many
//!    exporters report no activity as nothing, so alone it says no more than a drop in
//!    traffic: its callers' doing); it says *where*. A place (zone, region, node, host)
//!    below the symptom all of whose observed members (two or more: nodes, pods, instances
//!    located in or running on it) stopped reporting (a series of each), and the place
//!    itself when it reports, is the cause those members share: the same services'
//!    members elsewhere carry on, so neither their code nor their dependencies explain it.
//!    It is a candidate that explains its members, and they are none. This is how a
//!    cut-off zone shows — everything in it falls silent at once — though it reports
//!    nothing itself.
//! 6. The rest follows: other entities the symptom calls, by the same order, then entities
//!    not below the symptom, by their change alone; the symptom itself last of its group
//!    (it is the cause only when nothing below it changed).
//!
//! Defaults have reasons outside any benchmark: `alpha` 0.01 (the conventional 1 % level),
//! `z` 5 (the threshold of the PetShop paper's published traversal baseline, and far from
//! what noise gives), `resolution` 1 %, `recent` 3 (the median of three is the smallest that
//! ignores one outlier). The cost is linear in the samples read plus the graph.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Serialize;

/// One metric series of an entity: samples `(ms, value)` in time order.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The metric's name (`__name__`), the same for the same signal on every entity.
    pub metric: String,
    /// The labels that tell this series apart from the entity's others (for evidence).
    pub labels: String,
    pub samples: Vec<(i64, f64)>,
}

/// An entity and its series.
#[derive(Debug, Clone, Default)]
pub struct Entity {
    pub id: String,
    pub series: Vec<Series>,
    /// Known only from its callers' side: an endpoint seen in client spans or a caller's
    /// view of a call (a load balancer's address, a third-party API). Its metrics mirror
    /// whatever serves behind it, so among candidates that explain as much, one observed
    /// from inside ranks first.
    pub external: bool,
    /// Changed (a deploy, a new version, revision or image) shortly before the onset. Its
    /// own change explains its degradation, and among candidates it ranks first: changes
    /// are the most common cause of outages.
    pub changed: bool,
}

/// What to explain.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    /// The entity where the symptom shows.
    pub symptom: &'a str,
    /// The metric that shows it, when known.
    pub symptom_metric: Option<&'a str>,
    /// When it began (ms).
    pub onset_ms: i64,
    pub entities: &'a [Entity],
    /// `(caller, callee)`: calls and other dependencies, pointing from the one that needs to
    /// what it needs.
    pub calls: &'a [(String, String)],
    /// `(whole, members)`: a service and its instances. When every member is degraded, the
    /// fault is the whole's (its code, its configuration): the members do not explain it.
    pub groups: &'a [(String, Vec<String>)],
    /// `(place, members)`: a zone, region, node or host and the entities located in it or
    /// running on it, transitively. When every observed member (two or more) fell silent
    /// and the symptom's degradation reaches one of them, the place is the cause: members
    /// fail together where they share nothing but where they are (a zone cut off, a node
    /// down), and a place often reports nothing of its own.
    pub places: &'a [(String, Vec<String>)],
}

/// The method's few parameters (see the module docs for why these defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// Largest rarity (tail probability) that counts as anomalous.
    pub alpha: f64,
    /// Smallest robust z that counts as anomalous.
    pub z: f64,
    /// Changes smaller than this share of the level are not evidence.
    pub resolution: f64,
    /// Samples before the onset whose median is the level.
    pub recent: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            alpha: 0.01,
            z: 5.0,
            resolution: 0.01,
            recent: 3,
        }
    }
}

/// The change of one series at the onset: the evidence behind a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub metric: String,
    pub labels: String,
    /// The level before the onset (median of the last `recent` samples).
    pub level: f64,
    /// The noise scale `z` divides by.
    pub scale: f64,
    /// The value furthest from the level at or after the onset, and when (ms).
    pub observed: f64,
    pub observed_at: i64,
    /// Share of the history's changes at least as large (empirical tail probability).
    pub rarity: f64,
    pub z: f64,
    /// Samples before the onset.
    pub history: usize,
    pub anomalous: bool,
    /// The series stopped reporting at the onset: `observed` is its last value and
    /// `observed_at` the end of the data; `z` counts the samples missed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

/// One entity's place in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub entity: String,
    /// Changed beyond the thresholds at the onset (on the series judged).
    pub anomalous: bool,
    /// Anomalous, reached from the symptom through anomalous entities, and nothing it calls
    /// is anomalous.
    pub candidate: bool,
    /// The anomalous entities above it (its callers, transitively) its fault would explain.
    pub explains: Vec<String>,
    /// The call path from the symptom to it (through anomalous entities when there is one).
    pub path: Vec<String>,
    /// `−ln(rarity)` of the series judged (larger is rarer) and its z.
    pub score: f64,
    pub z: f64,
    /// The changes behind the score, most telling first (at most five).
    pub evidence: Vec<Change>,
    /// For candidates, the share of the anomalous entities below the symptom that it
    /// accounts for (itself and those it explains); 0 for the rest.
    pub confidence: f64,
}

/// Median of a non-empty slice (a copy is sorted).
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The share of a caller's change a callee's must reach to explain it.
const EXPLAINS: f64 = 0.5;

/// The largest finite z reported (a change on a perfectly flat series at level 0).
const Z_CAP: f64 = 1e12;

/// What judging a series takes beyond its own samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// A history too short for the rarity test may be judged on `z` alone (when no series
    /// of the problem has a longer one).
    pub short_ok: bool,
    /// For such short histories, the noise of the series' peers (the median over series of
    /// the same metric of noise ÷ level) floors the scale: one or two earlier samples
    /// cannot tell a series' noise, its peers can.
    pub peer_noise: f64,
    /// The end of the data read (ms): the latest sample of any series of the problem. A
    /// series silent since the onset for several of its steps before it has stopped.
    pub end_ms: i64,
}

/// Steps without a sample after which a series that reported up to the onset has stopped
/// (a scrape or push missed once or twice is common; three in a row is an outage of it).
const STOPPED_STEPS: i64 = 3;

/// A series that reported regularly up to the onset and has been silent since, for more
/// than [`STOPPED_STEPS`] of its steps before `end_ms`: its rarity is the share of its
/// history's gaps as long.
fn stopped(series: &Series, onset_ms: i64, p: &Params, ctx: Context) -> Option<Change> {
    let s = &series.samples;
    let before = s.partition_point(|&(t, _)| t < onset_ms);
    if before < p.recent.max(1) + 1 {
        return None;
    }
    let gaps: Vec<i64> = s[..before].windows(2).map(|w| w[1].0 - w[0].0).collect();
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    let step = sorted[sorted.len() / 2];
    let &(last_at, last) = s.last()?;
    let silent = ctx.end_ms - last_at;
    if step <= 0 || last_at < onset_ms - STOPPED_STEPS * step || silent <= STOPPED_STEPS * step {
        return None;
    }
    let n = gaps.len();
    let rarity = (1 + gaps.iter().filter(|&&g| g >= silent).count()) as f64 / (1 + n) as f64;
    let anomalous = if long_enough(n, p) {
        rarity <= p.alpha
    } else {
        ctx.short_ok
    };
    Some(Change {
        metric: series.metric.clone(),
        labels: series.labels.clone(),
        level: last,
        scale: 0.0,
        observed: last,
        observed_at: ctx.end_ms,
        rarity,
        z: (silent / step) as f64,
        history: before,
        anomalous,
        stopped: true,
    })
}

/// The finite values before the onset and the samples from it on.
fn split(series: &Series, onset_ms: i64) -> (Vec<f64>, &[(i64, f64)]) {
    let at = series.samples.partition_point(|&(t, _)| t < onset_ms);
    let (before, after) = series.samples.split_at(at);
    let b = before
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .collect();
    (b, after)
}

/// A robust noise scale: the MAD of first differences (÷√2: the difference of two noisy
/// samples has twice the variance), level-free.
fn noise(b: &[f64]) -> f64 {
    let diffs: Vec<f64> = b.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    if diffs.is_empty() {
        0.0
    } else {
        1.4826 * median(&diffs) / std::f64::consts::SQRT_2
    }
}

/// The level: the median of the last `recent` values.
fn level(b: &[f64], p: &Params) -> f64 {
    median(&b[b.len().saturating_sub(p.recent.max(1))..])
}

/// The change of one series at the onset, or `None` without samples on both sides.
pub fn change(series: &Series, onset_ms: i64, p: &Params, ctx: Context) -> Option<Change> {
    let (b, after) = split(series, onset_ms);
    if b.is_empty() || after.is_empty() {
        return None;
    }
    let recent = p.recent.max(1);
    let level = level(&b, p);
    let (observed_at, observed) = after
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| (a.1 - level).abs().total_cmp(&(b.1 - level).abs()))?;
    let dev = (observed - level).abs();
    // The history's own changes, measured the same way.
    let history: Vec<f64> = (1..b.len())
        .map(|i| (b[i] - median(&b[i.saturating_sub(recent)..i])).abs())
        .collect();
    let n = history.len();
    let at_least = if dev > 0.0 {
        history.iter().filter(|&&h| h >= dev).count()
    } else {
        n
    };
    let rarity = (1 + at_least) as f64 / (1 + n) as f64;
    let long = long_enough(n, p);
    let mut scale = noise(&b).max(p.resolution * level.abs());
    if !long {
        scale = scale.max(ctx.peer_noise * level.abs());
    }
    let z = if scale > 0.0 {
        (dev / scale).min(Z_CAP)
    } else if dev > 0.0 {
        Z_CAP
    } else {
        0.0
    };
    // With a history long enough, rarity decides (a change beyond the resolution that
    // the history has hardly ever shown); without one, z does.
    let anomalous = if long {
        rarity <= p.alpha && dev > p.resolution * level.abs()
    } else {
        ctx.short_ok && z > p.z
    };
    Some(Change {
        metric: series.metric.clone(),
        labels: series.labels.clone(),
        level,
        scale,
        observed,
        observed_at,
        rarity,
        z,
        history: b.len(),
        anomalous,
        stopped: false,
    })
}

/// Whether `n` history changes are enough for a tail probability of `alpha` to exist.
fn long_enough(n: usize, p: &Params) -> bool {
    (n + 1) as f64 * p.alpha >= 1.0
}

/// Samples before the onset, the longest of any series: a series with a history too short
/// for the rarity test is evidence only when none has a longer one (a series that appeared
/// recently, or reports rarely, has no baseline to differ from).
fn longest_history(problem: &Problem<'_>) -> usize {
    problem
        .entities
        .iter()
        .flat_map(|e| &e.series)
        .map(|s| s.samples.partition_point(|&(t, _)| t < problem.onset_ms))
        .max()
        .unwrap_or(0)
}

/// Per metric name, the median over its series of noise ÷ |level| (series with at least
/// one difference before the onset and a non-zero level).
fn peer_noise<'a>(problem: &Problem<'a>, p: &Params) -> HashMap<&'a str, f64> {
    let mut rel: HashMap<&str, Vec<f64>> = HashMap::new();
    for s in problem.entities.iter().flat_map(|e| &e.series) {
        let (b, _) = split(s, problem.onset_ms);
        if b.len() >= 2 {
            let l = level(&b, p).abs();
            if l > 0.0 {
                rel.entry(s.metric.as_str())
                    .or_default()
                    .push(noise(&b) / l);
            }
        }
    }
    rel.into_iter().map(|(m, v)| (m, median(&v))).collect()
}

/// Orders changes most telling first: anomalous, rarer, larger.
/// Whether a metric counts traffic (requests, calls, observations) rather than how the
/// traffic went: load flows down the calls — what a callee receives is what its callers
/// send — so a change in it is a consequence of the callers, not evidence against the
/// callee. The count of a histogram or summary, a rate of its sum (it moves with the
/// count), and counters or gauges named for requests, calls or throughput, unless named
/// for failures.
pub fn is_volume(metric: &str) -> bool {
    let m = metric.to_ascii_lowercase();
    let rate = m.starts_with("rate(") || m.starts_with("irate(") || m.starts_with("increase(");
    let base = m
        .split_once('(')
        .map_or(m.as_str(), |(_, x)| x.trim_end_matches(')'));
    if ["fail", "error", "reject", "drop", "timeout"]
        .iter()
        .any(|w| base.contains(w))
    {
        return false;
    }
    base.ends_with("_count")
        || (rate && base.ends_with("_sum"))
        || base.rsplit(['_', '|', '.', ':']).take(2).any(|w| {
            matches!(
                w,
                "request" | "requests" | "calls" | "throughput" | "qps" | "rps"
            )
        })
}

/// The machine resource a metric measures the use of, if any (by the words of its name:
/// `system_cpu_utilization`, `container_memory_working_set_bytes`, `node_filesystem_…`).
fn resource(metric: &str) -> Option<&'static str> {
    metric
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|w| match w.to_ascii_lowercase().as_str() {
            "cpu" => Some("cpu"),
            "memory" | "mem" => Some("memory"),
            "filesystem" | "fs" | "disk" => Some("disk"),
            "network" | "net" => Some("network"),
            _ => None,
        })
}

/// The caller a series is kept for: its `client` label (the service graph's), if any.
fn client_of(labels: &str) -> Option<&str> {
    let at = labels.find("client=\"")?;
    if at > 0 && !labels[..at].ends_with(',') {
        return None;
    }
    let rest = &labels[at + "client=\"".len()..];
    rest.find('"').map(|end| &rest[..end])
}

fn telling(a: &Change, b: &Change) -> std::cmp::Ordering {
    b.anomalous
        .cmp(&a.anomalous)
        .then(a.rarity.total_cmp(&b.rarity))
        .then(b.z.total_cmp(&a.z))
}

/// Ranks every entity of the problem (and every entity named by a call) as the cause of the
/// symptom, most likely first.
pub fn rank(problem: &Problem<'_>, p: &Params) -> Vec<Ranked> {
    // Every entity's changes; the judged one is the symptom's metric where it has it.
    let mut judged: HashMap<&str, Option<Change>> = HashMap::new();
    let mut one_caller: HashSet<&str> = HashSet::new();
    // Entities that stopped reporting: a series of theirs stopped (others may go on: what
    // the server derives for them, such as span metrics, is exported whether or not
    // anything arrives).
    let mut silent: HashMap<&str, Change> = HashMap::new();
    let mut evidence: HashMap<&str, Vec<Change>> = HashMap::new();
    let mut uses: HashMap<&str, HashSet<&'static str>> = HashMap::new();
    let short_ok = !long_enough(longest_history(problem).saturating_sub(1), p);
    let end_ms = problem
        .entities
        .iter()
        .flat_map(|e| &e.series)
        .filter_map(|s| s.samples.last())
        .map(|&(t, _)| t)
        .max()
        .unwrap_or(problem.onset_ms);
    let peers = peer_noise(problem, p);
    let ctx_of = |s: &Series| Context {
        short_ok,
        peer_noise: peers.get(s.metric.as_str()).copied().unwrap_or(0.0),
        end_ms,
    };
    let changes_of = |e: &Entity| -> Vec<Change> {
        let mut changes: Vec<Change> = e
            .series
            .iter()
            .filter_map(|s| change(s, problem.onset_ms, p, ctx_of(s)))
            .collect();
        changes.sort_by(telling);
        changes
    };
    // Without a named metric, the symptom's own largest anomalous change names it.
    let derived: Option<String> = match problem.symptom_metric {
        Some(_) => None,
        None => problem
            .entities
            .iter()
            .find(|e| e.id == problem.symptom)
            .and_then(|e| {
                // Its largest anomalous change against its noise: rarity bottoms out at
                // one over the history's length, so among rare changes it ranks series
                // by how long they have been kept, not by how much they moved.
                // How its traffic went before how much of it came, as for every entity.
                let changes = changes_of(e);
                let largest = |volume: bool| {
                    changes
                        .iter()
                        .filter(|c| c.anomalous && is_volume(&c.metric) == volume)
                        .max_by(|a, b| a.z.total_cmp(&b.z))
                };
                largest(false)
                    .or_else(|| largest(true))
                    .or(changes.first())
                    .cloned()
            })
            .map(|c| c.metric),
    };
    let symptom_metric = problem.symptom_metric.or(derived.as_deref());
    for e in problem.entities {
        let changes = changes_of(e);
        // An entity that reports the symptom's metric is judged on it (whether or not it
        // changed); one that does not, on all of its own — how its traffic went before how
        // much of it came (`is_volume`).
        let reports_it = symptom_metric.is_some_and(|m| e.series.iter().any(|s| s.metric == m));
        let best = if reports_it {
            changes
                .iter()
                .find(|c| Some(c.metric.as_str()) == symptom_metric)
                .cloned()
        } else {
            changes
                .iter()
                .find(|c| c.anomalous && !is_volume(&c.metric))
                .or(changes.first())
                .cloned()
        };
        // Seen changed by one caller only: of the judged metric's series kept per caller
        // (a `client` label, as the service graph's), the changed ones are all one
        // caller's while two or more callers report it. Changed: anomalous by at least
        // `z` — a smooth series makes a change hardly above its noise rare, and a shared
        // dependency's fault moves every caller's view of it well above.
        if let Some(b) = best.as_ref().filter(|b| b.anomalous) {
            let per_client: Vec<(&str, bool)> = changes
                .iter()
                .filter(|c| c.metric == b.metric)
                .filter_map(|c| client_of(&c.labels).map(|x| (x, c.anomalous && c.z >= p.z)))
                .collect();
            let clients: HashSet<&str> = per_client.iter().map(|(x, _)| *x).collect();
            let changed: HashSet<&str> = per_client
                .iter()
                .filter(|(_, a)| *a)
                .map(|(x, _)| *x)
                .collect();
            if clients.len() >= 2 && changed.len() == 1 {
                one_caller.insert(e.id.as_str());
            }
        }
        // Stopped series are evidence of where, not of what: the entity itself is judged on
        // what it reported (a series also stops when nothing happens — many exporters
        // report no activity as nothing — so on its own a stop says no more than a drop).
        // The resources whose use it changed in (see `its_own_doing` below).
        uses.insert(
            e.id.as_str(),
            changes
                .iter()
                .filter(|c| c.anomalous)
                .filter_map(|c| resource(&c.metric))
                .collect(),
        );
        let stops: Vec<Change> = e
            .series
            .iter()
            .filter_map(|s| stopped(s, problem.onset_ms, p, ctx_of(s)))
            .filter(|c| c.anomalous)
            .collect();
        if let Some(first) = stops.first() {
            silent.insert(e.id.as_str(), first.clone());
        }
        let mut ev: Vec<Change> = best.iter().cloned().collect();
        ev.extend(
            changes
                .into_iter()
                .filter(|c| c.anomalous && Some(c) != best.as_ref()),
        );
        ev.truncate(5 - stops.len().min(2));
        ev.extend(stops.into_iter().take(2));
        judged.insert(e.id.as_str(), best);
        evidence.insert(e.id.as_str(), ev);
    }

    let mut ids: Vec<&str> = problem.entities.iter().map(|e| e.id.as_str()).collect();
    let mut callees: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut callers: HashMap<&str, Vec<&str>> = HashMap::new();
    for (a, b) in problem.calls {
        callees.entry(a).or_default().push(b);
        callers.entry(b).or_default().push(a);
        ids.push(a);
        ids.push(b);
    }
    ids.push(problem.symptom);
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(*id));

    let anomalous = |id: &str| -> bool {
        judged
            .get(id)
            .and_then(|c| c.as_ref())
            .is_some_and(|c| c.anomalous)
    };
    // Below the symptom, with the path to each (breadth first: shortest).
    let paths = |through: &dyn Fn(&str) -> bool| -> HashMap<&str, Vec<&str>> {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        out.insert(problem.symptom, vec![problem.symptom]);
        let mut queue = VecDeque::from([problem.symptom]);
        while let Some(x) = queue.pop_front() {
            for &y in callees.get(x).into_iter().flatten() {
                if !out.contains_key(y) && through(y) {
                    let mut path = out[x].clone();
                    path.push(y);
                    out.insert(y, path);
                    queue.push_back(y);
                }
            }
        }
        out
    };
    let observed: HashSet<&str> = problem
        .entities
        .iter()
        .filter(|e| !e.series.is_empty())
        .map(|e| e.id.as_str())
        .collect();
    let below = paths(&|_| true);
    // An entity that reports nothing (a pod whose container metrics are kept on its
    // instance) says nothing either way: the degradation is followed through it, and it is
    // neither a candidate nor counted.
    let degraded = {
        let mut d = paths(&|id| anomalous(id) || !observed.contains(id));
        d.retain(|id, _| anomalous(id) || *id == problem.symptom);
        d
    };
    // Places all of whose observed members (two or more, and the place itself when it
    // reports) stopped reporting, the degradation reaching one of them: the members failed
    // where they are. Silence, not any anomaly: of an entity's many series one is often
    // rare enough by chance, and a place has many members; a series stopping is not.
    let failed_places: HashMap<&str, Vec<&str>> = problem
        .places
        .iter()
        .filter_map(|(place, members)| {
            let seen: Vec<&str> = members
                .iter()
                .map(String::as_str)
                .filter(|m| m != place && observed.contains(m))
                .collect();
            let failed = (!observed.contains(place.as_str())
                || silent.contains_key(place.as_str()))
                && seen.len() >= 2
                && seen.iter().all(|m| silent.contains_key(m))
                && below.contains_key(place.as_str());
            failed.then_some((place.as_str(), seen))
        })
        .collect();
    let in_failed_place: HashSet<&str> = failed_places.values().flatten().copied().collect();
    // What each entity needs and is needed by, seen through those that report nothing
    // (a failed place is evidence of its own).
    let transparent = |id: &str| !observed.contains(id) && !failed_places.contains_key(id);
    let mut needs: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut needed_by: HashMap<&str, Vec<&str>> = HashMap::new();
    for &id in &ids {
        let mut seen = HashSet::from([id]);
        let mut stack: Vec<&str> = callees.get(id).cloned().unwrap_or_default();
        while let Some(c) = stack.pop() {
            if !seen.insert(c) {
                continue;
            }
            if transparent(c) {
                stack.extend(callees.get(c).into_iter().flatten().copied());
            } else {
                needs.entry(id).or_default().push(c);
                needed_by.entry(c).or_default().push(id);
            }
        }
    }
    let in_degraded = |id: &str| degraded.contains_key(id) || failed_places.contains_key(id);
    // The judged change, signed.
    let delta = |id: &str| {
        judged
            .get(id)
            .and_then(|c| c.as_ref())
            .map_or(0.0, |c| c.observed - c.level)
    };
    // A degraded callee explains its caller's change when it changed the same way by at
    // least `EXPLAINS` of it: the symptom's signal (latency, errors) adds up along calls,
    // so a callee 3 ms slower does not explain a caller 400 ms slower.
    let metric_of = |id: &str| {
        judged
            .get(id)
            .and_then(|c| c.as_ref())
            .map(|c| c.metric.as_str())
    };
    // Changes of different signals (a node's CPU below a service's latency) are not
    // comparable: a degraded callee then explains its caller whatever the sizes.
    let changed: HashSet<&str> = problem
        .entities
        .iter()
        .filter(|e| e.changed)
        .map(|e| e.id.as_str())
        .collect();
    // Wholes all of whose (two or more) members are degraded — of the members that serve,
    // when some are seen serving: a standby that receives nothing (a disaster-recovery
    // replica) cannot show a fault in how it serves.
    let serving: HashSet<&str> = problem
        .entities
        .iter()
        .filter(|e| {
            e.series
                .iter()
                .any(|s| is_volume(&s.metric) && s.samples.last().is_some_and(|&(_, v)| v > 0.0))
        })
        .map(|e| e.id.as_str())
        .collect();
    let whole_degraded: HashSet<&str> = problem
        .groups
        .iter()
        .filter(|(_, m)| {
            let any_serving = m.iter().any(|x| serving.contains(x.as_str()));
            let counted: Vec<&str> = m
                .iter()
                .map(String::as_str)
                .filter(|x| !any_serving || serving.contains(x) || in_degraded(x))
                .collect();
            counted.len() >= 2 && counted.iter().all(|x| in_degraded(x))
        })
        .map(|(w, _)| w.as_str())
        .collect();
    let member_of: HashMap<&str, &str> = problem
        .groups
        .iter()
        .flat_map(|(w, ms)| ms.iter().map(move |m| (m.as_str(), w.as_str())))
        .collect();
    // A place's change in a resource that what runs on it changed in too is that
    // member's doing, not the place's: a node's CPU is the sum of its pods'.
    let places: HashSet<&str> = problem.places.iter().map(|(p, _)| p.as_str()).collect();
    let its_own_doing = |place: &str, member: &str| {
        places.contains(place)
            && metric_of(place)
                .and_then(resource)
                .is_some_and(|r| uses.get(member).is_some_and(|u| u.contains(r)))
    };
    // A changed caller (a deploy just before) is explained only by a callee whose change
    // in the same signal accounts for its own: its own change is the likelier cause.
    // A callee judged on its volume never explains its caller: its callers sent it.
    // Across signals sizes cannot be compared, but a change hardly above its noise (rare
    // on a smooth series, yet small) explains nothing.
    let z_of = |id: &str| judged.get(id).and_then(|c| c.as_ref()).map_or(0.0, |c| c.z);
    let explained_by = |caller: &str, callee: &str| {
        // A callee cut off with its place explains what calls it, unless the caller
        // changed itself.
        if in_failed_place.contains(callee) {
            return callee != problem.symptom && !changed.contains(caller);
        }
        if its_own_doing(callee, caller) {
            return false;
        }
        let same = metric_of(caller) == metric_of(callee);
        callee != problem.symptom
            && !metric_of(callee).is_some_and(is_volume)
            && !one_caller.contains(callee)
            && in_degraded(callee)
            && !(whole_degraded.contains(caller) && member_of.get(callee) == Some(&caller))
            && ((!same && !changed.contains(caller) && z_of(callee) >= p.z) || {
                let (a, c) = (delta(caller), delta(callee));
                same && a * c >= 0.0 && c.abs() >= EXPLAINS * a.abs()
            })
    };
    // Its volume is what its callers sent: a degraded caller accounts for it (an entry
    // point's surge, with no caller, stays a candidate).
    let sent_by_callers = |id: &str| {
        metric_of(id).is_some_and(is_volume)
            && callers
                .get(id)
                .into_iter()
                .flatten()
                .any(|&c| in_degraded(c))
    };
    let is_candidate = |id: &str| {
        in_degraded(id)
            && !sent_by_callers(id)
            && !in_failed_place.contains(id)
            && !member_of
                .get(id)
                .is_some_and(|w| whole_degraded.contains(w))
            && (id != problem.symptom || anomalous(id) || degraded.len() == 1)
            && !needs
                .get(id)
                .into_iter()
                .flatten()
                .any(|&c| explained_by(id, c))
    };
    let explains = |id: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([id]);
        let mut queue = VecDeque::from([id]);
        // A failed place explains its members, whatever their signals.
        for &m in failed_places.get(id).into_iter().flatten() {
            if seen.insert(m) {
                out.push(m.to_string());
                queue.push_back(m);
            }
        }
        while let Some(x) = queue.pop_front() {
            for &y in needed_by.get(x).into_iter().flatten() {
                if in_degraded(y) && explained_by(y, x) && seen.insert(y) {
                    out.push(y.to_string());
                    queue.push_back(y);
                }
            }
        }
        out
    };

    // A failed place's evidence: its own stop, if it reports, then its members'.
    for (&place, members) in &failed_places {
        let ev: Vec<Change> = std::iter::once(place)
            .chain(members.iter().copied())
            .filter_map(|m| silent.get(m).cloned())
            .take(5)
            .collect();
        evidence.insert(place, ev);
    }
    let mut ranked: Vec<Ranked> = ids
        .iter()
        .map(|&id| {
            let place_evidence = failed_places
                .contains_key(id)
                .then(|| evidence.get(id).and_then(|v| v.first()).cloned())
                .flatten();
            let c = judged
                .get(id)
                .and_then(|c| c.as_ref())
                .or(place_evidence.as_ref());
            let candidate = is_candidate(id);
            let explains = explains(id);
            let confidence = if candidate {
                (1 + explains.len()) as f64 / degraded.len().max(1) as f64
            } else {
                0.0
            };
            let path = degraded
                .get(id)
                .or_else(|| below.get(id))
                .map(|p| p.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default();
            Ranked {
                entity: id.to_string(),
                anomalous: anomalous(id) || failed_places.contains_key(id),
                candidate,
                explains,
                path,
                score: c.map_or(0.0, |c| -c.rarity.ln()),
                z: c.map_or(0.0, |c| c.z),
                evidence: evidence.remove(id).unwrap_or_default(),
                confidence: confidence.min(1.0),
            }
        })
        .collect();
    let external: HashSet<&str> = problem
        .entities
        .iter()
        .filter(|e| e.external)
        .map(|e| e.id.as_str())
        .collect();
    ranked.sort_by(|a, b| {
        let key = |r: &Ranked| {
            (
                !below.contains_key(r.entity.as_str()),
                !r.candidate,
                !changed.contains(r.entity.as_str()),
                // The symptom, a candidate, accounts for itself: a candidate below that
                // explains nothing above it (not even the symptom) is an anomaly of its
                // own, not this one's cause.
                std::cmp::Reverse(
                    r.explains.len() + usize::from(r.candidate && r.entity == problem.symptom),
                ),
                r.entity == problem.symptom,
                external.contains(r.entity.as_str()),
            )
        };
        key(a)
            .cmp(&key(b))
            .then(b.score.total_cmp(&a.score))
            .then(b.z.total_cmp(&a.z))
            .then(a.entity.cmp(&b.entity))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat-ish series with small noise, then `after` from the onset on.
    fn series(metric: &str, base: f64, noise: f64, n: usize, after: &[f64]) -> Series {
        let mut samples = Vec::new();
        for i in 0..n {
            // Deterministic noise: a small zig-zag.
            let x = base + noise * (((i * 7919) % 13) as f64 / 6.0 - 1.0);
            samples.push((i as i64 * 60_000, x));
        }
        for (j, &v) in after.iter().enumerate() {
            samples.push(((n + j) as i64 * 60_000, v));
        }
        Series {
            metric: metric.into(),
            labels: String::new(),
            samples,
        }
    }

    fn entity(id: &str, s: Vec<Series>) -> Entity {
        Entity {
            id: id.into(),
            series: s,
            external: false,
            changed: false,
        }
    }

    const ONSET: i64 = 100 * 60_000;

    /// Ranks with the default parameters at `ONSET`.
    fn ranked(
        symptom: &str,
        symptom_metric: Option<&str>,
        entities: &[Entity],
        calls: &[(String, String)],
        groups: &[(String, Vec<String>)],
    ) -> Vec<Ranked> {
        let problem = Problem {
            symptom,
            symptom_metric,
            onset_ms: ONSET,
            entities,
            calls,
            groups,
            places: &[],
        };
        rank(&problem, &Params::default())
    }

    #[test]
    fn a_change_is_rare_and_large_only_when_it_is() {
        let p = Params::default();
        let c = change(
            &series("lat", 0.1, 0.005, 100, &[0.5, 0.6]),
            ONSET,
            &p,
            Context::default(),
        )
        .unwrap();
        assert!(c.anomalous, "{c:?}");
        assert!(c.rarity <= 0.01 && c.z > 50.0, "{c:?}");
        assert_eq!(c.observed, 0.6);
        let quiet = change(
            &series("lat", 0.1, 0.005, 100, &[0.101]),
            ONSET,
            &p,
            Context::default(),
        )
        .unwrap();
        assert!(
            !quiet.anomalous && quiet.z < 3.0 && quiet.rarity > 0.1,
            "{quiet:?}"
        );
        // A series that flaps between 0 and 100 in its history: 100 now is not rare.
        let mut flappy = series("avail", 0.0, 0.0, 100, &[100.0]);
        for (i, s) in flappy.samples.iter_mut().enumerate().take(100) {
            s.1 = if i % 10 == 0 { 100.0 } else { 0.0 };
        }
        let c = change(&flappy, ONSET, &p, Context::default()).unwrap();
        assert!(c.rarity > 0.05 && !c.anomalous, "{c:?}");
        // No sample after the onset: nothing to say.
        assert!(
            change(
                &series("lat", 0.1, 0.0, 100, &[]),
                ONSET,
                &p,
                Context::default()
            )
            .is_none()
        );
    }

    #[test]
    fn short_histories_are_judged_by_z_alone() {
        let p = Params::default();
        let c = change(
            &series("lat", 0.1, 0.0, 2, &[0.5]),
            2 * 60_000,
            &p,
            Context {
                short_ok: true,
                peer_noise: 0.0,
                end_ms: 0,
            },
        )
        .unwrap();
        assert_eq!(c.history, 2);
        assert!(c.anomalous, "{c:?}");
    }

    /// front → mid → db, front → other. The database slows down: the slowdown shows at
    /// mid and front too, and the cause is the deepest degraded entity.
    #[test]
    fn the_deepest_degraded_entity_below_the_symptom_ranks_first() {
        let entities = vec![
            entity("front", vec![series("lat", 0.2, 0.01, 100, &[0.9, 1.0])]),
            entity("mid", vec![series("lat", 0.1, 0.005, 100, &[0.8, 0.9])]),
            entity("db", vec![series("lat", 0.01, 0.001, 100, &[0.7, 0.8])]),
            entity("other", vec![series("lat", 0.05, 0.002, 100, &[0.05])]),
            // Unrelated to the symptom, with a huge change: not below it, ranked after.
            entity("elsewhere", vec![series("lat", 0.05, 0.002, 100, &[50.0])]),
        ];
        let calls = vec![
            ("front".to_string(), "mid".to_string()),
            ("mid".to_string(), "db".to_string()),
            ("front".to_string(), "other".to_string()),
        ];
        let r = ranked("front", Some("lat"), &entities, &calls, &[]);
        let order: Vec<&str> = r.iter().map(|r| r.entity.as_str()).collect();
        assert_eq!(order[0], "db", "{order:?}");
        assert!(r[0].candidate && r[0].anomalous);
        assert_eq!(r[0].path, ["front", "mid", "db"]);
        assert_eq!(r[0].explains, ["mid", "front"]);
        assert_eq!(r[0].confidence, 1.0);
        assert_eq!(r[0].evidence[0].metric, "lat");
        assert_eq!(*order.last().unwrap(), "elsewhere", "{order:?}");
        // The symptom is last among the entities below it.
        assert_eq!(order[3], "front", "{order:?}");
    }

    /// Two degraded leaves: the one that explains more degraded callers ranks first.
    #[test]
    fn a_shared_dependency_outranks_a_client_side_view() {
        let entities = vec![
            entity("site", vec![series("lat", 0.2, 0.01, 100, &[0.9])]),
            entity("lb", vec![series("lat", 0.02, 0.001, 100, &[5.0])]),
            entity("search", vec![series("lat", 0.02, 0.001, 100, &[0.6])]),
            entity("list", vec![series("lat", 0.03, 0.001, 100, &[0.7])]),
        ];
        let calls: Vec<(String, String)> = [
            ("site", "lb"),
            ("site", "search"),
            ("site", "list"),
            ("list", "search"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let r = ranked("site", Some("lat"), &entities, &calls, &[]);
        assert_eq!(r[0].entity, "search", "{r:#?}");
        assert_eq!(r[1].entity, "lb");
    }

    /// A callee slower by a little does not explain a caller slower by a lot; of two
    /// candidates that explain as much, the one observed from inside ranks first.
    #[test]
    fn small_changes_below_do_not_explain_large_ones_above() {
        let mut entities = vec![
            entity("site", vec![series("lat", 0.2, 0.01, 100, &[0.7])]),
            entity("pay", vec![series("lat", 0.2, 0.01, 100, &[0.6])]),
            entity("db", vec![series("lat", 0.005, 0.0001, 100, &[0.009])]),
            entity("lb", vec![series("lat", 0.2, 0.01, 100, &[0.65])]),
        ];
        entities[3].external = true;
        let calls: Vec<(String, String)> = [("site", "pay"), ("pay", "db"), ("site", "lb")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let r = ranked("site", Some("lat"), &entities, &calls, &[]);
        let order: Vec<&str> = r.iter().map(|r| r.entity.as_str()).collect();
        assert!(
            r.iter().all(|r| r.entity == "site" || r.anomalous),
            "{r:#?}"
        );
        assert_eq!(order[..3], ["pay", "lb", "db"], "{r:#?}");
        assert!(r[0].candidate && r[2].candidate);
    }

    /// Every instance of a service degraded alike: the service is the cause (a bad
    /// release), not one of its instances.
    #[test]
    fn a_fault_shared_by_every_instance_is_the_services() {
        let entities = vec![
            entity("front", vec![series("err", 0.01, 0.001, 100, &[0.2])]),
            entity("pay", vec![series("err", 0.01, 0.001, 100, &[0.3])]),
            entity("pay-1", vec![series("err", 0.01, 0.001, 100, &[0.3])]),
            entity("pay-2", vec![series("err", 0.01, 0.001, 100, &[0.3])]),
        ];
        let calls: Vec<(String, String)> = [("front", "pay"), ("pay", "pay-1"), ("pay", "pay-2")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let groups = vec![(
            "pay".to_string(),
            vec!["pay-1".to_string(), "pay-2".to_string()],
        )];
        let r = ranked("front", None, &entities, &calls, &groups);
        assert_eq!(r[0].entity, "pay", "{r:#?}");
        assert!(
            r[0].candidate && !r[1].candidate && !r[2].candidate,
            "{r:#?}"
        );
        // A standby member that serves nothing (a disaster-recovery replica) does not
        // make the fault its serving members'.
        let serving = |id: &str| {
            entity(
                id,
                vec![
                    series("err", 0.01, 0.001, 100, &[0.3]),
                    series("rate(requests_total)", 20.0, 1.0, 100, &[20.0]),
                ],
            )
        };
        let mut with_standby = vec![entities[0].clone(), entities[1].clone()];
        with_standby.extend([
            serving("pay-1"),
            serving("pay-2"),
            entity("pay-dr", vec![series("cpu", 0.02, 0.001, 100, &[0.02])]),
        ]);
        let mut calls = calls;
        calls.push(("pay".into(), "pay-dr".into()));
        let groups = vec![(
            "pay".to_string(),
            vec!["pay-1".into(), "pay-2".into(), "pay-dr".into()],
        )];
        let r = ranked("front", None, &with_standby, &calls, &groups);
        assert_eq!(r[0].entity, "pay", "{r:#?}");
        assert!(r[0].candidate && !r[1].candidate, "{r:#?}");
    }

    /// A service deployed just before is its own cause, not a callee whose different
    /// signal moved; a callee that accounts for its change in the same signal still is.
    #[test]
    fn a_deploy_just_before_weighs_against_a_different_signal_below() {
        let mut entities = vec![
            entity("front", vec![series("err", 0.01, 0.001, 100, &[0.2])]),
            entity("pay", vec![series("err", 0.01, 0.001, 100, &[0.3])]),
            entity("db", vec![series("conn", 10.0, 0.5, 100, &[40.0])]),
        ];
        entities[1].changed = true;
        let calls: Vec<(String, String)> = [("front", "pay"), ("pay", "db")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let problem = Problem {
            symptom: "front",
            symptom_metric: Some("err"),
            onset_ms: ONSET,
            entities: &entities,
            calls: &calls,
            groups: &[],
            places: &[],
        };
        let r = rank(&problem, &Params::default());
        assert_eq!(r[0].entity, "pay", "{r:#?}");
        // Without the deploy, the database below explains it.
        let mut unchanged = entities.clone();
        unchanged[1].changed = false;
        let problem = Problem {
            entities: &unchanged,
            ..problem
        };
        let r = rank(&problem, &Params::default());
        assert_eq!(r[0].entity, "db", "{r:#?}");
    }

    /// A retry storm: the overwhelmed service sends its database three times the queries;
    /// the database's volume rose because of its caller and explains nothing.
    #[test]
    fn more_traffic_to_a_callee_does_not_explain_its_caller() {
        let entities = vec![
            entity("front", vec![series("lat", 0.2, 0.01, 100, &[0.9])]),
            entity(
                "db",
                vec![series("rate(db_requests_total)", 10.0, 0.5, 100, &[30.0])],
            ),
        ];
        let calls = vec![("front".to_string(), "db".to_string())];
        let r = ranked("front", Some("lat"), &entities, &calls, &[]);
        assert_eq!(r[0].entity, "front", "{r:#?}");
        assert!(is_volume(
            "rate(traces_service_graph_request_client_seconds_count)"
        ));
        assert!(is_volume("rate(traces_span_metrics_calls_total)"));
        assert!(is_volume("requests"));
        assert!(!is_volume(
            "rate(traces_service_graph_request_failed_total)"
        ));
        assert!(!is_volume(
            "traces_service_graph_request_client_seconds_mean"
        ));
        assert!(!is_volume("latency_avg"));
    }

    /// A zone cut off: everything in it stops reporting at once; the same services'
    /// members in the other zone carry on. The zone (which reports nothing itself) is the
    /// cause; a node of the other zone with one quiet member is not.
    #[test]
    fn members_that_stop_together_name_the_place_they_share() {
        let up = |id: &str| entity(id, vec![series("cpu", 0.3, 0.01, 100, &[0.3; 5])]);
        let stopped = |id: &str| entity(id, vec![series("cpu", 0.3, 0.01, 101, &[])]);
        let entities = vec![
            entity("front", vec![series("err", 0.01, 0.001, 100, &[0.2; 5])]),
            entity("pay", vec![series("err", 0.01, 0.001, 100, &[0.2; 5])]),
            entity("list", vec![series("err", 0.01, 0.001, 100, &[0.1; 5])]),
            up("pay-a"),
            up("list-a"),
            up("node-a"),
            stopped("pay-b"),
            stopped("list-b"),
            stopped("node-b"),
            entity("zone-a", vec![]),
            entity("zone-b", vec![]),
        ];
        let pairs = [
            ("front", "pay"),
            ("front", "list"),
            ("pay", "pay-a"),
            ("pay", "pay-b"),
            ("list", "list-a"),
            ("list", "list-b"),
            ("pay-a", "node-a"),
            ("list-a", "node-a"),
            ("pay-b", "node-b"),
            ("list-b", "node-b"),
            ("node-a", "zone-a"),
            ("node-b", "zone-b"),
        ];
        let calls: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let place =
            |p: &str, ms: &[&str]| (p.to_string(), ms.iter().map(|m| m.to_string()).collect());
        let places = vec![
            place("zone-a", &["node-a", "pay-a", "list-a"]),
            place("zone-b", &["node-b", "pay-b", "list-b"]),
            place("node-a", &["pay-a", "list-a"]),
            place("node-b", &["pay-b", "list-b"]),
        ];
        let problem = Problem {
            symptom: "front",
            symptom_metric: None,
            onset_ms: ONSET,
            entities: &entities,
            calls: &calls,
            groups: &[],
            places: &places,
        };
        let r = rank(&problem, &Params::default());
        assert_eq!(r[0].entity, "zone-b", "{r:#?}");
        assert!(r[0].candidate && r[0].anomalous);
        // Its members and, through them, the services that call them.
        for m in ["node-b", "pay-b", "list-b", "pay", "list", "front"] {
            assert!(r[0].explains.iter().any(|e| e == m), "{r:#?}");
        }
        for m in ["node-b", "pay-b", "list-b"] {
            let x = r.iter().find(|x| x.entity == m).unwrap();
            assert!(!x.candidate, "{x:#?}");
            assert!(x.evidence.iter().any(|c| c.stopped), "{x:#?}");
        }
        assert!(r[0].evidence.iter().all(|c| c.stopped), "{r:#?}");
        let zone_a = r.iter().find(|x| x.entity == "zone-a").unwrap();
        assert!(!zone_a.candidate && !zone_a.anomalous, "{zone_a:#?}");
        // With one member of zone b still reporting, the zone is no cause.
        let mut partly = entities.clone();
        partly[7] = up("list-b");
        let problem = Problem {
            entities: &partly,
            ..problem
        };
        let r = rank(&problem, &Params::default());
        assert!(
            r.iter()
                .all(|x| !(x.entity.starts_with("zone") && x.candidate)),
            "{r:#?}"
        );
    }

    /// A series silent since the onset for more than three of its steps has stopped; one
    /// whose history has such gaps is not rare; one silent for less has not.
    #[test]
    fn a_series_silent_since_the_onset_has_stopped() {
        let p = Params::default();
        let ctx = |end_ms| Context {
            end_ms,
            ..Context::default()
        };
        let s = series("cpu", 0.3, 0.01, 101, &[]);
        let c = stopped(&s, ONSET, &p, ctx(ONSET + 5 * 60_000)).unwrap();
        assert!(c.stopped && c.anomalous && c.z == 5.0, "{c:?}");
        assert!(stopped(&s, ONSET, &p, ctx(ONSET + 2 * 60_000)).is_none());
        // Stopped long before the onset: not this problem's.
        let old = series("cpu", 0.3, 0.01, 50, &[]);
        assert!(stopped(&old, ONSET, &p, ctx(ONSET + 5 * 60_000)).is_none());
        // A history full of gaps as long: not rare.
        let mut gappy = s.clone();
        gappy
            .samples
            .retain(|(t, _)| (t / 60_000) % 10 < 4 || *t >= ONSET - 60_000);
        let c = stopped(&gappy, ONSET, &p, ctx(ONSET + 5 * 60_000)).unwrap();
        assert!(c.stopped && !c.anomalous, "{c:?}");
    }

    /// A database slower for one of its two callers only (that caller waits for its own
    /// exhausted connection pool): the caller is the cause, not the database.
    #[test]
    fn a_dependency_changed_for_one_caller_only_is_that_callers_problem() {
        let per_client = |client: &str, after: &[f64]| Series {
            labels: format!("client=\"{client}\",server=\"db\""),
            ..series("client_seconds_mean", 0.01, 0.001, 100, after)
        };
        let entities = vec![
            entity("front", vec![series("lat", 0.2, 0.01, 100, &[0.9])]),
            entity("pay", vec![series("lat", 0.1, 0.005, 100, &[0.7])]),
            entity("list", vec![series("lat", 0.1, 0.005, 100, &[0.1])]),
            entity(
                "db",
                vec![per_client("pay", &[0.16]), per_client("list", &[0.01])],
            ),
        ];
        let calls: Vec<(String, String)> = [
            ("front", "pay"),
            ("front", "list"),
            ("pay", "db"),
            ("list", "db"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let r = ranked("front", None, &entities, &calls, &[]);
        assert_eq!(r[0].entity, "pay", "{r:#?}");
        // The other caller's view barely moved (rare on its smooth series, not telling).
        let mut barely = entities.clone();
        barely[3].series[1] = per_client("list", &[0.0111]);
        let r = ranked("front", None, &barely, &calls, &[]);
        assert_eq!(r[0].entity, "pay", "{r:#?}");
        let db = r.iter().find(|x| x.entity == "db").unwrap();
        assert!(
            db.evidence
                .iter()
                .any(|c| c.labels.contains("list") && c.anomalous && c.z < 5.0),
            "{db:#?}"
        );
        // Both callers see it: the database is the cause.
        let mut both = entities.clone();
        both[3].series[1] = per_client("list", &[0.16]);
        let r = ranked("front", None, &both, &calls, &[]);
        assert_eq!(r[0].entity, "db", "{r:#?}");
        assert_eq!(client_of("client=\"a\",server=\"b\""), Some("a"));
        assert_eq!(client_of("x_client=\"a\""), None);
    }

    /// The symptom's own large change, and a callee's barely-noticed change in another
    /// signal (rare on its smooth series, small against its noise): the callee explains
    /// nothing, and a candidate that explains nothing ranks after the symptom.
    #[test]
    fn a_small_change_below_neither_explains_nor_outranks_the_symptom() {
        let mut pool = series("pool", 0.345, 0.0, 100, &[0.349]);
        // Smooth: a tiny wobble in its history.
        for (i, s) in pool.samples.iter_mut().enumerate().take(100) {
            s.1 += 0.0001 * (i % 2) as f64;
        }
        let entities = vec![
            entity("front", vec![series("lat", 0.2, 0.01, 100, &[2.0])]),
            entity("other", vec![pool]),
        ];
        let calls = vec![("front".to_string(), "other".to_string())];
        let r = ranked("front", Some("lat"), &entities, &calls, &[]);
        let other = r.iter().find(|x| x.entity == "other").unwrap();
        assert!(other.anomalous && other.z < 5.0, "{other:#?}");
        assert_eq!(r[0].entity, "front", "{r:#?}");
        assert!(r[0].candidate);
    }

    /// Nothing below the symptom changed: the symptom is its own cause.
    #[test]
    fn the_symptom_is_the_cause_when_nothing_below_it_changed() {
        let entities = vec![
            entity("front", vec![series("lat", 0.2, 0.01, 100, &[0.9])]),
            entity("db", vec![series("lat", 0.01, 0.001, 100, &[0.01])]),
        ];
        let calls = vec![("front".to_string(), "db".to_string())];
        let r = ranked("front", Some("lat"), &entities, &calls, &[]);
        assert_eq!(r[0].entity, "front");
        assert!(r[0].candidate);
    }
    /// A full disk: the service's instance fails, the pod under it reports nothing of its
    /// own, the node's filesystem filled. The degradation is followed through the pod to
    /// the node. The same shape with the node's CPU risen as much as its pod's own CPU
    /// (the pod working harder) is the pod's doing, not the node's.
    #[test]
    fn a_node_below_a_silent_pod_explains_unless_its_pod_did_it() {
        let calls: Vec<(String, String)> = [
            ("svc", "inst"),
            ("inst", "pod"),
            ("pod", "node"),
            ("node", "zone"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let places = vec![
            (
                "node".to_string(),
                vec!["pod".to_string(), "inst".to_string()],
            ),
            (
                "zone".to_string(),
                vec!["node".to_string(), "pod".to_string(), "inst".to_string()],
            ),
        ];
        let run = |entities: &[Entity]| {
            let problem = Problem {
                symptom: "svc",
                symptom_metric: Some("err"),
                onset_ms: ONSET,
                entities,
                calls: &calls,
                groups: &[],
                places: &places,
            };
            rank(&problem, &Params::default())
        };
        let err = || series("err", 0.01, 0.001, 100, &[0.25; 3]);
        let full = run(&[
            entity("svc", vec![err()]),
            entity("inst", vec![err()]),
            entity("pod", vec![]),
            entity(
                "node",
                vec![series(
                    "system_filesystem_utilization",
                    0.55,
                    0.005,
                    100,
                    &[1.0; 3],
                )],
            ),
        ]);
        assert_eq!(full[0].entity, "node", "{full:#?}");
        assert_eq!(full[0].explains, ["inst", "svc"], "{full:#?}");
        assert!(!full.iter().any(|r| r.entity == "pod" && r.candidate));
        let busy = run(&[
            entity("svc", vec![err()]),
            entity(
                "inst",
                vec![
                    err(),
                    series("container_cpu_utilization", 0.3, 0.01, 100, &[0.9; 3]),
                ],
            ),
            entity("pod", vec![]),
            entity(
                "node",
                vec![series(
                    "system_cpu_utilization",
                    0.3,
                    0.005,
                    100,
                    &[0.45; 3],
                )],
            ),
        ]);
        assert_eq!(busy[0].entity, "inst", "{busy:#?}");
        assert!(
            busy.iter()
                .any(|r| r.entity == "node" && r.explains.is_empty())
        );
    }
}
