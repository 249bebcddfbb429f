//! Walking parsed trees against data, following Go's `text/template` execution rules.
//!
//! Every node and range iteration costs a step, `{{template}}` calls nest to a bounded
//! depth and output is capped, so a hostile template ends with an error instead of
//! hanging the evaluator or exhausting its memory or stack.

use std::sync::Arc;
use std::time::Instant;

use super::functions::Arity;
use super::parse::{Command, Node, Operand, OperandKind, Pipeline, Tree};
use super::value::Value;
use super::{MissingKey, Template, TemplateError};

/// Control structures and `{{template}}` calls open at once: execution recurses natively,
/// so this bounds the stack a template can take whatever `max_template_depth` says.
const MAX_NESTING: usize = 128;

/// Values built by functions may nest this deep (`args (args (args …))`); dropping and
/// printing values recurse too.
const MAX_VALUE_DEPTH: usize = 64;

/// How a list of nodes finished: normally, or by `{{break}}` / `{{continue}}`.
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    template: &'a Template,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    nesting: usize,
    steps: u64,
    deadline: Instant,
    tree: Arc<Tree>,
    /// The template being executed, named in errors as `executing "NAME"`.
    current: String,
}

impl<'a> Exec<'a> {
    pub fn new(template: &'a Template, tree: Arc<Tree>, name: &str, data: &Value) -> Self {
        Exec {
            template,
            out: String::new(),
            vars: vec![("$".to_owned(), data.clone())],
            depth: 0,
            nesting: 0,
            steps: 0,
            deadline: Instant::now() + template.limits.max_duration,
            tree,
            current: name.to_owned(),
        }
    }

    pub fn run(mut self, data: &Value) -> Result<String, TemplateError> {
        let tree = self.tree.clone();
        self.exec_list(&tree.root, data)?;
        Ok(self.out)
    }

    fn error(&self, pos: usize, node: &str, message: impl Into<String>) -> TemplateError {
        let (line, column) = self.tree.line_col(pos);
        TemplateError::Execute {
            name: self.tree.parse_name.clone(),
            line,
            column,
            template: self.current.clone(),
            node: node.to_owned(),
            message: message.into(),
        }
    }

    fn step(&mut self, pos: usize, node: &str) -> Result<(), TemplateError> {
        self.steps += 1;
        let max = self.template.limits.max_steps;
        if self.steps > max {
            return Err(self.error(pos, node, format!("execution exceeded {max} steps")));
        }
        if Instant::now() > self.deadline {
            let budget = self.template.limits.max_duration;
            return Err(self.error(pos, node, format!("execution exceeded {budget:?}")));
        }
        Ok(())
    }

    /// Rejects a function or method result larger than the value limit.
    fn checked(&self, value: Value, pos: usize, node: &str) -> Result<Value, TemplateError> {
        let max = self.template.limits.max_value_bytes;
        if size_exceeds(&value, max) {
            return Err(self.error(
                pos,
                node,
                format!("value exceeds {max} bytes or {MAX_VALUE_DEPTH} levels of nesting"),
            ));
        }
        Ok(value)
    }

