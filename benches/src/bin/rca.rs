//! Root cause on real fault data (issue 15): every case of a data set in the layout of
//! `../shared/datasets/rca/README.md` is loaded into a fresh server through the public
//! paths — the call graph through the topology inventory API (`PUT
//! /api/v1/topology/entities`, `…/relations`), every metric column through Prometheus
//! remote_write as one series `{__name__="<metric>", entity="<entity>"}` with the samples at
//! their own timestamps — and `GET /api/v1/rca` is asked for the causes of the case's
//! symptom at its fault time, with the case's last row as "now". The case's `root_cause`
//! (and `source`) never reach the server: they only score the answer.
//!
//! Scores (RCAEval's definitions): AC@k, the share of cases whose root cause is among the
//! first k entities; Avg@5, the mean of AC@1..AC@5; overall, per data set and per
//! `fault_kind`. Besides the server's defaults, a small grid of the method's parameters is
//! asked on every case and scored **leave one data set out**: for each data set, the
//! parameters best on the others (by Avg@5, then AC@1) are scored on it. The last line is
//! JSON. With `--out OUT`, `OUT/<dataset>/<case>.json` is `{"ranking": [ids…]}` (defaults)
//! for any scorer to check.
//!
//! ```sh
//! cargo build --release -p sightline-server -p sightline-benches
//! cargo run --release -p sightline-benches --bin rca -- --data ../shared/datasets/rca --out /tmp/rca-out
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use sightline_benches::process::{ServerProcess, percentile};
use sightline_benches::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

#[derive(Parser)]
struct Args {
    /// The data set root: every directory under it is a data set of case directories.
    #[arg(long, default_value = "../shared/datasets/rca")]
    data: PathBuf,
    /// Where to write each case's ranking (`OUT/<dataset>/<case>.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server binary.
    #[arg(long, default_value = "target/release/sightline")]
    bin: PathBuf,
    /// Scratch directory for the servers' data.
    #[arg(long, default_value = "/tmp/sightline-rca-bench")]
    work: PathBuf,
    /// Only cases whose `dataset/case` contains this.
    #[arg(long)]
    only: Option<String>,
    /// Where to write the server's whole answer per case (`DIR/<dataset>/<case>.json`).
    #[arg(long)]
    answers: Option<PathBuf>,
    /// Skip the parameter grid (defaults only).
    #[arg(long)]
    no_grid: bool,
}

/// One case as read from disk; `root_cause` is for scoring only.
struct Case {
    dataset: String,
    name: String,
    dir: PathBuf,
    fault_time: Option<f64>,
    symptom: Option<String>,
    symptom_metric: Option<String>,
    root_cause: String,
    fault_kind: String,
}

/// The method's parameters asked (`None`: the server's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Grid {
    z: f64,
    alpha: f64,
    resolution: f64,
}

fn grid() -> Vec<Grid> {
    let mut out = Vec::new();
    for z in [3.0, 5.0] {
        for alpha in [0.01, 0.05] {
            for resolution in [0.01, 0.05] {
                out.push(Grid {
                    z,
                    alpha,
                    resolution,
                });
            }
        }
    }
    out
}

fn read_cases(root: &Path, only: Option<&str>) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    let mut datasets: Vec<PathBuf> = fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    datasets.sort();
    for ds in datasets {
        let mut dirs: Vec<PathBuf> = fs::read_dir(&ds)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("case.json").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let text = fs::read_to_string(dir.join("case.json"))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", dir.join("case.json").display()))?;
            let s = |k: &str| v[k].as_str().map(str::to_string);
            let case = Case {
                dataset: ds.file_name().unwrap().to_string_lossy().into_owned(),
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                fault_time: v["fault_time"].as_f64(),
                symptom: s("symptom"),
                symptom_metric: s("symptom_metric"),
                root_cause: s("root_cause").unwrap_or_default(),
                fault_kind: s("fault_kind").unwrap_or_else(|| "unknown".into()),
                dir,
            };
            if only.is_none_or(|o| format!("{}/{}", case.dataset, case.name).contains(o)) {
                cases.push(case);
            }
        }
    }
    Ok(cases)
}

