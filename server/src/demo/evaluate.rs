//! `sightline demo evaluate`: the demo's faults against its ground truth, in simulated time.
//!
//! A whole server runs in-process on loopback with a fresh data directory, and the
//! simulated finance cloud sends it real OTLP through its public OTLP/HTTP port, as `sightline
//! demo` does; but the data's clock is simulated. It starts `--warmup` plus one `--every` per
//! fault before the wall clock and advances a tick (5 s) at a time as fast as the server
//! takes the data. The server runs its parts that keep time (`serve::Embed::drive`) at the
//! simulated instants, in the order the clock would: the span connectors export every 15 s,
//! the demo's rules are evaluated every 15 s, the incident round runs every 10 s and
//! whenever an alert starts firing, and the alert manager flushes every tick. Nothing else differs from `sightline demo`: the same
//! rules, the same grouping, root cause and advice, the same routing through an alert
//! manager whose route tree sends each `SightlineIncident` alert to its owner (grouped by
//! incident, resolved notifications on), with delivery replaced by counting.
//!
//! One fault at a time (kinds in turn from the seed, targets drawn from the seed), each
//! lasting `--for` and followed by quiet until the next, so that every incident opened is
//! either the fault's or a false one. Per fault: the first incident opened from its start
//! to `GRACE` after its end is its detection (the delay from the fault's start); its
//! causes as they stand when the run ends (analysed at opening and each minute for 15 min)
//! score top-1 and top-3 against the fault's root cause; its first advice scores the
//! action against the kinds that help. Incidents opened outside every fault's window are
//! false; their rate is per simulated day of time outside those windows.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message;
use serde_json::{Value, json};
use sightline_demo::estate::Estate;
use sightline_demo::faults::{Fault, FaultKind};
use sightline_demo::run::{Control, announce_deploys, declare_inventory, post_otlp};
use sightline_demo::sim::Sim;
use sightline_incidents::Incident;
use sightline_model::TenantId;

use crate::config::Config;
use crate::serve::{Driven, Embed};

/// A fault's symptoms (1-minute rates, `for: 30s`) outlast it by about a minute.
const GRACE_MS: i64 = 3 * 60_000;
const TICK_MS: i64 = 5_000;
const RULES_EVERY_MS: i64 = 15_000;
const INCIDENTS_EVERY_MS: i64 = 10_000;
const FLUSH_EVERY_MS: i64 = 15_000;
/// The traffic curves start on a Monday at 06:00 of the simulator's calendar, whatever the
/// wall clock, so that a seed gives the same run on any day (the first day of 1970 was a
/// Thursday: day 4 is a Monday).
const CURVES_FROM_MS: i64 = 4 * 86_400_000 + 6 * 3_600_000;

/// The route tree of the evaluation: every incident's alert to its owner, one group per
/// incident; the rules' own alerts only feed the incidents. The webhook is never called
/// (delivery is counted, not made).
const ROUTES: &str = r#"route:
  receiver: none
  routes:
    - matchers: ['alertname="SightlineIncident"']
      receiver: owners
      group_by: [incident]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
receivers:
  - name: none
  - name: owners
    webhook_configs:
      - url: http://127.0.0.1:9/owners
        send_resolved: true
"#;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// Faults to inject, one after another (kinds in turn, targets at random).
    #[arg(long, default_value_t = 100)]
    pub faults: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long each fault lasts.
    #[arg(long = "for", default_value = "4m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// One fault starts this often (what is left after the fault is quiet time).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Normal traffic before the first fault (the rules compare with the last half hour).
    #[arg(long, default_value = "45m", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Copies of the finance cloud.
    #[arg(long, default_value_t = 1)]
    pub copies: usize,
    /// Where the run's server keeps its data (default: a new directory under the system's
    /// temporary directory, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// What the driver saw.
struct Run {
    faults: Vec<Fault>,
    incidents: BTreeMap<String, Incident>,
    /// Notifications (with alerts in them) per incident id.
    notifications: HashMap<String, usize>,
    start_ms: i64,
    end_ms: i64,
}