    fn write(&mut self, s: &str, pos: usize, node: &str) -> Result<(), TemplateError> {
        let max = self.template.limits.max_output_bytes;
        if self.out.len() + s.len() > max {
            return Err(self.error(pos, node, format!("output exceeds {max} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn exec_list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for node in nodes {
            match self.exec_node(node, dot)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn exec_node(&mut self, node: &Node, dot: &Value) -> Result<Flow, TemplateError> {
        let nests = !matches!(
            node,
            Node::Text(_) | Node::Action(_) | Node::Break | Node::Continue
        );
        if nests {
            if self.nesting >= MAX_NESTING {
                return Err(self.error(0, "", format!("exceeded maximum nesting ({MAX_NESTING})")));
            }
            self.nesting += 1;
        }
        let result = self.exec_node_inner(node, dot);
        if nests {
            self.nesting -= 1;
        }
        result
    }

    fn exec_node_inner(&mut self, node: &Node, dot: &Value) -> Result<Flow, TemplateError> {
        match node {
            Node::Text(text) => {
                self.step(0, "")?;
                self.write(text, 0, "")?;
            }
            Node::Action(pipe) => {
                self.step(pipe.pos, "")?;
                let value = self.eval_pipeline(pipe, dot)?;
                if pipe.decl.is_empty() {
                    let printed = match value {
                        // Go prints a missing value this way instead of `<nil>`.
                        Value::Nil => "<no value>".to_owned(),
                        other => other.to_string(),
                    };
                    self.write(&printed, pipe.pos, "")?;
                }
            }
            Node::If(branch) | Node::With(branch) => {
                self.step(branch.pipe.pos, "")?;
                let mark = self.vars.len();
                let value = self.eval_pipeline(&branch.pipe, dot)?;
                let is_with = matches!(node, Node::With(_));
                let flow = if value.is_true() {
                    let inner_dot = if is_with { &value } else { dot };
                    self.exec_list(&branch.list, inner_dot)?
                } else if let Some(else_list) = &branch.else_list {
                    self.exec_list(else_list, dot)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(branch) => {
                self.step(branch.pipe.pos, "")?;
                let mark = self.vars.len();
                self.exec_range(branch, dot)?;
                self.vars.truncate(mark);
            }
            Node::Template { pos, name, pipe } => {
                self.exec_template_call(*pos, name, pipe.as_ref(), dot)?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    /// `{{template "name" pipeline}}`: runs the tree with a fresh `$` and variable scope.
    fn exec_template_call(
        &mut self,
        pos: usize,
        name: &str,
        pipe: Option<&Pipeline>,
        dot: &Value,
    ) -> Result<(), TemplateError> {
        self.step(pos, "")?;
        let node_text = format!("{{{{template {name:?}}}}}");
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(p, dot)?,
            None => Value::Nil,
        };
        let Some(tree) = self.template.trees.get(name).cloned() else {
            return Err(self.error(pos, &node_text, format!("template {name:?} not defined")));
        };
        let max_depth = self.template.limits.max_template_depth;
        if self.depth >= max_depth {
            return Err(self.error(
                pos,
                &node_text,
                format!("exceeded maximum template depth ({max_depth})"),
            ));
        }
        self.depth += 1;
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
        let saved_tree = std::mem::replace(&mut self.tree, tree.clone());
        let saved_name = std::mem::replace(&mut self.current, name.to_owned());
        let result = self.exec_list(&tree.root, &new_dot);
        self.vars = saved_vars;
        self.tree = saved_tree;
        self.current = saved_name;
        self.depth -= 1;
        result.map(|_| ())
    }

    fn exec_range(
        &mut self,
        branch: &super::parse::Branch,
        dot: &Value,
    ) -> Result<(), TemplateError> {
        let pipe = &branch.pipe;
        let value = self.eval_commands(pipe, dot)?;
        // Lazy, so `range 100000000` costs steps as it goes instead of memory up front.
        let mut items: Box<dyn Iterator<Item = (Value, Value)>> = match value {
            Value::List(list) => Box::new(
                list.into_iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), v)),
            ),
            // BTreeMap iteration is Go's sorted-key order.
            Value::Map(map) => Box::new(map.into_iter().map(|(k, v)| (Value::String(k), v))),
            Value::Int(n) => Box::new((0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i)))),
            Value::Nil => Box::new(std::iter::empty()),
            other => {
                return Err(self.error(pipe.pos, "", format!("range can't iterate over {other}")));
            }
        };
        let Some(first) = items.next() else {
            if let Some(else_list) = &branch.else_list {
                self.exec_list(else_list, dot)?;
            }
            return Ok(());
        };
        let items = std::iter::once(first).chain(items);
        let mark = self.vars.len();
        for (key, item) in items {
            self.step(pipe.pos, "")?;
            self.vars.truncate(mark);
            match pipe.decl.as_slice() {
                [] => {}
                [value_var] => self.bind(value_var, item.clone(), pipe.is_assign),
                [key_var, value_var, ..] => {
                    self.bind(key_var, key, pipe.is_assign);
                    self.bind(value_var, item.clone(), pipe.is_assign);
                }
            }
            match self.exec_list(&branch.list, &item)? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn bind(&mut self, name: &str, value: Value, is_assign: bool) {
        if is_assign && let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = value;
            return;
        }
        self.vars.push((name.to_owned(), value));
    }

    /// Evaluates a pipeline and binds its declared or assigned variables.
    fn eval_pipeline(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let value = self.eval_commands(pipe, dot)?;
        for name in &pipe.decl {
            self.bind(name, value.clone(), pipe.is_assign);
        }
        Ok(value)
    }

    fn eval_commands(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(cmd, dot, value)?);
        }
        Ok(value.unwrap_or_default())
    }

    fn not_a_function(
        &self,
        op: &Operand,
        args: &[Operand],
        last: &Option<Value>,
    ) -> Result<(), TemplateError> {
        if args.len() > 1 || last.is_some() {
            return Err(self.error(
                op.pos,
                &op.text,
                format!("can't give argument to non-function {}", op.text),
            ));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        cmd: &Command,
        dot: &Value,
        last: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match &first.kind {
            OperandKind::Field(fields) => {
                self.eval_chain(dot.clone(), fields, rest, last, dot, first)
            }
            OperandKind::Variable(name, fields) => {
                let value = self.variable(name, first)?;
                if fields.is_empty() {
                    self.not_a_function(first, &cmd.args, &last)?;
                    return Ok(value);
                }
                self.eval_chain(value, fields, rest, last, dot, first)
            }
            OperandKind::Pipe(pipe, fields) => {
                let value = self.eval_commands(pipe, dot)?;
                if fields.is_empty() {
                    self.not_a_function(first, &cmd.args, &last)?;
                    return Ok(value);
                }
                self.eval_chain(value, fields, rest, last, dot, first)
            }
            OperandKind::Function(name) => {
                self.eval_function(name, first.pos, &cmd.text, rest, last, dot)
            }
            OperandKind::Nil => Err(self.error(first.pos, &first.text, "nil is not a command")),
            _ => {
                self.not_a_function(first, &cmd.args, &last)?;
                self.eval_arg(first, dot)
            }
        }
    }

    fn variable(&self, name: &str, op: &Operand) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.error(op.pos, &op.text, format!("undefined variable: {name}")))
    }

    fn eval_arg(&mut self, op: &Operand, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match &op.kind {
            OperandKind::Dot => dot.clone(),
            OperandKind::Nil => Value::Nil,
            OperandKind::Bool(b) => Value::Bool(*b),
            OperandKind::Int(i) => Value::Int(*i),
            OperandKind::Float(f) => Value::Float(*f),
            OperandKind::String(s) => Value::String(s.clone()),
            OperandKind::Field(fields) => {
                self.eval_chain(dot.clone(), fields, &[], None, dot, op)?
            }
            OperandKind::Variable(name, fields) => {
                let value = self.variable(name, op)?;
                self.eval_chain(value, fields, &[], None, dot, op)?
            }
            OperandKind::Pipe(pipe, fields) => {
                let value = self.eval_commands(pipe, dot)?;
                self.eval_chain(value, fields, &[], None, dot, op)?
            }
            // A function name used as an argument is called without arguments.
            OperandKind::Function(name) => {
                self.eval_function(name, op.pos, &op.text, &[], None, dot)?
            }
        })
    }

    /// Looks up `fields` from `receiver`; arguments go to the last one, which must be a method.
    fn eval_chain(
        &mut self,
        receiver: Value,
        fields: &[String],
        args: &[Operand],
        last: Option<Value>,
        dot: &Value,
        op: &Operand,
    ) -> Result<Value, TemplateError> {
        let mut value = receiver;
        for (i, name) in fields.iter().enumerate() {
            let is_last = i + 1 == fields.len();
            let mut call_args = Vec::new();
            if is_last {
                for arg in args {
                    call_args.push(self.eval_arg(arg, dot)?);
                }
                call_args.extend(last.clone());
            }
            value = self.field(value, name, call_args, op)?;
        }
        Ok(value)
    }

    fn field(
        &mut self,
        receiver: Value,
        name: &str,
        args: Vec<Value>,
        op: &Operand,
    ) -> Result<Value, TemplateError> {
        let methods = &self.template.funcs;
        if let Value::Map(map) = &receiver
            && let Some(v) = map.get(name)
        {
            if !args.is_empty() {
                return Err(self.error(
                    op.pos,
                    &op.text,
                    format!("{name} is not a method but has arguments"),
                ));
            }
            return Ok(v.clone());
        }
        if let Some(result) = methods.call_method(name, &receiver, &args) {
            let value = result
                .map_err(|e| self.error(op.pos, &op.text, format!("error calling {name}: {e}")))?;
            return self.checked(value, op.pos, &op.text);
        }
        match receiver {
            Value::Map(_) => match self.template.missing_key {
                MissingKey::Default => Ok(Value::Nil),
                MissingKey::Zero => Ok(Value::String(String::new())),
                MissingKey::Error => Err(self.error(
                    op.pos,
                    &op.text,
                    format!("map has no entry for key {name:?}"),
                )),
            },
            // Lookups through a missing map entry stay missing instead of failing.
            Value::Nil => Ok(Value::Nil),
            other => Err(self.error(
                op.pos,
                &op.text,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn eval_function(
        &mut self,
        name: &str,
        pos: usize,
        text: &str,
        args: &[Operand],
        last: Option<Value>,
        dot: &Value,
    ) -> Result<Value, TemplateError> {
        let count = args.len() + usize::from(last.is_some());
        if name == "and" || name == "or" {
            // Go evaluates `and`/`or` lazily and returns the deciding operand.
            if count == 0 {
                return Err(self.error(
                    pos,
                    text,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut value = Value::Nil;
            for arg in args {
                value = self.eval_arg(arg, dot)?;
                if value.is_true() == (name == "or") {
                    return Ok(value);
                }
            }
            return Ok(last.unwrap_or(value));
        }
        let Some((arity, function)) = self.template.funcs.get(name) else {
            return Err(self.error(pos, text, format!("{name:?} is not a defined function")));
        };
        let arity_ok = match arity {
            Arity::Exact(n) => count == n,
            Arity::AtLeast(n) => count >= n,
            Arity::Between(lo, hi) => count >= lo && count <= hi,
        };
        if !arity_ok {
            let want = match arity {
                Arity::Exact(n) => n.to_string(),
                Arity::AtLeast(n) | Arity::Between(n, _) => format!("at least {n}"),
            };
            return Err(self.error(
                pos,
                text,
                format!("wrong number of args for {name}: want {want} got {count}"),
            ));
        }
        let mut values = Vec::with_capacity(count);
        for arg in args {
            values.push(self.eval_arg(arg, dot)?);
        }
        values.extend(last);
        let value = function(&values)
            .map_err(|e| self.error(pos, text, format!("error calling {name}: {e}")))?;
        self.checked(value, pos, text)
    }
}

/// Whether a value's approximate size passes `limit`, stopping as soon as it does.
fn size_exceeds(value: &Value, limit: usize) -> bool {
    fn walk(value: &Value, budget: &mut usize, depth: usize) -> bool {
        if depth > MAX_VALUE_DEPTH {
            return true;
        }
        let own = match value {
            Value::String(s) => s.len(),
            Value::List(l) => l.len() * 8,
            Value::Map(m) => m.keys().map(|k| k.len() + 8).sum(),
            _ => 8,
        };
        if own > *budget {
            return true;
        }
        *budget -= own;
        match value {
            Value::List(l) => l.iter().any(|v| walk(v, budget, depth + 1)),
            Value::Map(m) => m.values().any(|v| walk(v, budget, depth + 1)),
            _ => false,
        }
    }
    let mut budget = limit;
    walk(value, &mut budget, 0)
}