/// The topology's entity kind for a data set's kind word: compute that serves requests is
/// a service; stores, caches and queues keep their kind; anything else is an external
/// endpoint.
fn our_kind(kind: &str) -> &'static str {
    match kind.to_ascii_lowercase().as_str() {
        "service" | "function" | "workflow" | "container" | "app" | "application_service" => {
            "service"
        }
        "database" | "db" | "storage" => "database",
        "cache" => "cache",
        "queue" | "topic" => "queue",
        "pod" => "pod",
        "node" => "node",
        "host" | "vm" => "host",
        _ => "external",
    }
}

/// A PromQL string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

struct Loaded {
    /// Data set id → our entity id, and back.
    ours: HashMap<String, String>,
    theirs: HashMap<String, String>,
    /// Our ids of the entities nothing calls (where to ask from without a symptom).
    entry_points: Vec<String>,
    last_ms: i64,
    samples: usize,
}

fn load(client: &reqwest::blocking::Client, base: &str, case: &Case) -> anyhow::Result<Loaded> {
    // metrics.csv's header names the entities too (all of them when there is no graph).
    let mut reader = csv::Reader::from_path(case.dir.join("metrics.csv"))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut listed: Vec<(String, String)> = Vec::new();
    let mut relations_in: Vec<(String, String, String)> = Vec::new();
    let topo_path = case.dir.join("topology.json");
    if topo_path.is_file() {
        let topo: Value = serde_json::from_str(&fs::read_to_string(&topo_path)?)
            .with_context(|| format!("{}: not JSON", topo_path.display()))?;
        for e in topo["entities"].as_array().into_iter().flatten() {
            let id = e["id"]
                .as_str()
                .context("topology.json: entity without id")?;
            listed.push((id.to_string(), e["kind"].as_str().unwrap_or("").to_string()));
        }
        for r in topo["relations"].as_array().into_iter().flatten() {
            let (Some(from), Some(to)) = (r["from"].as_str(), r["to"].as_str()) else {
                bail!("topology.json: relation {r} without from/to");
            };
            let kind = r["kind"].as_str().unwrap_or("calls").to_string();
            relations_in.push((from.to_string(), to.to_string(), kind));
        }
    }
    for name in header.iter().skip(1) {
        if let Some((entity, _)) = name.rsplit_once('|')
            && !listed.iter().any(|(id, _)| id == entity)
        {
            listed.push((entity.to_string(), "service".into()));
        }
    }
    let mut ours = HashMap::new();
    let mut theirs = HashMap::new();
    let mut decls = Vec::new();
    for (id, kind) in &listed {
        let kind = our_kind(kind);
        let our = format!("{kind}:{id}");
        ours.insert(id.to_string(), our.clone());
        theirs.insert(our, id.to_string());
        decls.push(json!({
            "kind": kind, "name": id,
            "attributes": {"sightline.promql_selector": format!("{{entity={}}}", quoted(id))},
        }));
    }
    let put = |path: &str, body: Value| -> anyhow::Result<()> {
        let r = client.put(format!("{base}{path}")).json(&body).send()?;
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        if !status.is_success()
            || v["data"]["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        {
            bail!("{path}: {status} {v}");
        }
        Ok(())
    };
    put("/api/v1/topology/entities", json!({"entities": decls}))?;
    let mut relations = Vec::new();
    for (from, to, kind) in &relations_in {
        let (Some(from), Some(to)) = (ours.get(from), ours.get(to)) else {
            bail!("topology.json: relation {from} -> {to} names an unlisted entity");
        };
        let kind = if kind == "depends_on" {
            "depends_on"
        } else {
            "calls"
        };
        relations.push(json!({"from": from, "to": to, "kind": kind}));
    }
    if !relations.is_empty() {
        put(
            "/api/v1/topology/relations",
            json!({"relations": relations}),
        )?;
    }
    let called: std::collections::HashSet<&str> =
        relations_in.iter().map(|(_, to, _)| to.as_str()).collect();
    let entry_points = listed
        .iter()
        .filter(|(id, _)| !called.contains(id.as_str()))
        .filter_map(|(id, _)| ours.get(id).cloned())
        .collect();

    // metrics.csv: one series per column, samples at their own times.
    let mut columns: Vec<Vec<Sample>> = vec![Vec::new(); header.len()];
    let mut last_ms = i64::MIN;
    for row in reader.records() {
        let row = row?;
        let t: f64 = row[0]
            .trim()
            .parse()
            .context("metrics.csv: bad timestamp")?;
        let t = (t * 1000.0).round() as i64;
        last_ms = last_ms.max(t);
        for (j, cell) in row.iter().enumerate().skip(1) {
            if let Ok(v) = cell.trim().parse::<f64>() {
                columns[j].push(Sample {
                    value: v,
                    timestamp: t,
                });
            }
        }
    }
    let mut series = Vec::new();
    let mut samples = 0;
    for (j, name) in header.iter().enumerate().skip(1) {
        let Some((entity, metric)) = name.rsplit_once('|') else {
            bail!("metrics.csv: column {name:?} is not entity|metric");
        };
        samples += columns[j].len();
        series.push(TimeSeries {
            labels: vec![Label::new("__name__", metric), Label::new("entity", entity)],
            samples: std::mem::take(&mut columns[j]),
        });
    }
    for chunk in series.chunks(100) {
        let req = WriteRequest {
            timeseries: chunk.to_vec(),
        };
        remote_write::post(
            client,
            &format!("{base}/api/v1/write"),
            remote_write::body(&req),
        )?;
    }
    Ok(Loaded {
        ours,
        theirs,
        entry_points,
        last_ms,
        samples,
    })
}