pub fn evaluate(args: EvaluateArgs, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    if args.faults == 0 {
        bail!("--faults must be at least 1");
    }
    if args.duration >= args.every {
        bail!("--for must be shorter than --every (faults come one at a time)");
    }
    let (dir, remove) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "sightline-evaluate-{}-{}",
                std::process::id(),
                args.seed
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_and_score(&args, &dir, out);
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_and_score(
    args: &EvaluateArgs,
    dir: &std::path::Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let rules = dir.join("demo-rules.yml");
    std::fs::write(&rules, super::RULES)?;
    let routes = dir.join("alertmanager.yml");
    std::fs::write(&routes, ROUTES)?;
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.server.http_addr = loopback(0);
    config.server.otlp_grpc_addr = loopback(0);
    config.server.otlp_http_addr = loopback(0);
    config.server.syslog_addr = loopback(0);
    // The server's scrape of itself is stamped by the wall clock: in the same store as the
    // simulated past, it would move the head's time on and seal the past into blocks.
    config.self_scrape.enabled = false;
    config.alerting.rule_files = vec![rules];
    config.alerting.alertmanager_config = Some(routes);
    config.alerting.evaluation_interval = Duration::from_millis(RULES_EVERY_MS as u64);
    config.incidents.onset_lead = Duration::from_secs(120);
    config.incidents.keep_resolved = 1_000_000;
    config.validate()?;

    let rt = crate::serve::runtime()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
    let (drive_tx, drive_rx) = tokio::sync::oneshot::channel();
    let embed = Embed {
        router: axum::Router::new(),
        listening: listening_tx,
        stop: Some(stop_rx),
        drive: Some(drive_tx),
    };
    let server = rt.spawn(crate::serve::run(config, Some(embed)));
    let run = rt.block_on(async {
        let (http, otlp) = listening_rx
            .await
            .context("the server stopped before listening")?;
        let driven = drive_rx.await.context("the server gave nothing to drive")?;
        drive(args, http, otlp, driven).await
    });
    let _ = stop_tx.send(true);
    let stopped = rt.block_on(server);
    let run = run?;
    stopped.context("server task")??;
    let report = score(&run);
    print_report(out, &report)?;
    Ok(())
}

/// Runs the simulated time through the server and collects what it did.
async fn drive(
    args: &EvaluateArgs,
    http: SocketAddr,
    otlp: SocketAddr,
    driven: Driven,
) -> anyhow::Result<Run> {
    let estate = Estate::finance(args.copies);
    let control = Control::new(estate.clone(), args.seed);
    let client = reqwest::Client::new();
    declare_inventory(&client, &format!("http://{http}"), &estate).await?;

    // The simulated span ends a minute before the wall clock (nothing from the future).
    let every = args.every.as_millis() as i64;
    let total = args.warmup.as_millis() as i64 + every * args.faults as i64;
    let now = crate::now_ns() / 1_000_000 - 60_000;
    let end_ms = now - now.rem_euclid(RULES_EVERY_MS);
    let start_ms = end_ms - total;
    let mut kinds = FaultKind::ALL.to_vec();
    let first = (args.seed as usize) % kinds.len();
    kinds.rotate_left(first);
    for i in 0..args.faults {
        let at = start_ms + args.warmup.as_millis() as i64 + every * i as i64;
        control
            .inject_at(kinds[i % kinds.len()], None, at, args.duration)
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let faults = control.faults();

    let Driven {
        rules,
        rule_deps,
        alertmanager,
        incidents,
        connectors,
    } = driven;
    let connectors = connectors.context("span metrics are off: the demo's rules need them")?;
    let funcs = crate::rules::template_funcs(&rules, &rule_deps);
    let tenant = TenantId::default_tenant();
    let mut sim = Sim::new(estate, args.seed);
    let mut seen: BTreeMap<String, Incident> = BTreeMap::new();
    let mut notifications: HashMap<String, usize> = HashMap::new();
    let mut announced = std::collections::HashSet::new();
    let urls = [
        format!("http://{otlp}/v1/traces"),
        format!("http://{otlp}/v1/metrics"),
        format!("http://{otlp}/v1/logs"),
    ];
    let wall = std::time::Instant::now();
    let mut alerts_seen = alertmanager.new_alerts();
    let mut t = start_ms;
    while t <= end_ms {
        announce_deploys(
            &client,
            &format!("http://{http}"),
            &faults,
            t,
            &mut announced,
        )
        .await?;
        let batch = sim.tick(t, TICK_MS, CURVES_FROM_MS + (t - start_ms), &faults);
        for (url, body) in urls.iter().zip([
            batch.traces.encode_to_vec(),
            batch.metrics.encode_to_vec(),
            batch.logs.encode_to_vec(),
        ]) {
            post_otlp(&client, url, body).await?;
        }
        if t % FLUSH_EVERY_MS == 0 {
            connectors.flush_at(t as u64 * 1_000_000).await;
        }
        if t % RULES_EVERY_MS == 0 {
            crate::rules::evaluate_due(&rules, &rule_deps, &funcs, t).await;
        }
        let at = chrono::DateTime::from_timestamp_millis(t).unwrap_or_default();
        // The incident round runs on its interval and, as in the server, at once when an
        // alert starts firing.
        let news = alertmanager.new_alerts();
        if t % INCIDENTS_EVERY_MS == 0 || news != alerts_seen {
            alerts_seen = news;
            let rt = incidents.clone();
            tokio::task::spawn_blocking(move || rt.tick(at)).await?;
            for inc in incidents.list(&tenant, None) {
                seen.insert(inc.id.clone(), inc);
            }
        }
        let am = alertmanager.clone();
        for (_, n) in tokio::task::spawn_blocking(move || am.flush_undelivered(at)).await? {
            if let Some(id) = n.data.group_labels.get("incident")
                && !n.data.alerts.is_empty()
            {
                *notifications.entry(id.clone()).or_default() += 1;
            }
        }
        if (t - start_ms) % 3_600_000 == 0 && t > start_ms {
            eprintln!(
                "sightline demo evaluate: {} of {} simulated hours in {:.0} s, {} incidents",
                (t - start_ms) / 3_600_000,
                total / 3_600_000,
                wall.elapsed().as_secs_f64(),
                seen.len()
            );
        }
        t += TICK_MS;
    }
    Ok(Run {
        faults,
        incidents: seen,
        notifications,
        start_ms,
        end_ms,
    })
}

#[derive(Default)]
struct Tally {
    faults: usize,
    detected: usize,
    delays_ms: Vec<i64>,
    top1: usize,
    top3: usize,
    action: usize,
    /// Incidents of these faults, and their notifications.
    incidents: usize,
    notifications: usize,
    /// Incidents beyond the first during one fault (one fault split in several).
    split: usize,
}

struct Report {
    kinds: BTreeMap<&'static str, Tally>,
    all: Tally,
    false_incidents: Vec<(String, i64, String)>,
    quiet_days: f64,
    simulated_hours: f64,
    misses: Vec<String>,
}

fn score(run: &Run) -> Report {
    let mut kinds: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    let mut claimed: std::collections::HashSet<&str> = Default::default();
    let mut misses = Vec::new();
    for f in &run.faults {
        let window = f.start_ms..=f.end_ms + GRACE_MS;
        let mine: Vec<&Incident> = run
            .incidents
            .values()
            .filter(|i| window.contains(&i.opened_at))
            .collect();
        for i in &mine {
            claimed.insert(&i.id);
        }
        for tally in [kinds.entry(f.kind.as_str()).or_default(), &mut all] {
            tally.faults += 1;
            tally.incidents += mine.len();
            tally.split += mine.len().saturating_sub(1);
            tally.notifications += mine
                .iter()
                .map(|i| run.notifications.get(&i.id).copied().unwrap_or(0))
                .sum::<usize>();
        }
        let Some(first) = mine.iter().min_by_key(|i| i.opened_at) else {
            misses.push(format!(
                "fault {} {} on {}: no incident",
                f.id,
                f.kind.as_str(),
                f.root_cause
            ));
            continue;
        };
        let rank = first
            .causes
            .iter()
            .position(|c| c.entity == f.root_cause)
            .map(|r| r + 1);
        let action = first.advice.first().map(|a| a.kind.as_str());
        let right = action.is_some_and(|a| f.right_actions.contains(&a));
        if rank != Some(1) || !right {
            misses.push(format!(
                "fault {} {} on {}: {} ranked {}, causes [{}], first action {}",
                f.id,
                f.kind.as_str(),
                f.root_cause,
                first.id,
                rank.map_or("-".to_string(), |r| r.to_string()),
                first
                    .causes
                    .iter()
                    .take(3)
                    .map(|c| c.entity.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                action.unwrap_or("none")
            ));
        }
        for tally in [kinds.entry(f.kind.as_str()).or_default(), &mut all] {
            tally.detected += 1;
            tally.delays_ms.push(first.opened_at - f.start_ms);
            tally.top1 += usize::from(rank == Some(1));
            tally.top3 += usize::from(rank.is_some_and(|r| r <= 3));
            tally.action += usize::from(right);
        }
    }
    let false_incidents: Vec<(String, i64, String)> = run
        .incidents
        .values()
        .filter(|i| !claimed.contains(i.id.as_str()))
        .map(|i| (i.id.clone(), i.opened_at, i.title.clone()))
        .collect();
    let in_windows: i64 = run
        .faults
        .iter()
        .map(|f| f.end_ms + GRACE_MS - f.start_ms)
        .sum();
    let quiet_ms = (run.end_ms - run.start_ms - in_windows).max(1);
    Report {
        kinds,
        all,
        false_incidents,
        quiet_days: quiet_ms as f64 / 86_400_000.0,
        simulated_hours: (run.end_ms - run.start_ms) as f64 / 3_600_000.0,
        misses,
    }
}

fn median(v: &[i64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

fn tally_json(t: &Tally) -> Value {
    let share = |n: usize| {
        if t.faults == 0 {
            0.0
        } else {
            n as f64 / t.faults as f64
        }
    };
    let delay = median(&t.delays_ms).map(|d| d / 1000.0);
    json!({
        "faults": t.faults,
        "detected": share(t.detected),
        "median_detection_s": delay,
        "median_detection_intervals": delay.map(|d| d / (RULES_EVERY_MS as f64 / 1000.0)),
        "top1": share(t.top1),
        "top3": share(t.top3),
        "first_action_right": share(t.action),
        "notifications_per_incident": if t.incidents == 0 { 0.0 } else { t.notifications as f64 / t.incidents as f64 },
        "incidents_per_fault": share(t.incidents),
        "split_incidents": t.split,
    })
}

fn print_report(out: &mut dyn std::io::Write, r: &Report) -> anyhow::Result<()> {
    for m in &r.misses {
        writeln!(out, "miss: {m}")?;
    }
    for (id, at, title) in &r.false_incidents {
        let at = chrono::DateTime::from_timestamp_millis(*at).unwrap_or_default();
        writeln!(out, "false incident: {id} at {} {title}", at.to_rfc3339())?;
    }
    writeln!(
        out,
        "{:<16} {:>6} {:>8} {:>10} {:>6} {:>6} {:>7} {:>8} {:>6}",
        "kind", "faults", "detected", "delay (s)", "top-1", "top-3", "action", "notif/inc", "split"
    )?;
    let line = |name: &str, t: &Tally| {
        let v = tally_json(t);
        format!(
            "{:<16} {:>6} {:>8.2} {:>10} {:>6.2} {:>6.2} {:>7.2} {:>8.2} {:>6}",
            name,
            t.faults,
            v["detected"].as_f64().unwrap_or(0.0),
            v["median_detection_s"]
                .as_f64()
                .map_or("-".to_string(), |d| format!("{d:.0}")),
            v["top1"].as_f64().unwrap_or(0.0),
            v["top3"].as_f64().unwrap_or(0.0),
            v["first_action_right"].as_f64().unwrap_or(0.0),
            v["notifications_per_incident"].as_f64().unwrap_or(0.0),
            t.split
        )
    };
    for (kind, t) in &r.kinds {
        writeln!(out, "{}", line(kind, t))?;
    }
    writeln!(out, "{}", line("all", &r.all))?;
    let per_day = r.false_incidents.len() as f64 / r.quiet_days;
    writeln!(
        out,
        "false incidents: {} in {:.1} simulated hours outside faults ({per_day:.2} per day); {:.1} simulated hours in all",
        r.false_incidents.len(),
        r.quiet_days * 24.0,
        r.simulated_hours
    )?;
    let kinds: serde_json::Map<String, Value> = r
        .kinds
        .iter()
        .map(|(k, t)| (k.to_string(), tally_json(t)))
        .collect();
    let mut all = tally_json(&r.all);
    all["false_incidents"] = json!(r.false_incidents.len());
    all["false_incidents_per_day"] = json!(per_day);
    all["simulated_hours"] = json!(r.simulated_hours);
    all["kinds"] = Value::Object(kinds);
    writeln!(out, "{}", serde_json::to_string(&all)?)?;
    Ok(())
}
