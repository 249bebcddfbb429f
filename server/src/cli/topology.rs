//! `sightline topology …`: the topology API from the command line, and inventory checks
//! without a server.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;

use super::{Endpoint, Output, TimeArg, get_api, no_results};

#[derive(Subcommand, Debug)]
pub enum TopologyCommand {
    /// Print the entities (and relations) of the graph, filtered.
    Graph {
        /// Only entities of these kinds (comma separated: service,pod,node,…).
        #[arg(long)]
        kind: Option<String>,
        /// Only entities whose (effective) owner has this name.
        #[arg(long)]
        owner: Option<String>,
        /// Only this application's stack (a name or `application:…` id).
        #[arg(long)]
        application: Option<String>,
        /// Only within `--hops` relations of this entity id.
        #[arg(long)]
        entity: Option<String>,
        #[arg(long, default_value_t = 1)]
        hops: usize,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Everything under an entity: instances, pods, nodes, zones, region, dependencies.
    Stack {
        /// The entity id (`service:budget`, `pod:prod/fin/budget-1`).
        entity: String,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Everything that depends on an entity, and the applications and owners hit.
    Impact {
        entity: String,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// A shortest chain of relations between two entities.
    Path {
        from: String,
        to: String,
        #[command(flatten)]
        when: When,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// What changed over `--since` until now: versions, revisions, moves, appearances,
    /// disappearances, deploy markers.
    Changes {
        #[arg(long, value_parser = TimeArg::parse, default_value = "1h")]
        since: TimeArg,
        /// Only this entity's changes.
        #[arg(long)]
        entity: Option<String>,
        #[command(flatten)]
        at: Endpoint,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check an inventory file without a server: print its problems (file:line: severity:
    /// entity: message); exit 1 if it has errors.
    Check { file: PathBuf },
}

/// When the graph is read.
#[derive(clap::Args, Debug)]
pub struct When {
    /// Read the graph as it was then (default now).
    #[arg(long, value_parser = TimeArg::parse)]
    time: Option<TimeArg>,
}

impl When {
    fn params(&self) -> Vec<(&'static str, String)> {
        self.time
            .map(|t| {
                let ns = t.resolve(crate::now_ns());
                vec![("time", format!("{:.3}", ns as f64 / 1e9))]
            })
            .unwrap_or_default()
    }
}

pub fn run(command: TopologyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        TopologyCommand::Check { file } => check(&file, out),
        TopologyCommand::Graph {
            kind,
            owner,
            application,
            entity,
            hops,
            when,
            at,
            output,
        } => {
            let mut params = when.params();
            for (k, v) in [
                ("kind", kind),
                ("owner", owner),
                ("application", application),
            ] {
                if let Some(v) = v {
                    params.push((k, v));
                }
            }
            if let Some(e) = entity {
                params.push(("entity", e));
                params.push(("hops", hops.to_string()));
            }
            if let Some(v) = get_api(&at, "/api/v1/topology", &params, output, out)? {
                print_entities(&v["data"], out)?;
            }
            Ok(())
        }
        TopologyCommand::Stack {
            entity,
            when,
            at,
            output,
        } => {
            let path = format!("/api/v1/topology/stack/{entity}");
            if let Some(v) = get_api(&at, &path, &when.params(), output, out)? {
                print_entities(&v["data"], out)?;
            }
            Ok(())
        }
        TopologyCommand::Impact {
            entity,
            when,
            at,
            output,
        } => {
            let path = format!("/api/v1/topology/impact/{entity}");
            if let Some(v) = get_api(&at, &path, &when.params(), output, out)? {
                print_entities(&v["data"], out)?;
                let apps: Vec<&str> = v["data"]["applications"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                writeln!(out, "applications hit: {}", none_if_empty(&apps.join(", ")))?;
                for o in v["data"]["owners"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "owner: {} {} (via {})",
                        o["name"].as_str().unwrap_or_default(),
                        o["contact"].as_str().unwrap_or_default(),
                        o["via"].as_str().unwrap_or_default()
                    )?;
                }
            }
            Ok(())
        }
        TopologyCommand::Path {
            from,
            to,
            when,
            at,
            output,
        } => {
            let mut params = when.params();
            params.push(("from", from));
            params.push(("to", to));
            if let Some(v) = get_api(&at, "/api/v1/topology/path", &params, output, out)? {
                let entities = v["data"]["entities"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let relations = v["data"]["relations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for (i, e) in entities.iter().enumerate() {
                    if i > 0 {
                        let r = &relations[i - 1];
                        let forward = r["from"] == entities[i - 1]["id"];
                        let kind = r["kind"].as_str().unwrap_or_default();
                        if forward {
                            writeln!(out, "  ─{kind}→")?;
                        } else {
                            writeln!(out, "  ←{kind}─")?;
                        }
                    }
                    writeln!(out, "{}", e["id"].as_str().unwrap_or_default())?;
                }
            }
            Ok(())
        }
        TopologyCommand::Changes {
            since,
            entity,
            at,
            output,
        } => {
            let now = crate::now_ns();
            let mut params = vec![
                ("start", format!("{:.3}", since.resolve(now) as f64 / 1e9)),
                ("end", format!("{:.3}", now as f64 / 1e9)),
            ];
            if let Some(e) = entity {
                params.push(("entity", e));
            }
            if let Some(v) = get_api(&at, "/api/v1/topology/changes", &params, output, out)? {
                let changes = v["data"].as_array().cloned().unwrap_or_default();
                if changes.is_empty() {
                    no_results();
                }
                for c in changes {
                    let t = c["time"].as_i64().unwrap_or_default() * 1_000_000;
                    let mut line = format!(
                        "{}  {:<11} {}",
                        super::rfc3339(t),
                        c["kind"].as_str().unwrap_or_default(),
                        c["entity"].as_str().unwrap_or_default()
                    );
                    if let (Some(from), Some(to)) = (c["from"].as_str(), c["to"].as_str()) {
                        line.push_str(&format!("  {from} → {to}"));
                    } else if let Some(to) = c["to"].as_str() {
                        line.push_str(&format!("  → {to}"));
                    }
                    if let Some(d) = c["detail"].as_str().filter(|d| !d.is_empty()) {
                        line.push_str(&format!("  ({d})"));
                    }
                    writeln!(out, "{line}")?;
                }
            }
            Ok(())
        }
    }
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// One line per entity: depth (indent), id, owner, live.
fn print_entities(data: &Value, out: &mut dyn Write) -> anyhow::Result<()> {
    let entities = data["entities"].as_array().cloned().unwrap_or_default();
    if entities.is_empty() {
        no_results();
    }
    for e in entities {
        let depth = e["depth"].as_u64().unwrap_or(0) as usize;
        let mut line = format!(
            "{}{}",
            "  ".repeat(depth),
            e["id"].as_str().unwrap_or_default()
        );
        if let Some(owner) = e["owner"]["name"].as_str() {
            line.push_str(&format!("  owner={owner:?}"));
        }
        if let Some(c) = e["criticality"].as_str() {
            line.push_str(&format!("  criticality={c}"));
        }
        if e["live"] == false {
            line.push_str("  (not live)");
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn check(file: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let name = file.display().to_string();
    let checked = sightline_topology::inventory::check_file(&name, &text, &|_| false);
    for d in &checked.diagnostics {
        writeln!(out, "{d}")?;
    }
    let errors = checked.errors().count();
    if errors > 0 {
        anyhow::bail!("{name}: {errors} error(s); the other entries would be kept");
    }
    writeln!(out, "{name}: ok ({} declarations)", checked.facts.len())?;
    Ok(())
}
