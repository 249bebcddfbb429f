//! Lexing and parsing template text into trees, following Go's `text/template/parse`.
//!
//! The lexer applies trim markers (`{{- ` and ` -}}`) and drops comments, so the parser
//! sees only text and action tokens. Function names and variables are resolved at parse
//! time, as in Go, so a typo fails when the rule is loaded rather than when it fires.

use std::collections::HashMap;
use std::sync::Arc;

use super::TemplateError;

/// Parenthesis and control-structure nesting allowed before parsing gives up, so hostile
/// input cannot exhaust the stack of the recursive-descent parser.
const MAX_PARSE_DEPTH: usize = 100;

/// One parsed template (the top level of a text, or a `define` inside it).
#[derive(Debug)]
pub(crate) struct Tree {
    /// The name of the text this tree was parsed from (the first `NAME` in errors).
    pub parse_name: String,
    pub source: Arc<str>,
    pub root: Vec<Node>,
}

impl Tree {
    /// Returns Go's 1-based line and 0-based byte column of an offset.
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        line_col(&self.source, pos)
    }
}

pub(crate) fn line_col(source: &str, pos: usize) -> (usize, usize) {
    let before = &source[..pos.min(source.len())];
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => pos - nl - 1,
        None => pos,
    };
    (line, col)
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipeline),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipeline>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pipe: Pipeline,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct Pipeline {
    pub pos: usize,
    /// Declared or assigned variables (`$x :=`, `$i, $v :=`, `$x =`).
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(crate) struct Command {
    /// The source text, shown in errors of function calls as `at <text>`.
    pub text: String,
    pub args: Vec<Operand>,
}

#[derive(Debug)]
pub(crate) struct Operand {
    pub pos: usize,
    /// The source text, shown in execution errors as `at <text>`.
    pub text: String,
    pub kind: OperandKind,
}

#[derive(Debug)]
pub(crate) enum OperandKind {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// `.A.B`: fields looked up from dot.
    Field(Vec<String>),
    /// `$x.A.B`: fields looked up from a variable.
    Variable(String, Vec<String>),
    Function(String),
    /// `(pipeline).A.B`.
    Pipe(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Left,
    Right,
    Ident(String),
    Field(String),
    Var(String),
    Dot,
    Str(String),
    Number(String),
    Char(char),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    /// Where the token's text ends, for the source text quoted in execution errors.
    end: usize,
    space_before: bool,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Go's identifier characters: Unicode letters and digits, and `_`.
fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
    name: &'a str,
}

impl<'a> Lexer<'a> {
    fn error(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(self.src, pos);
        TemplateError::Parse {
            name: self.name.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    fn push(&mut self, tok: Tok, pos: usize, space_before: bool) {
        let end = self.pos.max(pos);
        self.tokens.push(Token {
            tok,
            pos,
            end,
            space_before,
        });
    }

    fn run(mut self) -> Result<Vec<Token>, TemplateError> {
        let mut trim_next_text = false;
        while self.pos < self.src.len() {
            let start = self.pos;
            let open = self.src[start..].find("{{").map(|i| start + i);
            let text_end = open.unwrap_or(self.src.len());
            let mut text = &self.src[start..text_end];
            if trim_next_text {
                text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            // `{{- ` trims the whitespace before the action.
            let left_trim = open.is_some_and(|o| {
                self.bytes.get(o + 2) == Some(&b'-')
                    && self.bytes.get(o + 3).is_some_and(|c| is_space(*c))
            });
            if left_trim {
                text = text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            }
            if !text.is_empty() {
                let text_pos = text.as_ptr() as usize - self.src.as_ptr() as usize;
                self.push(Tok::Text(text.to_owned()), text_pos, false);
            }
            let Some(open) = open else {
                break;
            };
            self.pos = open + if left_trim { 4 } else { 2 };
            trim_next_text = self.lex_action(open)?;
        }
        let end = self.src.len();
        self.push(Tok::Eof, end, true);
        Ok(self.tokens)
    }

    fn at_right_delim(&self) -> bool {
        self.bytes[self.pos..].starts_with(b"}}")
    }

    /// Whether the action ends at ` -}}` (Go requires the space before the dash).
    fn at_trim_right(&self) -> bool {
        self.pos > 0
            && is_space(self.bytes[self.pos - 1])
            && self.bytes[self.pos..].starts_with(b"-}}")
    }

    /// Lexes one action starting at `open`; returns whether it ends with a trim marker.
    fn lex_action(&mut self, open: usize) -> Result<bool, TemplateError> {
        // Comments: `{{/* ... */}}`, optionally with trim markers around them.
        let after_ws = self.pos
            + self.bytes[self.pos..]
                .iter()
                .take_while(|c| is_space(**c))
                .count();
        if self.bytes[after_ws..].starts_with(b"/*") {
            let Some(close) = self.src[after_ws + 2..].find("*/") else {
                return Err(self.error(open, "unclosed comment"));
            };
            self.pos = after_ws + 2 + close + 2;
            let ws = self.bytes[self.pos..]
                .iter()
                .take_while(|c| is_space(**c))
                .count();
            let rest = &self.bytes[self.pos + ws..];
            if ws > 0 && rest.starts_with(b"-}}") {
                self.pos += ws + 3;
                return Ok(true);
            }
            if rest.starts_with(b"}}") && ws == 0 {
                self.pos += 2;
                return Ok(false);
            }
            return Err(self.error(open, "comment ends before closing delimiter"));
        }
        self.push(Tok::Left, open, false);
        let mut space_before = false;
        let mut paren_depth = 0usize;
        loop {
            if self.pos >= self.bytes.len() {
                return Err(self.error(open, "unclosed action"));
            }
            if self.at_trim_right() {
                self.push(Tok::Right, self.pos, true);
                self.pos += 3;
                return Ok(true);
            }
            if self.at_right_delim() {
                if paren_depth > 0 {
                    return Err(self.error(self.pos, "unclosed left paren"));
                }
                self.push(Tok::Right, self.pos, space_before);
                self.pos += 2;
                return Ok(false);
            }
            let c = self.bytes[self.pos];
            let start = self.pos;
            if is_space(c) {
                self.pos += 1;
                space_before = true;
                continue;
            }
            let tok = match c {
                b'|' => {
                    self.pos += 1;
                    Tok::Pipe
                }
                b'(' => {
                    self.pos += 1;
                    paren_depth += 1;
                    Tok::LParen
                }
                b')' => {
                    self.pos += 1;
                    if paren_depth == 0 {
                        return Err(self.error(start, "unexpected right paren"));
                    }
                    paren_depth -= 1;
                    Tok::RParen
                }
                b',' => {
                    self.pos += 1;
                    Tok::Comma
                }
                b':' => {
                    if self.bytes.get(self.pos + 1) != Some(&b'=') {
                        return Err(self.error(start, "expected :="));
                    }
                    self.pos += 2;
                    Tok::Declare
                }
                b'=' => {
                    self.pos += 1;
                    Tok::Assign
                }
                b'"' => Tok::Str(self.lex_quoted(open)?),
                b'`' => {
                    let Some(close) = self.src[start + 1..].find('`') else {
                        return Err(self.error(open, "unterminated raw quoted string"));
                    };
                    self.pos = start + 1 + close + 1;
                    Tok::Str(self.src[start + 1..start + 1 + close].to_owned())
                }
                b'\'' => Tok::Char(self.lex_char(open)?),
                b'$' => {
                    self.pos += 1;
                    self.take_ident();
                    Tok::Var(self.src[start..self.pos].to_owned())
                }
                b'.' if self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => {
                    self.lex_number()
                }
                b'.' => {
                    self.pos += 1;
                    let ident_start = self.pos;
                    self.take_ident();
                    if self.pos == ident_start {
                        Tok::Dot
                    } else {
                        Tok::Field(self.src[ident_start..self.pos].to_owned())
                    }
                }
                b'0'..=b'9' => self.lex_number(),
                b'+' | b'-'
                    if self
                        .bytes
                        .get(self.pos + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == b'.') =>
                {
                    self.lex_number()
                }
                _ if self.src[start..].starts_with(is_ident_char) => {
                    self.take_ident();
                    Tok::Ident(self.src[start..self.pos].to_owned())
                }
                _ => {
                    let ch = self.src[start..].chars().next().unwrap_or_default();
                    // Go's `%#U`: the quoted character follows only when it is printable.
                    let printable = ch == ' ' || !(ch.is_whitespace() || ch.is_control());
                    let shown = if printable {
                        format!("U+{:04X} '{ch}'", ch as u32)
                    } else {
                        format!("U+{:04X}", ch as u32)
                    };
                    return Err(
                        self.error(start, format!("unrecognized character in action: {shown}"))
                    );
                }
            };
            self.push(tok, start, space_before);
            space_before = false;
        }
    }

    fn take_ident(&mut self) {
        let len: usize = self.src[self.pos..]
            .chars()
            .take_while(|c| is_ident_char(*c))
            .map(char::len_utf8)
            .sum();
        self.pos += len;
    }

    fn lex_number(&mut self) -> Tok {
        let start = self.pos;
        if matches!(self.bytes[self.pos], b'+' | b'-') {
            self.pos += 1;
        }
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            let prev = self.bytes[self.pos - 1];
            let exponent_sign =
                matches!(c, b'+' | b'-') && matches!(prev, b'e' | b'E' | b'p' | b'P');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
        Tok::Number(self.src[start..self.pos].to_owned())
    }

    fn lex_quoted(&mut self, open: usize) -> Result<String, TemplateError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.pos..].chars().next() else {
                return Err(self.error(open, "unterminated quoted string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => return Err(self.error(open, "unterminated quoted string")),
                '\\' => out.push(self.lex_escape(start, '"')?),
                c => out.push(c),
            }
        }
    }

    fn lex_char(&mut self, open: usize) -> Result<char, TemplateError> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.src[self.pos..].chars().next() {
            Some('\\') => {
                self.pos += 1;
                self.lex_escape(start, '\'')?
            }
            Some(c) if c != '\'' && c != '\n' => {
                self.pos += c.len_utf8();
                c
            }
            _ => return Err(self.error(open, "unterminated character constant")),
        };
        if self.bytes.get(self.pos) != Some(&b'\'') {
            return Err(self.error(open, "unterminated character constant"));
        }
        self.pos += 1;
        Ok(c)
    }

    /// Go's escapes: `\a \b \f \n \r \t \v \\ \' \"`, `\xNN`, `\NNN` octal, `\uNNNN`, `\UNNNNNNNN`.
    fn lex_escape(&mut self, literal_start: usize, quote: char) -> Result<char, TemplateError> {
        let bad = |lexer: &Self| lexer.error(literal_start, "invalid syntax in quoted string");
        let Some(c) = self.src[self.pos..].chars().next() else {
            return Err(bad(self));
        };
        self.pos += c.len_utf8();
        let hex = |lexer: &mut Self, n: usize, radix: u32| -> Result<char, TemplateError> {
            let digits = lexer
                .src
                .get(lexer.pos..lexer.pos + n)
                .ok_or_else(|| bad(lexer))?;
            let code = u32::from_str_radix(digits, radix).map_err(|_| bad(lexer))?;
            lexer.pos += n;
            char::from_u32(code).ok_or_else(|| bad(lexer))
        };
        Ok(match c {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            c if c == quote => c,
            'x' => hex(self, 2, 16)?,
            'u' => hex(self, 4, 16)?,
            'U' => hex(self, 8, 16)?,
            '0'..='7' => {
                self.pos -= 1;
                hex(self, 3, 8)?
            }
            _ => return Err(bad(self)),
        })
    }
}

/// Which templates and functions a parse can see.
pub(crate) struct ParseContext<'a> {
    pub name: &'a str,
    pub source: Arc<str>,
    pub is_function: &'a dyn Fn(&str) -> bool,
}

struct Parser<'a> {
    ctx: ParseContext<'a>,
    tokens: Vec<Token>,
    index: usize,
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
    /// Where the last `end` or `else` keyword was, for errors about a misplaced one.
    keyword_pos: usize,
    defined: Defines,
}

enum ListEnd {
    Eof,
    End,
    Else,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

/// The `define`d templates of one text, in definition order.
pub(crate) type Defines = Vec<(String, Vec<Node>)>;

/// Parses `source` into its top-level tree and the trees its `define`s and `block`s add.
pub(crate) fn parse(ctx: ParseContext<'_>) -> Result<(Vec<Node>, Defines), TemplateError> {
    let tokens = Lexer {
        src: &ctx.source,
        bytes: ctx.source.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        name: ctx.name,
    }
    .run()?;
    let mut parser = Parser {
        ctx,
        tokens,
        index: 0,
        vars: vec!["$".to_owned()],
        depth: 0,
        range_depth: 0,
        keyword_pos: 0,
        defined: Vec::new(),
    };
    let (root, end) = parser.parse_list(true)?;
    match end {
        ListEnd::Eof => Ok((root, parser.defined)),
        ListEnd::End => Err(parser.error_at(parser.keyword_pos, "unexpected {{end}}")),
        ListEnd::Else => Err(parser.error_at(parser.keyword_pos, "unexpected {{else}}")),
    }
}

impl Parser<'_> {
    fn error_at(&self, pos: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(&self.ctx.source, pos);
        TemplateError::Parse {
            name: self.ctx.name.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.index.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.index + ahead).min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.index < self.tokens.len() - 1 {
            self.index += 1;
        }
        t
    }

    fn describe(tok: &Tok) -> String {
        match tok {
            Tok::Text(_) => "text".to_owned(),
            Tok::Left => "\"{{\"".to_owned(),
            Tok::Right => "\"}}\"".to_owned(),
            Tok::Ident(s) if KEYWORDS.contains(&s.as_str()) => format!("<{s}>"),
            Tok::Ident(s) | Tok::Field(s) | Tok::Var(s) | Tok::Number(s) => format!("<{s}>"),
            Tok::Dot => "<.>".to_owned(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Char(c) => format!("{c:?}"),
            Tok::Pipe => "\"|\"".to_owned(),
            Tok::LParen => "\"(\"".to_owned(),
            Tok::RParen => "\")\"".to_owned(),
            Tok::Declare => "\":=\"".to_owned(),
            Tok::Assign => "\"=\"".to_owned(),
            Tok::Comma => "\",\"".to_owned(),
            Tok::Eof => "EOF".to_owned(),
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), TemplateError> {
        let t = self.next();
        if t.tok == Tok::Right {
            Ok(())
        } else {
            Err(self.error_at(
                t.pos,
                format!("unexpected {} in {context}", Self::describe(&t.tok)),
            ))
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(self.error_at(pos, format!("nesting deeper than {MAX_PARSE_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_list(&mut self, top_level: bool) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok((nodes, ListEnd::Eof)),
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Left => {
                    let kw = match &self.peek().tok {
                        Tok::Ident(s) if KEYWORDS.contains(&s.as_str()) => Some(s.clone()),
                        _ => None,
                    };
                    match kw.as_deref() {
                        Some("end") => {
                            self.keyword_pos = self.next().pos;
                            self.expect_right("end")?;
                            return Ok((nodes, ListEnd::End));
                        }
                        Some("else") => {
                            self.keyword_pos = self.next().pos;
                            return Ok((nodes, ListEnd::Else));
                        }
                        Some(kind @ ("if" | "range" | "with")) => {
                            let kind = kind.to_owned();
                            let kw = self.next();
                            nodes.push(self.parse_control(&kind, kw.pos)?);
                        }
                        Some("define") => {
                            let kw = self.next();
                            if !top_level || self.depth > 0 {
                                return Err(self.error_at(kw.pos, "unexpected <define> in command"));
                            }
                            self.parse_define(kw.pos, false)?;
                        }
                        Some("block") => {
                            let kw = self.next();
                            nodes.push(
                                self.parse_define(kw.pos, true)?
                                    .unwrap_or(Node::Text(String::new())),
                            );
                        }
                        Some("template") => {
                            let kw = self.next();
                            nodes.push(self.parse_template_call(kw.pos)?);
                        }
                        Some(kind @ ("break" | "continue")) => {
                            let kind = kind.to_owned();
                            let kw = self.next();
                            if self.range_depth == 0 {
                                return Err(self.error_at(
                                    kw.pos,
                                    format!("{{{{{kind}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            self.expect_right(&kind)?;
                            nodes.push(if kind == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        _ => {
                            let pipe = self.parse_pipeline("command", true)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                other => {
                    return Err(
                        self.error_at(t.pos, format!("unexpected {}", Self::describe(&other)))
                    );
                }
            }
        }
    }

    fn parse_control(&mut self, kind: &str, pos: usize) -> Result<Node, TemplateError> {
        self.enter(pos)?;
        let vars_len = self.vars.len();
        let pipe = self.parse_pipeline(kind, true)?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.parse_list(false)?;
        if kind == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            ListEnd::Eof => return Err(self.error_at(self.ctx.source.len(), "unexpected EOF")),
            ListEnd::End => None,
            ListEnd::Else => {
                // `{{else if …}}` and `{{else with …}}` nest a control that owns the `{{end}}`.
                let chained =
                    matches!(&self.peek().tok, Tok::Ident(s) if s == kind && kind != "range");
                if chained {
                    let kw = self.next();
                    Some(vec![self.parse_control(kind, kw.pos)?])
                } else {
                    self.expect_right("else")?;
                    let (else_list, end) = self.parse_list(false)?;
                    match end {
                        ListEnd::End => Some(else_list),
                        ListEnd::Else => {
                            return Err(
                                self.error_at(self.keyword_pos, "expected end; found {{else}}")
                            );
                        }
                        ListEnd::Eof => {
                            return Err(self.error_at(self.ctx.source.len(), "unexpected EOF"));
                        }
                    }
                }
            }
        };
        self.vars.truncate(vars_len);
        self.depth -= 1;
        let branch = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind {
            "if" => Node::If(branch),
            "range" => Node::Range(branch),
            _ => Node::With(branch),
        })
    }

    fn template_name(&mut self, context: &str) -> Result<String, TemplateError> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) => Ok(s),
            other => Err(self.error_at(
                t.pos,
                format!("unexpected {} in {context}", Self::describe(&other)),
            )),
        }
    }

    /// `{{define "name"}}…{{end}}`, or `{{block "name" pipeline}}…{{end}}` which also
    /// returns the call that executes the block in place.
    fn parse_define(&mut self, pos: usize, is_block: bool) -> Result<Option<Node>, TemplateError> {
        let context = if is_block {
            "block clause"
        } else {
            "define clause"
        };
        let name = self.template_name(context)?;
        let call = if is_block {
            let pipe = self.parse_pipeline(context, false)?;
            Some(Node::Template {
                pos,
                name: name.clone(),
                pipe: Some(pipe),
            })
        } else {
            self.expect_right(context)?;
            None
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter(pos)?;
        let (body, end) = self.parse_list(false)?;
        self.depth -= 1;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        match end {
            ListEnd::End => {}
            ListEnd::Else => return Err(self.error_at(self.keyword_pos, "unexpected {{else}}")),
            ListEnd::Eof => return Err(self.error_at(self.ctx.source.len(), "unexpected EOF")),
        }
        let is_empty = |nodes: &[Node]| {
            nodes
                .iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        if let Some(existing) = self.defined.iter_mut().find(|(n, _)| *n == name) {
            if !is_empty(&existing.1) && !is_empty(&body) {
                return Err(self.error_at(
                    pos,
                    format!("template: multiple definition of template {name:?}"),
                ));
            }
            if !is_empty(&body) {
                existing.1 = body;
            }
        } else {
            self.defined.push((name, body));
        }
        Ok(call)
    }

    fn parse_template_call(&mut self, pos: usize) -> Result<Node, TemplateError> {
        let name = self.template_name("template clause")?;
        let pipe = if self.peek().tok == Tok::Right {
            self.next();
            None
        } else {
            Some(self.parse_pipeline("template clause", false)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    /// Parses up to the closing `}}` (and consumes it).
    fn parse_pipeline(
        &mut self,
        context: &str,
        allow_decl: bool,
    ) -> Result<Pipeline, TemplateError> {
        let pos = self.peek().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        if allow_decl && let Tok::Var(first) = &self.peek().tok {
            let first = first.clone();
            match (
                &self.peek_at(1).tok,
                &self.peek_at(2).tok,
                &self.peek_at(3).tok,
            ) {
                (Tok::Declare, _, _) => {
                    self.index += 2;
                    decl.push(first);
                }
                (Tok::Assign, _, _) => {
                    self.index += 2;
                    if !self.vars.contains(&first) {
                        return Err(self.error_at(pos, format!("undefined variable {first:?}")));
                    }
                    decl.push(first);
                    is_assign = true;
                }
                (Tok::Comma, Tok::Var(second), Tok::Declare | Tok::Assign)
                    if context == "range" =>
                {
                    let second = second.clone();
                    is_assign = self.peek_at(3).tok == Tok::Assign;
                    self.index += 4;
                    decl.push(first);
                    decl.push(second);
                }
                _ => {}
            }
        }
        let cmds = self.parse_commands(context, Tok::Right)?;
        if !is_assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    fn parse_commands(&mut self, context: &str, end: Tok) -> Result<Vec<Command>, TemplateError> {
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            loop {
                let t = self.peek().clone();
                if t.tok == end || t.tok == Tok::Pipe {
                    break;
                }
                if matches!(t.tok, Tok::Right | Tok::RParen | Tok::Eof) {
                    return Err(self.error_at(
                        t.pos,
                        format!("unexpected {} in {context}", Self::describe(&t.tok)),
                    ));
                }
                if !args.is_empty() && !t.space_before && t.tok != Tok::LParen {
                    return Err(self.error_at(
                        t.pos,
                        format!("missing space before {}", Self::describe(&t.tok)),
                    ));
                }
                args.push(self.parse_operand(context)?);
            }
            let t = self.next();
            if args.is_empty() {
                return Err(self.error_at(t.pos, "missing value for command"));
            }
            if !cmds.is_empty() {
                let literal = matches!(
                    args[0].kind,
                    OperandKind::Bool(_)
                        | OperandKind::Int(_)
                        | OperandKind::Float(_)
                        | OperandKind::String(_)
                        | OperandKind::Nil
                );
                if literal {
                    return Err(self.error_at(
                        args[0].pos,
                        format!(
                            "non executable command in pipeline stage {}",
                            cmds.len() + 1
                        ),
                    ));
                }
            }
            let start = args[0].pos;
            let stop = args.last().map_or(start, |a| a.pos + a.text.len());
            let text = self
                .ctx
                .source
                .get(start..stop)
                .unwrap_or_default()
                .to_owned();
            cmds.push(Command { text, args });
            if t.tok == end {
                return Ok(cmds);
            }
        }
    }

    /// Field names chained directly after a term: `$x.A.B`, `(…).A`.
    fn parse_chain(&mut self) -> Vec<String> {
        let mut fields = Vec::new();
        while let Tok::Field(name) = &self.peek().tok {
            if self.peek().space_before {
                break;
            }
            fields.push(name.clone());
            self.next();
        }
        fields
    }

    fn parse_operand(&mut self, context: &str) -> Result<Operand, TemplateError> {
        let t = self.next();
        let kind = match t.tok {
            Tok::Dot => OperandKind::Dot,
            Tok::Field(first) => {
                let mut fields = vec![first];
                fields.extend(self.parse_chain());
                OperandKind::Field(fields)
            }
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err(self.error_at(t.pos, format!("undefined variable {name:?}")));
                }
                OperandKind::Variable(name, self.parse_chain())
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => OperandKind::Bool(true),
                "false" => OperandKind::Bool(false),
                "nil" => OperandKind::Nil,
                _ if KEYWORDS.contains(&name.as_str()) => {
                    return Err(self.error_at(t.pos, format!("unexpected <{name}> in {context}")));
                }
                _ if !(self.ctx.is_function)(&name) => {
                    return Err(self.error_at(t.pos, format!("function {name:?} not defined")));
                }
                _ => OperandKind::Function(name),
            },
            Tok::Str(s) => OperandKind::String(s),
            Tok::Char(c) => OperandKind::Int(c as i64),
            Tok::Number(text) => parse_number(&text)
                .ok_or_else(|| self.error_at(t.pos, format!("bad number syntax: {text:?}")))?,
            Tok::LParen => {
                self.enter(t.pos)?;
                let pos = self.peek().pos;
                let cmds = self.parse_commands("parenthesized pipeline", Tok::RParen)?;
                self.depth -= 1;
                let pipe = Pipeline {
                    pos,
                    decl: Vec::new(),
                    is_assign: false,
                    cmds,
                };
                OperandKind::Pipe(Box::new(pipe), self.parse_chain())
            }
            other => {
                return Err(self.error_at(
                    t.pos,
                    format!("unexpected {} in operand", Self::describe(&other)),
                ));
            }
        };
        let end = self.tokens[self.index.saturating_sub(1)].end;
        let text = self
            .ctx
            .source
            .get(t.pos..end)
            .unwrap_or_default()
            .to_owned();
        Ok(Operand {
            pos: t.pos,
            text,
            kind,
        })
    }
}

/// Go's number constants: ints (decimal, `0x`, `0o`, `0b`, `_` separators) stay ints,
/// anything with a point or exponent is a float64.
fn parse_number(text: &str) -> Option<OperandKind> {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, body) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let lower = body.to_ascii_lowercase();
    let radix_int = |digits: &str, radix: u32| i64::from_str_radix(digits, radix).ok();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        radix_int(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        radix_int(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        radix_int(b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        radix_int(&lower[1..], 8)
    } else if lower.bytes().all(|b| b.is_ascii_digit()) {
        lower.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(OperandKind::Int(if negative { -i } else { i }));
    }
    if lower
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'+' || b == b'-')
        && lower.bytes().any(|b| b.is_ascii_digit())
    {
        let f: f64 = lower.parse().ok()?;
        return Some(OperandKind::Float(if negative { -f } else { f }));
    }
    None
}

/// Trees keyed by template name.
pub(crate) type TreeSet = HashMap<String, Arc<Tree>>;

/// The trees of one text, keyed by template name, ready to be merged into a set.
pub(crate) fn build_trees(ctx: ParseContext<'_>) -> Result<(Arc<Tree>, TreeSet), TemplateError> {
    let parse_name = ctx.name.to_owned();
    let source = ctx.source.clone();
    let (root, defined) = parse(ctx)?;
    let tree = |root| {
        Arc::new(Tree {
            parse_name: parse_name.clone(),
            source: source.clone(),
            root,
        })
    };
    let defines = defined
        .into_iter()
        .map(|(name, body)| (name, tree(body)))
        .collect();
    Ok((tree(root), defines))
}