/// Asks the server for the ranking (data set ids, best first) and the time it took.
fn ask(
    client: &reqwest::blocking::Client,
    base: &str,
    case: &Case,
    loaded: &Loaded,
    grid: Option<Grid>,
    answers: Option<&Path>,
) -> anyhow::Result<(Vec<String>, f64)> {
    let Some(fault) = case.fault_time else {
        bail!("no fault_time: the harness needs the onset");
    };
    // Without a named symptom, ask from every entry point (nothing calls it) and merge.
    let symptoms: Vec<String> = match &case.symptom {
        Some(s) => vec![
            loaded
                .ours
                .get(s)
                .context("symptom not in topology.json")?
                .clone(),
        ],
        None => loaded.entry_points.clone(),
    };
    let metric = case
        .symptom_metric
        .as_deref()
        .and_then(|m| m.rsplit_once('|'))
        .map(|(_, m)| m.to_string());
    let mut scored: Vec<(bool, f64, f64, String)> = Vec::new();
    let started = Instant::now();
    for symptom in &symptoms {
        let mut query: Vec<(&str, String)> = vec![
            ("entity", symptom.clone()),
            ("time", format!("{fault}")),
            ("end", format!("{:.3}", loaded.last_ms as f64 / 1000.0)),
            ("lookback", "30d".into()),
            ("limit", "1000".into()),
        ];
        if let Some(m) = &metric {
            query.push(("metric", m.clone()));
        }
        if let Some(g) = grid {
            query.push(("z", g.z.to_string()));
            query.push(("alpha", g.alpha.to_string()));
            query.push(("resolution", g.resolution.to_string()));
        }
        let r = client
            .get(format!("{base}/api/v1/rca"))
            .query(&query)
            .send()?;
        let status = r.status();
        let v: Value = r.json()?;
        if !status.is_success() {
            bail!("/api/v1/rca: {status} {v}");
        }
        if let (Some(dir), None) = (answers, grid) {
            let dir = dir.join(&case.dataset);
            fs::create_dir_all(&dir)?;
            fs::write(
                dir.join(format!("{}.json", case.name)),
                serde_json::to_string_pretty(&v)?,
            )?;
        }
        for (i, c) in v["data"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let id = c["entity"].as_str().unwrap_or_default();
            let theirs = loaded.theirs.get(id).cloned().unwrap_or_else(|| id.into());
            scored.push((
                c["candidate"].as_bool().unwrap_or(false),
                c["confidence"].as_f64().unwrap_or(0.0),
                -(i as f64),
                theirs,
            ));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if symptoms.len() > 1 {
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.total_cmp(&a.1))
                .then(b.2.total_cmp(&a.2))
        });
    }
    let mut seen = std::collections::HashSet::new();
    let ranking = scored
        .into_iter()
        .map(|s| s.3)
        .filter(|id| seen.insert(id.clone()))
        .collect();
    Ok((ranking, seconds))
}

