//! The declared inventory: applications, owners, criticality and dependencies that no
//! telemetry shows, from a TOML file (`[topology] inventory = "…"`) or the API
//! (`PUT /api/v1/topology/entities`, `PUT /api/v1/topology/relations`).
//!
//! ```toml
//! [[application]]
//! name = "budget"                      # application:budget
//! owner = { name = "Vendor A", contact = "ops@vendor-a.example" }
//! criticality = "core"
//! services = ["budget-prep", "budget-approval"]   # each service part_of the application
//!
//! [[entity]]
//! id = "service:budget-prep"           # or kind = "service" and name = "budget-prep"
//! owner = { name = "Vendor A" }
//! attributes = { "service.namespace" = "finance" }
//!
//! [[relation]]
//! from = "service:budget-prep"
//! to = "database:ledger"
//! kind = "depends_on"
//! ```
//!
//! Checking never stops at the first problem and never drops good facts for a bad one. Each
//! problem names the file, the line and the entity:
//!
//! * **errors** (the entry is left out): an unknown entity or relation kind, an id that is not
//!   `kind:name`, a `depends_on` relation that closes a cycle;
//! * **warnings** (the entry is kept): a reference to an entity declared nowhere in the file
//!   and not discovered yet (it attaches when the entity appears), an entity declared twice
//!   with contradicting attributes, owner or criticality (the first declaration wins).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Deserialize;

use crate::facts::Fact;
use crate::model::{Criticality, Declared, EntityId, EntityKind, Owner, RelationKind};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file, or `request` for the API.
    pub source: String,
    /// 1-based line in the file, or the entry's index in the request.
    pub line: usize,
    /// The entity (or relation) concerned.
    pub entity: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {severity}: {}: {}",
            self.source, self.line, self.entity, self.message
        )
    }
}

/// An entity as declared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDecl {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub owner: Option<OwnerDecl>,
    #[serde(default)]
    pub criticality: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// For applications: the names of their services.
    #[serde(default)]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerDecl {
    pub name: String,
    #[serde(default)]
    pub contact: String,
}

/// A relation as declared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationDecl {
    pub from: String,
    pub to: String,
    pub kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    application: Vec<toml::Spanned<EntityDecl>>,
    #[serde(default)]
    entity: Vec<toml::Spanned<EntityDecl>>,
    #[serde(default)]
    relation: Vec<toml::Spanned<RelationDecl>>,
}

/// What an inventory declares, checked: the facts to apply and the problems found.
#[derive(Debug, Default)]
pub struct Checked {
    pub facts: Vec<Fact>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

/// Checks an inventory file's text. `known` says whether an entity exists already
/// (discovered), for the dangling-reference check.
pub fn check_file(name: &str, text: &str, known: &dyn Fn(&EntityId) -> bool) -> Checked {
    let line_of = |offset: usize| 1 + text[..offset.min(text.len())].matches('\n').count();
    let file: File = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return Checked {
                facts: vec![],
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    source: name.into(),
                    line: e.span().map_or(1, |s| line_of(s.start)),
                    entity: "inventory".into(),
                    message: e.message().to_string(),
                }],
            };
        }
    };
    let mut entities: Vec<(usize, EntityDecl, Option<EntityKind>)> = Vec::new();
    for a in file.application {
        let line = line_of(a.span().start);
        entities.push((line, a.into_inner(), Some(EntityKind::Application)));
    }
    for e in file.entity {
        let line = line_of(e.span().start);
        entities.push((line, e.into_inner(), None));
    }
    let relations = file
        .relation
        .into_iter()
        .map(|r| (line_of(r.span().start), r.into_inner()))
        .collect();
    check(name, &format!("file:{name}"), entities, relations, known)
}

/// Checks declarations from the API: entries are numbered from 0 in place of lines.
pub fn check_request(
    entities: Vec<EntityDecl>,
    relations: Vec<RelationDecl>,
    known: &dyn Fn(&EntityId) -> bool,
) -> Checked {
    let entities = entities
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i, e, None))
        .collect();
    let relations = relations.into_iter().enumerate().collect();
    check("request", "api", entities, relations, known)
}

