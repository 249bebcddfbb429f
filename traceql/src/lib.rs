//! TraceQL for Sightline: the lexer, parser, validator and evaluator of Tempo's trace query
//! language, over traces held in memory.
//!
//! [`parse`] turns text into a [`Query`] or a [`TraceQlError`] that says whether the text is
//! not TraceQL ([`ErrorKind::Syntax`]), not valid TraceQL ([`ErrorKind::Invalid`]), or valid
//! TraceQL this crate does not evaluate ([`ErrorKind::Unsupported`], naming the construct):
//! a query is refused rather than answered wrongly. [`Query::evaluate`] runs a query on one
//! whole trace; [`Query::prefilter`] tells a store which spans a trace must contain to have
//! a chance of matching, so it can narrow the traces it reads with its indexes.
//!
//! The crate owns the language only: it does no I/O, keeps no state between calls, spawns
//! nothing, and knows no store; it reads spans only through `sightline-model`'s types. The
//! supported subset and the semantics chosen are in `docs/traceql.md`.

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod prefilter;

use std::fmt;

pub use ast::{CmpOp, Field, Intrinsic, Scope, Static};
pub use error::{ErrorKind, TraceQlError};
pub use eval::{SpanRef, SpanSet};
pub use parser::{MAX_EXPRESSION_DEPTH, MAX_NESTING};
pub use prefilter::Condition;

/// A parsed, valid TraceQL search query in the supported subset.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pipeline: ast::Pipeline,
}

/// Parses and validates a TraceQL query. The caller bounds the text's size; nesting is
/// bounded here ([`MAX_NESTING`], [`MAX_EXPRESSION_DEPTH`]). Never panics.
pub fn parse(text: &str) -> Result<Query, TraceQlError> {
    parser::parse_query(text).map(|pipeline| Query { pipeline })
}

impl Query {
    /// Runs the query on one whole trace (all its spans, in any order) and returns the
    /// spansets that survive the pipeline; empty when the trace does not match.
    pub fn evaluate(&self, trace: &[SpanRef<'_>]) -> Vec<SpanSet> {
        eval::evaluate(&self.pipeline, trace)
    }

    /// A conservative hint for a store: a trace can match only if, for each conjunction
    /// listed, one of its spans satisfies every condition of that conjunction. An empty list
    /// restricts nothing. Only exact consequences of the query are listed: `||`, `!=`, `!~`
    /// and negations contribute nothing.
    pub fn prefilter(&self) -> Vec<Vec<Condition>> {
        prefilter::required(&self.pipeline)
    }
}

impl fmt::Display for Query {
    /// Canonical TraceQL that parses back to an equal query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.pipeline)
    }
}

impl std::str::FromStr for Query {
    type Err = TraceQlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
