//! The simulator in real time: data timestamps are the wall clock (so rules, incidents and
//! root cause see it as live data), seasonality runs `speed` times faster, faults come on a
//! schedule and on command.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use serde_json::{Value, json};

use crate::estate::{DepKind, Estate};
use crate::faults::{self, Fault, FaultKind};
use crate::sim::{Rng, Sim};

#[derive(Debug, Clone)]
pub struct Options {
    /// The server's main HTTP API (`http://127.0.0.1:7070`).
    pub http: String,
    /// Its OTLP/HTTP receiver (`http://127.0.0.1:4318`).
    pub otlp: String,
    pub seed: u64,
    /// Simulated time runs this many times faster than the clock (for the daily and weekly
    /// traffic curves).
    pub speed: f64,
    /// Copies of the finance cloud (1: 13 services; the seed's 1,000 systems ≈ 77 copies).
    pub copies: usize,
    pub tick: Duration,
    /// Scheduled faults: the first after this long, then one every `fault_every`, each
    /// lasting `fault_for`; `None` injects only on command.
    pub first_fault_after: Option<Duration>,
    pub fault_every: Duration,
    pub fault_for: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            http: "http://127.0.0.1:7070".into(),
            otlp: "http://127.0.0.1:4318".into(),
            seed: 1,
            speed: 10.0,
            copies: 1,
            tick: Duration::from_secs(5),
            first_fault_after: Some(Duration::from_secs(180)),
            fault_every: Duration::from_secs(420),
            fault_for: Duration::from_secs(180),
        }
    }
}