fn check(
    name: &str,
    source: &str,
    entities: Vec<(usize, EntityDecl, Option<EntityKind>)>,
    relations: Vec<(usize, RelationDecl)>,
    known: &dyn Fn(&EntityId) -> bool,
) -> Checked {
    let mut out = Checked::default();
    let diag = |severity, line, entity: &str, message: String| Diagnostic {
        severity,
        source: name.into(),
        line,
        entity: entity.into(),
        message,
    };
    // id → (line, what it declares)
    let mut declared: HashMap<EntityId, (usize, Declared)> = HashMap::new();
    let mut order: Vec<EntityId> = Vec::new();
    let mut pending_relations: Vec<(usize, EntityId, EntityId, RelationKind)> = Vec::new();

    for (line, decl, forced_kind) in entities {
        let label = decl
            .id
            .clone()
            .or_else(|| decl.name.clone())
            .unwrap_or_else(|| "entity".into());
        let id = match entity_id(&decl, forced_kind) {
            Ok(id) => id,
            Err(message) => {
                out.diagnostics
                    .push(diag(Severity::Error, line, &label, message));
                continue;
            }
        };
        let criticality = match decl
            .criticality
            .as_deref()
            .map(|c| (c, Criticality::parse(c)))
        {
            None => None,
            Some((_, Some(c))) => Some(c),
            Some((c, None)) => {
                out.diagnostics.push(diag(
                    Severity::Error,
                    line,
                    id.as_str(),
                    format!("unknown criticality {c:?} (core or normal); left out"),
                ));
                None
            }
        };
        let this = Declared {
            name: decl.display_name.clone(),
            attributes: decl.attributes.clone(),
            owner: decl.owner.clone().map(|o| Owner {
                name: o.name,
                contact: o.contact,
            }),
            criticality,
            source: format!("{source}:{line}"),
        };
        for service in &decl.services {
            let s = EntityId::new(EntityKind::Service, [service.as_str()]);
            pending_relations.push((line, s, id.clone(), RelationKind::PartOf));
        }
        match declared.get_mut(&id) {
            None => {
                order.push(id.clone());
                declared.insert(id, (line, this));
            }
            Some((first_line, first)) => {
                let mut contradictions = Vec::new();
                for (k, v) in &this.attributes {
                    match first.attributes.get(k) {
                        Some(old) if old != v => contradictions
                            .push(format!("attribute {k:?} is {old:?} there, {v:?} here")),
                        Some(_) => {}
                        None => {
                            first.attributes.insert(k.clone(), v.clone());
                        }
                    }
                }
                match (&first.owner, &this.owner) {
                    (Some(a), Some(b)) if a != b => contradictions
                        .push(format!("owner is {:?} there, {:?} here", a.name, b.name)),
                    (None, Some(b)) => first.owner = Some(b.clone()),
                    _ => {}
                }
                match (first.criticality, this.criticality) {
                    (Some(a), Some(b)) if a != b => {
                        contradictions.push(format!("criticality is {a:?} there, {b:?} here"))
                    }
                    (None, Some(b)) => first.criticality = Some(b),
                    _ => {}
                }
                if !contradictions.is_empty() {
                    out.diagnostics.push(diag(
                        Severity::Warning,
                        line,
                        id.as_str(),
                        format!(
                            "also declared at line {first_line} and contradicts it: {}; the first declaration is kept",
                            contradictions.join("; ")
                        ),
                    ));
                }
            }
        }
    }

    for (line, r) in relations {
        let label = format!("relation {} {} {}", r.from, r.kind, r.to);
        let Some(kind) = RelationKind::parse(&r.kind) else {
            out.diagnostics.push(diag(
                Severity::Error,
                line,
                &label,
                format!(
                    "unknown relation kind {:?} (known: {}); left out",
                    r.kind,
                    RelationKind::ALL.map(RelationKind::as_str).join(", ")
                ),
            ));
            continue;
        };
        let ends = EntityId::parse(&r.from).and_then(|f| Ok((f, EntityId::parse(&r.to)?)));
        match ends {
            Ok((from, to)) => pending_relations.push((line, from, to, kind)),
            Err(message) => out.diagnostics.push(diag(
                Severity::Error,
                line,
                &label,
                format!("{message}; left out"),
            )),
        }
    }

    // Dangling references: kept, with a warning.
    let mut warned = HashSet::new();
    for (line, from, to, kind) in &pending_relations {
        for end in [from, to] {
            if !declared.contains_key(end) && !known(end) && warned.insert(end.clone()) {
                out.diagnostics.push(diag(
                    Severity::Warning,
                    *line,
                    &format!("relation {from} {kind} {to}"),
                    format!(
                        "{end} is not declared here and has not been discovered; the relation is kept and attaches when it appears"
                    ),
                ));
            }
        }
    }

    // depends_on cycles: the relation that closes one is left out.
    let mut depends: HashMap<EntityId, Vec<EntityId>> = HashMap::new();
    let mut kept = Vec::new();
    for (line, from, to, kind) in pending_relations {
        if kind == RelationKind::DependsOn {
            if let Some(cycle) = path_between(&depends, &to, &from) {
                let mut names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
                names.push(to.to_string());
                out.diagnostics.push(diag(
                    Severity::Error,
                    line,
                    &format!("relation {from} depends_on {to}"),
                    format!("closes a depends_on cycle: {}; left out", names.join(" → ")),
                ));
                continue;
            }
            depends.entry(from.clone()).or_default().push(to.clone());
        }
        kept.push((line, from, to, kind));
    }

    for id in order {
        let (_, d) = declared.remove(&id).expect("declared");
        out.facts.push(Fact::Declare { id, declared: d });
    }
    for (line, from, to, kind) in kept {
        out.facts.push(Fact::DeclareRelation {
            from,
            to,
            kind,
            source: format!("{source}:{line}"),
        });
    }
    out
}

