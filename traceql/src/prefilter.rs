//! Conditions a store can look up in an index before it reads any trace.

use crate::ast::{CmpOp, Element, Expr, Field, Pipeline, SpansetExpr, SpansetOp, Static};

/// `field op value`, with the same meaning as the TraceQL comparison: a missing field or a
/// value of another type does not satisfy it; integers, floats and durations compare as
/// numbers; [`CmpOp::Regex`] patterns (in a [`Static::Str`]) match whole values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: CmpOp,
    pub value: Static,
}

/// See [`crate::Query::prefilter`].
pub(crate) fn required(pipeline: &Pipeline) -> Vec<Vec<Condition>> {
    let mut out = Vec::new();
    pipeline_requirements(pipeline, &mut out);
    out
}

/// Every stage must output a spanset for the query to match, and a stage only outputs
/// spans of the trace, so each spanset stage's requirements hold on their own.
fn pipeline_requirements(pipeline: &Pipeline, out: &mut Vec<Vec<Condition>>) {
    for element in &pipeline.elements {
        if let Element::Spanset(expr) = element {
            spanset_requirements(expr, out);
        }
    }
}

fn spanset_requirements(expr: &SpansetExpr, out: &mut Vec<Vec<Condition>>) {
    match expr {
        SpansetExpr::Filter(filter) => {
            let mut conjunction = Vec::new();
            conjuncts(filter, &mut conjunction);
            if !conjunction.is_empty() {
                out.push(conjunction);
            }
        }
        SpansetExpr::Pipeline(p) => pipeline_requirements(p, out),
        SpansetExpr::Op { op, lhs, rhs } => match op {
            // Either side may be empty.
            SpansetOp::Union => {}
            // The result is made of right-hand spans; the left may be empty.
            SpansetOp::NotChild
            | SpansetOp::NotParent
            | SpansetOp::NotDescendant
            | SpansetOp::NotAncestor
            | SpansetOp::NotSibling => spanset_requirements(rhs, out),
            // Both sides must have spans (and, for the structural ones, related spans).
            _ => {
                spanset_requirements(lhs, out);
                spanset_requirements(rhs, out);
            }
        },
    }
}

/// The top-level `&&` operands of a filter that are plain `field op literal` comparisons;
/// anything else (`||`, negations, `!=`, `!~`, arithmetic) is left out, which only weakens
/// the conjunction.
fn conjuncts(expr: &Expr, out: &mut Vec<Condition>) {
    match expr {
        Expr::And(lhs, rhs) => {
            conjuncts(lhs, out);
            conjuncts(rhs, out);
        }
        Expr::Compare { op, lhs, rhs } if *op != CmpOp::Ne => match (lhs.as_ref(), rhs.as_ref()) {
            (Expr::Field(field), Expr::Static(value)) if *value != Static::Nil => {
                out.push(Condition {
                    field: field.clone(),
                    op: *op,
                    value: value.clone(),
                });
            }
            (Expr::Static(value), Expr::Field(field)) if *value != Static::Nil => {
                out.push(Condition {
                    field: field.clone(),
                    op: op.flipped(),
                    value: value.clone(),
                });
            }
            _ => {}
        },
        Expr::Match {
            negated: false,
            lhs,
            pattern,
        } => {
            if let Expr::Field(field) = lhs.as_ref() {
                out.push(Condition {
                    field: field.clone(),
                    op: CmpOp::Regex,
                    value: Static::Str(pattern.source.clone()),
                });
            }
        }
        _ => {}
    }
}
