//! LogQL for Sightline: parsing, log pipelines and query evaluation (a Loki-compatible subset).
//!
//! This crate owns the query language end to end: the syntax tree ([`ast`]), the parser
//! ([`parser`]), the per-entry log pipeline ([`pipeline`]) and the evaluator ([`engine`]) that
//! turns a parsed query into streams, a matrix or a vector. It reaches log data only through
//! the log store's [`LogSource`](sightline_model::LogSource) trait, which lives with the
//! stores' vocabulary in `sightline-model` (with the label matchers and line filters it
//! carries), so it must never do I/O itself, never spawn threads or tasks, and never depend
//! on a storage engine's types: a store implements the trait without knowing LogQL.
//! Everything here is plain, synchronous and testable in memory.

pub mod ast;
mod duration;
pub mod engine;
mod lexer;
pub mod parser;
pub mod pipeline;

pub use ast::{
    BinaryExpr, BinaryOp, Cardinality, Expr, Grouping, LabelFilter, LineTemplate, LogExpr,
    MetricExpr, NumericOp, RangeAggregation, RangeOp, Stage, VectorAggregation, VectorMatching,
    VectorOp,
};
pub use engine::{
    DEFAULT_MAX_SERIES, Engine, EvalError, MAX_STEPS, QueryResult, Sample, Series, Stream,
    query_instant, query_range,
};
pub use parser::{ParseError, parse};
pub use pipeline::{Pipeline, Processed};