/// Facts that withdraw what an earlier load of the file declared and this one (`facts`)
/// no longer does: entities and relations whose declaration came from `source`
/// (`file:inventory.toml`).
pub fn withdrawn(graph: &crate::graph::Graph, source: &str, facts: &[Fact]) -> Vec<Fact> {
    let from_file = |s: &str| s.rsplit_once(':').is_some_and(|(file, _)| file == source);
    let mut entities = HashSet::new();
    let mut relations = HashSet::new();
    for f in facts {
        match f {
            Fact::Declare { id, .. } => {
                entities.insert(id.clone());
            }
            Fact::DeclareRelation { from, to, kind, .. } => {
                relations.insert((from.clone(), to.clone(), *kind));
            }
            _ => {}
        }
    }
    let mut out: Vec<Fact> = graph
        .all_entities()
        .filter(|e| {
            e.declared.as_ref().is_some_and(|d| from_file(&d.source)) && !entities.contains(&e.id)
        })
        .map(|e| Fact::Undeclare { id: e.id.clone() })
        .collect();
    out.extend(graph.all_relations().filter_map(|(a, b, r)| {
        let kind = r.kind?;
        let declared_here = r.declared.as_deref().is_some_and(from_file);
        (declared_here && !relations.contains(&(a.clone(), b.clone(), kind))).then(|| {
            Fact::UndeclareRelation {
                from: a.clone(),
                to: b.clone(),
                kind,
            }
        })
    }));
    out
}

/// The id an entry declares.
fn entity_id(decl: &EntityDecl, forced: Option<EntityKind>) -> Result<EntityId, String> {
    if let Some(id) = &decl.id {
        let id = EntityId::parse(id)?;
        if let Some(k) = forced
            && id.kind() != Some(k)
        {
            return Err(format!(
                "an [[application]] entry's id must be application:…, not {id}"
            ));
        }
        return Ok(id);
    }
    let kind = match (forced, &decl.kind) {
        (Some(k), _) => k,
        (None, Some(k)) => EntityKind::parse(k).ok_or_else(|| {
            format!(
                "unknown entity kind {k:?} (known: {})",
                EntityKind::ALL.map(EntityKind::as_str).join(", ")
            )
        })?,
        (None, None) => return Err("neither id nor kind given".into()),
    };
    let name = decl
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or("no name given")?;
    Ok(EntityId::new(kind, [name]))
}

