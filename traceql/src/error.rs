//! The one error type of the crate: what went wrong, and where.

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not TraceQL: an unexpected token, an unclosed brace, a bad literal.
    Syntax,
    /// The text parses but is not valid TraceQL: mismatched types (`{ 1 > ok }`), an
    /// aggregate over a constant, a bad regular expression, `topk(0)`, too deep a nesting.
    Invalid,
    /// Valid TraceQL outside the subset this crate evaluates; the message names the
    /// construct. Such a query is refused rather than answered wrongly.
    Unsupported,
    /// A metrics evaluation that would exceed a bound of this crate (too many series).
    Limit,
}

/// A refused query: the kind of refusal, the 1-based line and column (in characters) of the
/// offending token, and a lowercase message without the position. Errors about a metrics
/// evaluation rather than the text (a bad time range, too many series) have line and
/// column 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct TraceQlError {
    pub kind: ErrorKind,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl TraceQlError {
    pub(crate) fn new(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            kind,
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    pub(crate) fn syntax(pos: Pos, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Syntax, pos, message)
    }

    /// An error about a metrics evaluation's request or its size, not about the text.
    pub(crate) fn request(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Pos::default(), message)
    }

    fn describe(&self) -> String {
        if self.line == 0 {
            format!("metrics query error: {}", self.message)
        } else {
            format!(
                "parse error at line {}, column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// A 1-based position in the query text, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}