/// AC@1..AC@5 of rankings against root causes.
fn accuracy(results: &[(&str, &[String])]) -> [f64; 5] {
    let mut ac = [0.0; 5];
    if results.is_empty() {
        return ac;
    }
    for (k, a) in ac.iter_mut().enumerate() {
        let hits = results
            .iter()
            .filter(|(rc, ranking)| ranking.iter().take(k + 1).any(|e| e == rc))
            .count();
        *a = hits as f64 / results.len() as f64;
    }
    ac
}

fn avg5(ac: &[f64; 5]) -> f64 {
    ac.iter().sum::<f64>() / 5.0
}

fn figures(ac: &[f64; 5], n: usize) -> Value {
    json!({"n": n, "ac1": round3(ac[0]), "ac3": round3(ac[2]), "avg5": round3(avg5(ac))})
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = read_cases(&args.data, args.only.as_deref())?;
    if cases.is_empty() {
        bail!("no cases under {}", args.data.display());
    }
    let grids = if args.no_grid { Vec::new() } else { grid() };
    fs::create_dir_all(&args.work)?;
    let config = args.work.join("rca.toml");
    // The cases' samples are years old: keep them.
    fs::write(&config, "[tsdb]\nretention = \"36500d\"\n")?;
    let client = reqwest::blocking::Client::new();
    // Per case: the defaults' ranking, and one per grid point.
    let mut default_rankings: Vec<Vec<String>> = Vec::new();
    let mut grid_rankings: Vec<Vec<Vec<String>>> = Vec::new();
    let mut latencies = Vec::new();
    let mut load_seconds = Vec::new();
    for case in &cases {
        let data_dir = args.work.join("data");
        let _ = fs::remove_dir_all(&data_dir);
        let mut server = ServerProcess::start(
            &args.bin,
            &data_dir,
            Some(&config),
            &args.work.join("server.log"),
        )?;
        let base = format!("http://{}", server.http);
        let started = Instant::now();
        let loaded = load(&client, &base, case)
            .with_context(|| format!("loading {}/{}", case.dataset, case.name))?;
        load_seconds.push(started.elapsed().as_secs_f64());
        let (ranking, seconds) =
            match ask(&client, &base, case, &loaded, None, args.answers.as_deref()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}/{}: no answer: {e:#}", case.dataset, case.name);
                    (Vec::new(), 0.0)
                }
            };
        latencies.push(seconds * 1000.0);
        let mut per_grid = Vec::new();
        for g in &grids {
            per_grid.push(
                ask(&client, &base, case, &loaded, Some(*g), None)
                    .map(|r| r.0)
                    .unwrap_or_default(),
            );
        }
        server.stop()?;
        let pos = ranking.iter().position(|e| *e == case.root_cause);
        eprintln!(
            "{}/{}: {} series samples, root cause at {}",
            case.dataset,
            case.name,
            loaded.samples,
            pos.map_or("—".into(), |p| (p + 1).to_string())
        );
        if let Some(out) = &args.out {
            let dir = out.join(&case.dataset);
            fs::create_dir_all(&dir)?;
            fs::write(
                dir.join(format!("{}.json", case.name)),
                serde_json::to_string(&json!({"ranking": ranking}))?,
            )?;
        }
        default_rankings.push(ranking);
        grid_rankings.push(per_grid);
    }
    let _ = fs::remove_dir_all(args.work.join("data"));

    // Scores of the defaults: overall, per data set, per fault kind.
    let groups = |key: &dyn Fn(&Case) -> String| -> BTreeMap<String, Vec<usize>> {
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in cases.iter().enumerate() {
            m.entry(key(c)).or_default().push(i);
        }
        m
    };
    let score_of = |idx: &[usize], rankings: &dyn Fn(usize) -> Vec<String>| -> [f64; 5] {
        let owned: Vec<(usize, Vec<String>)> = idx.iter().map(|&i| (i, rankings(i))).collect();
        let refs: Vec<(&str, &[String])> = owned
            .iter()
            .map(|(i, r)| (cases[*i].root_cause.as_str(), r.as_slice()))
            .collect();
        accuracy(&refs)
    };
    let defaults = |i: usize| default_rankings[i].clone();
    let all: Vec<usize> = (0..cases.len()).collect();
    println!(
        "{:<34} {:>4} {:>6} {:>6} {:>6}",
        "", "n", "AC@1", "AC@3", "Avg@5"
    );
    let line = |label: &str, idx: &[usize], r: &dyn Fn(usize) -> Vec<String>| {
        let ac = score_of(idx, r);
        println!(
            "{label:<34} {:>4} {:>6.3} {:>6.3} {:>6.3}",
            idx.len(),
            ac[0],
            ac[2],
            avg5(&ac)
        );
        figures(&ac, idx.len())
    };
    let mut report = serde_json::Map::new();
    report.insert("all".into(), line("all (defaults)", &all, &defaults));
    let mut per_dataset = serde_json::Map::new();
    for (ds, idx) in groups(&|c| c.dataset.clone()) {
        per_dataset.insert(ds.clone(), line(&ds, &idx, &defaults));
    }
    let mut per_kind = serde_json::Map::new();
    for (k, idx) in groups(&|c| c.fault_kind.clone()) {
        per_kind.insert(k.clone(), line(&format!("fault_kind {k}"), &idx, &defaults));
    }
    report.insert("datasets".into(), Value::Object(per_dataset));
    report.insert("fault_kinds".into(), Value::Object(per_kind));

    // Leave one data set out over the grid: each data set scored with the parameters best
    // on the others.
    if !grids.is_empty() {
        let by_dataset = groups(&|c| c.dataset.clone());
        let mut chosen_rankings: Vec<Vec<String>> = vec![Vec::new(); cases.len()];
        let mut choices = serde_json::Map::new();
        for (ds, held_out) in &by_dataset {
            let train: Vec<usize> = all
                .iter()
                .copied()
                .filter(|i| !held_out.contains(i))
                .collect();
            let pool = if train.is_empty() { all.clone() } else { train };
            let best = (0..grids.len())
                .max_by(|&a, &b| {
                    let sa = score_of(&pool, &|i| grid_rankings[i][a].clone());
                    let sb = score_of(&pool, &|i| grid_rankings[i][b].clone());
                    avg5(&sa)
                        .total_cmp(&avg5(&sb))
                        .then(sa[0].total_cmp(&sb[0]))
                        // Ties: the earlier grid point (stricter thresholds first).
                        .then(b.cmp(&a))
                })
                .expect("a grid");
            let g = grids[best];
            choices.insert(
                ds.clone(),
                json!({"z": g.z, "alpha": g.alpha, "resolution": g.resolution}),
            );
            for &i in held_out {
                chosen_rankings[i] = grid_rankings[i][best].clone();
            }
        }
        let chosen = |i: usize| chosen_rankings[i].clone();
        let mut lodo = serde_json::Map::new();
        lodo.insert(
            "all".into(),
            line("all (leave one data set out)", &all, &chosen),
        );
        for (ds, idx) in &by_dataset {
            lodo.insert(ds.clone(), line(&format!("{ds} (unseen)"), idx, &chosen));
        }
        lodo.insert("choices".into(), Value::Object(choices));
        report.insert("leave_one_dataset_out".into(), Value::Object(lodo));
    }
    let p50 = percentile(&latencies, 0.5);
    let p99 = percentile(&latencies, 0.99);
    println!(
        "rca latency per case: p50 {p50:.1} ms, p99 {p99:.1} ms; loading a case {:.2} s (median)",
        percentile(&load_seconds, 0.5)
    );
    report.insert(
        "latency_ms".into(),
        json!({"p50": round3(p50), "p99": round3(p99)}),
    );
    println!("{}", Value::Object(report));
    Ok(())
}