/// A path from `from` to `to` along `edges`, if any (the entities in order, `from` first).
fn path_between(
    edges: &HashMap<EntityId, Vec<EntityId>>,
    from: &EntityId,
    to: &EntityId,
) -> Option<Vec<EntityId>> {
    let mut stack = vec![vec![from.clone()]];
    let mut seen = HashSet::from([from.clone()]);
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty");
        if last == to {
            return Some(path);
        }
        for next in edges.get(last).into_iter().flatten() {
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push(p);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Checked {
        check_file("inventory.toml", text, &|id| {
            id.as_str() == "database:ledger"
        })
    }

    fn messages(c: &Checked) -> Vec<String> {
        c.diagnostics.iter().map(ToString::to_string).collect()
    }

    const GOOD: &str = r#"
[[application]]
name = "budget"
owner = { name = "Vendor A", contact = "ops@vendor-a.example" }
criticality = "core"
services = ["budget-prep"]

[[entity]]
id = "service:budget-prep"
owner = { name = "Vendor A" }
attributes = { "service.namespace" = "finance" }

[[relation]]
from = "service:budget-prep"
to = "database:ledger"
kind = "depends_on"
"#;

    #[test]
    fn a_good_inventory_declares_entities_and_relations() {
        let c = check_text(GOOD);
        assert!(c.diagnostics.is_empty(), "{:?}", messages(&c));
        assert_eq!(c.facts.len(), 4);
        let Fact::Declare { id, declared } = &c.facts[0] else {
            panic!("{:?}", c.facts[0])
        };
        assert_eq!(id.as_str(), "application:budget");
        assert_eq!(declared.criticality, Some(Criticality::Core));
        assert_eq!(declared.source, "file:inventory.toml:2");
        assert!(
            matches!(&c.facts[2], Fact::DeclareRelation { kind: RelationKind::PartOf, from, .. } if from.as_str() == "service:budget-prep")
        );
    }

    #[test]
    fn an_unknown_kind_is_an_error_naming_file_line_and_entity_and_the_rest_is_kept() {
        let text = format!("{GOOD}\n[[entity]]\nkind = \"servce\"\nname = \"x\"\n");
        let c = check_text(&text);
        let m = messages(&c);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("inventory.toml:18: error: x: unknown entity kind \"servce\""),
            "{m:?}"
        );
        assert_eq!(c.facts.len(), 4);
    }

    #[test]
    fn a_dangling_reference_is_a_warning_and_kept() {
        let text = format!(
            "{GOOD}\n[[relation]]\nfrom = \"service:budget-prep\"\nto = \"cache:nowhere\"\nkind = \"depends_on\"\n"
        );
        let c = check_text(&text);
        let m = messages(&c);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("inventory.toml:18: warning: relation service:budget-prep depends_on cache:nowhere: cache:nowhere is not declared here"), "{m:?}");
        assert_eq!(c.facts.len(), 5);
    }

    #[test]
    fn a_depends_on_cycle_is_an_error_and_its_closing_relation_left_out() {
        let text = r#"
[[entity]]
id = "service:a"
[[entity]]
id = "service:b"
[[entity]]
id = "service:c"
[[relation]]
from = "service:a"
to = "service:b"
kind = "depends_on"
[[relation]]
from = "service:b"
to = "service:c"
kind = "depends_on"
[[relation]]
from = "service:c"
to = "service:a"
kind = "depends_on"
"#;
        let c = check_text(text);
        let m = messages(&c);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0],
            "inventory.toml:16: error: relation service:c depends_on service:a: closes a depends_on cycle: service:a → service:b → service:c → service:a; left out"
        );
        assert_eq!(c.facts.len(), 5);
    }

    #[test]
    fn contradictory_declarations_warn_and_the_first_wins() {
        let text = format!(
            "{GOOD}\n[[entity]]\nid = \"service:budget-prep\"\nowner = {{ name = \"Vendor B\" }}\nattributes = {{ \"service.namespace\" = \"treasury\", \"tier\" = \"web\" }}\n"
        );
        let c = check_text(&text);
        let m = messages(&c);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("inventory.toml:18: warning: service:budget-prep: also declared at line 8 and contradicts it: attribute \"service.namespace\" is \"finance\" there, \"treasury\" here; owner is \"Vendor A\" there, \"Vendor B\" here"), "{m:?}");
        let Fact::Declare { declared, .. } = &c.facts[1] else {
            panic!()
        };
        assert_eq!(declared.owner.as_ref().unwrap().name, "Vendor A");
        assert_eq!(declared.attributes["service.namespace"], "finance");
        assert_eq!(declared.attributes["tier"], "web");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let c = check_text("[[entity]]\nid = \"service:a\"\nowner = \n");
        let m = messages(&c);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("inventory.toml:3: error: inventory:"),
            "{m:?}"
        );
        assert!(c.facts.is_empty());
    }
}