/// Faults in force and past: what the simulator applies and the ground truth it keeps.
pub struct Control {
    pub estate: Estate,
    faults: Mutex<Vec<Fault>>,
    rng: Mutex<Rng>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Control {
    pub fn new(estate: Estate, seed: u64) -> Arc<Self> {
        Arc::new(Control {
            estate,
            faults: Mutex::new(Vec::new()),
            rng: Mutex::new(Rng::new(seed ^ 0xfa17)),
        })
    }

    /// Injects a fault from now on for `duration`; its target is checked or picked.
    pub fn inject(
        &self,
        kind: FaultKind,
        target: Option<&str>,
        duration: Duration,
    ) -> Result<Fault, String> {
        self.inject_at(kind, target, now_ms(), duration)
    }

    /// Injects a fault from `start` (ms; simulated time for a driver that has one).
    pub fn inject_at(
        &self,
        kind: FaultKind,
        target: Option<&str>,
        start: i64,
        duration: Duration,
    ) -> Result<Fault, String> {
        let pick = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_u64();
        let target = faults::target(&self.estate, kind, target, pick)?;
        let mut all = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let fault = Fault {
            id: all.len() as u64 + 1,
            kind,
            root_cause: faults::root_cause(&self.estate, kind, &target),
            target,
            start_ms: start,
            end_ms: start + duration.as_millis() as i64,
            right_actions: kind.right_actions(),
        };
        tracing::info!(kind = kind.as_str(), target = %fault.target, root_cause = %fault.root_cause, "demo: fault injected");
        all.push(fault.clone());
        Ok(fault)
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The inventory: applications with their services, owners and criticality; the platform's
/// database, cache and queue with theirs.
pub fn inventory(e: &Estate) -> Value {
    let mut entities: Vec<Value> = e
        .apps
        .iter()
        .map(|a| {
            json!({"kind": "application", "name": a.name,
                   "owner": {"name": a.owner, "contact": a.contact},
                   "criticality": if a.core { "core" } else { "normal" },
                   "services": a.services})
        })
        .collect();
    for d in &e.deps {
        let kind = match d.kind {
            DepKind::Database => "database",
            DepKind::Cache => "cache",
            DepKind::Queue => "queue",
        };
        entities.push(json!({"kind": kind, "name": d.name,
                             "owner": {"name": d.owner, "contact": d.contact}}));
    }
    for n in &e.nodes {
        entities.push(json!({"id": format!("node:{}/{}", e.cluster, n.name),
                             "owner": {"name": "Platform team",
                                       "contact": "platform@finance-cloud.example.gov"}}));
    }
    json!({"entities": entities})
}

/// Declares the estate's inventory (`inventory`) to the server at `http`.
pub async fn declare_inventory(
    client: &reqwest::Client,
    http: &str,
    estate: &Estate,
) -> anyhow::Result<()> {
    let r = client
        .put(format!("{http}/api/v1/topology/entities"))
        .json(&inventory(estate))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "declaring the inventory: {}",
        r.status()
    );
    Ok(())
}

/// Posts one OTLP/HTTP protobuf request; a refusal is an error with the server's reason.
pub async fn post_otlp(client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let r = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    if !status.is_success() {
        anyhow::bail!(
            "POST {url}: {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Announces each bad deploy that has started by `t`, once, as the pipeline that rolled it
/// out would: a deploy event on its service, stamped with the fault's start; and, once it
/// has ended, its rollback, stamped with the fault's end.
pub async fn announce_deploys(
    client: &reqwest::Client,
    http: &str,
    faults: &[Fault],
    t: i64,
    announced: &mut std::collections::HashSet<u64>,
) -> anyhow::Result<()> {
    for f in faults
        .iter()
        .filter(|f| f.kind == FaultKind::BadDeploy && f.start_ms <= t)
    {
        // `(version, previous, when, what)`; the fault's id with the top bit set marks
        // its rollback as announced.
        let mut events = Vec::new();
        if announced.insert(f.id) {
            events.push(("1.5.0", "1.4.2", f.start_ms, "release 1.5.0 rolled out"));
        }
        if f.end_ms <= t && announced.insert(f.id | 1 << 63) {
            events.push((
                "1.4.2",
                "1.5.0",
                f.end_ms,
                "release 1.5.0 rolled back to 1.4.2",
            ));
        }
        for (version, previous, time, description) in events {
            client
                .post(format!("{http}/api/v1/events"))
                .json(&json!({"service": f.target, "version": version,
                              "previous_version": previous,
                              "time": time as f64 / 1000.0,
                              "description": description}))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}

/// Runs until `stop` changes: declares the inventory, then every tick sends the estate's
/// signals and applies the fault schedule.
pub async fn run(
    opts: Options,
    control: Arc<Control>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    // Wait for the server.
    loop {
        if let Ok(r) = client.get(format!("{}/readyz", opts.http)).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    declare_inventory(&client, &opts.http, &control.estate).await?;
    let mut sim = Sim::new(control.estate.clone(), opts.seed);
    let started = now_ms();
    let mut next_fault = opts
        .first_fault_after
        .map(|d| started + d.as_millis() as i64);
    let mut kinds = FaultKind::ALL.to_vec();
    let mut ticker = tokio::time::interval(opts.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut announced = std::collections::HashSet::new();
    let mut k = (opts.seed as usize) % kinds.len();
    kinds.rotate_left(k);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return Ok(()),
        }
        let t = now_ms();
        if let Some(at) = next_fault
            && t >= at
        {
            let kind = kinds[k % kinds.len()];
            k += 1;
            if let Err(e) = control.inject(kind, None, opts.fault_for) {
                tracing::warn!(error = %e, "demo: no fault injected");
            }
            next_fault = Some(at + opts.fault_every.as_millis() as i64);
        }
        let sim_ms = started + ((t - started) as f64 * opts.speed) as i64;
        let faults = control.faults();
        if let Err(e) = announce_deploys(&client, &opts.http, &faults, t, &mut announced).await {
            tracing::warn!(error = %format!("{e:#}"), "demo: announcing a deploy");
        }
        let batch = sim.tick(t, opts.tick.as_millis() as i64, sim_ms, &faults);
        for (path, body) in [
            ("/v1/traces", batch.traces.encode_to_vec()),
            ("/v1/metrics", batch.metrics.encode_to_vec()),
            ("/v1/logs", batch.logs.encode_to_vec()),
        ] {
            if let Err(e) = post_otlp(&client, &format!("{}{path}", opts.otlp), body).await {
                tracing::warn!(error = %format!("{e:#}"), "demo: sending");
            }
        }
    }
}
