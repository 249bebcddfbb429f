//! The function registry templates resolve names against, and Go's built-in functions.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::gofmt;
use super::value::Value;

/// A template function: takes the evaluated arguments, returns a value or a message that
/// execution reports as `error calling NAME: MESSAGE`.
pub type Function = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// A method reachable with field syntax (`.Labels.SortedPairs`, `.Alerts.Firing`): given the
/// receiver and arguments it returns `None` when it does not apply to that receiver.
pub type Method = Arc<dyn Fn(&Value, &[Value]) -> Option<Result<Value, String>> + Send + Sync>;

/// How many arguments a function takes, checked before it is called as Go does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exact(usize),
    AtLeast(usize),
    Between(usize, usize),
}

/// The functions and methods a template may call; callers extend it before parsing.
#[derive(Clone, Default)]
pub struct Funcs {
    functions: HashMap<String, (Arity, Function)>,
    methods: HashMap<String, Method>,
}

impl fmt::Debug for Funcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.functions.keys().collect();
        names.sort();
        f.debug_struct("Funcs").field("functions", &names).finish()
    }
}

impl Funcs {
    /// Returns an empty registry: not even Go's built-ins.
    pub fn empty() -> Funcs {
        Funcs::default()
    }

    /// Returns Go's `text/template` built-ins: `and or not eq ne lt le gt ge len index
    /// slice print printf println html js urlquery`.
    pub fn builtins() -> Funcs {
        let mut funcs = Funcs::default();
        // `and`/`or` are evaluated lazily by the executor; these bodies serve direct callers.
        funcs.insert("and", Arity::AtLeast(1), |args| {
            Ok(args
                .iter()
                .find(|a| !a.is_true())
                .unwrap_or(&args[args.len() - 1])
                .clone())
        });
        funcs.insert("or", Arity::AtLeast(1), |args| {
            Ok(args
                .iter()
                .find(|a| a.is_true())
                .unwrap_or(&args[args.len() - 1])
                .clone())
        });
        funcs.insert("not", Arity::Exact(1), |args| {
            Ok(Value::Bool(!args[0].is_true()))
        });
        funcs.insert("eq", Arity::AtLeast(1), |args| {
            if args.len() < 2 {
                return Err("missing argument for comparison".to_owned());
            }
            for other in &args[1..] {
                if equal(&args[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        });
        funcs.insert("ne", Arity::Exact(2), |args| {
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        });
        funcs.insert("lt", Arity::Exact(2), |args| {
            Ok(Value::Bool(order(&args[0], &args[1])? == Ordering::Less))
        });
        funcs.insert("le", Arity::Exact(2), |args| {
            Ok(Value::Bool(order(&args[0], &args[1])? != Ordering::Greater))
        });
        funcs.insert("gt", Arity::Exact(2), |args| {
            Ok(Value::Bool(order(&args[0], &args[1])? == Ordering::Greater))
        });
        funcs.insert("ge", Arity::Exact(2), |args| {
            Ok(Value::Bool(order(&args[0], &args[1])? != Ordering::Less))
        });
        funcs.insert("len", Arity::Exact(1), |args| match &args[0] {
            Value::String(s) => Ok(Value::Int(s.len() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Map(m) => Ok(Value::Int(m.len() as i64)),
            Value::Nil => Err("len of nil pointer".to_owned()),
            other => Err(format!("len of type {}", other.type_name())),
        });
        funcs.insert("index", Arity::AtLeast(1), |args| {
            let mut item = args[0].clone();
            for key in &args[1..] {
                item = index_one(&item, key)?;
            }
            Ok(item)
        });
        funcs.insert("slice", Arity::AtLeast(1), slice);
        funcs.insert("print", Arity::AtLeast(0), |args| {
            Ok(Value::String(gofmt::sprint(args)))
        });
        funcs.insert("println", Arity::AtLeast(0), |args| {
            Ok(Value::String(gofmt::sprintln(args)))
        });
        funcs.insert("printf", Arity::AtLeast(1), |args| {
            let format = expect_str(&args[0])?;
            Ok(Value::String(gofmt::sprintf(format, &args[1..])))
        });
        funcs.insert("html", Arity::AtLeast(0), |args| {
            Ok(Value::String(gofmt::html_escape(&escaper_input(args))))
        });
        funcs.insert("js", Arity::AtLeast(0), |args| {
            Ok(Value::String(gofmt::js_escape(&escaper_input(args))))
        });
        funcs.insert("urlquery", Arity::AtLeast(0), |args| {
            Ok(Value::String(gofmt::query_escape(&escaper_input(args))))
        });
        funcs
    }

    /// Registers (or replaces) a function.
    pub fn insert<F>(&mut self, name: &str, arity: Arity, function: F) -> &mut Self
    where
        F: Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.functions
            .insert(name.to_owned(), (arity, Arc::new(function)));
        self
    }

    /// Registers a method callable with field syntax on values that have no such key.
    pub fn insert_method<M>(&mut self, name: &str, method: M) -> &mut Self
    where
        M: Fn(&Value, &[Value]) -> Option<Result<Value, String>> + Send + Sync + 'static,
    {
        self.methods.insert(name.to_owned(), Arc::new(method));
        self
    }

    /// Adds every function and method of `other`, replacing same-named ones.
    pub fn extend(&mut self, other: &Funcs) -> &mut Self {
        self.functions
            .extend(other.functions.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.methods
            .extend(other.methods.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// Returns whether a function of that name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<(Arity, Function)> {
        self.functions.get(name).cloned()
    }

    pub(crate) fn call_method(
        &self,
        name: &str,
        receiver: &Value,
        args: &[Value],
    ) -> Option<Result<Value, String>> {
        self.methods.get(name).and_then(|m| m(receiver, args))
    }
}

/// Go's message when a function gets an argument of the wrong type.
pub(crate) fn wrong_type(expected: &str, got: &Value) -> String {
    format!(
        "wrong type for value; expected {expected}; got {}",
        got.type_name()
    )
}

pub(crate) fn expect_str(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| wrong_type("string", v))
}

/// `html`, `js` and `urlquery` escape their lone string argument, or else `fmt.Sprint` of all.
fn escaper_input(args: &[Value]) -> String {
    match args {
        [Value::String(s)] => s.clone(),
        _ => gofmt::sprint(args),
    }
}

fn incomparable(a: &Value, b: &Value) -> bool {
    let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_) | Value::Duration(_));
    !(numeric(a) && numeric(b)) && std::mem::discriminant(a) != std::mem::discriminant(b)
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) | Value::Duration(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Go's `eq` for one pair; ints and floats compare by value across kinds.
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, _) | (_, Value::Nil) => Ok(false),
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => {
            Err("invalid type for comparison".to_owned())
        }
        (Value::Int(x), Value::Int(y)) | (Value::Duration(x), Value::Duration(y)) => Ok(x == y),
        (Value::Int(x) | Value::Duration(x), Value::Duration(y) | Value::Int(y)) => Ok(x == y),
        _ if incomparable(a, b) => Err("incompatible types for comparison".to_owned()),
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => Ok(x == y),
            _ => Ok(a == b),
        },
    }
}

/// Go's ordering for `lt le gt ge`: numbers (across int and float) and strings.
fn order(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Ok(x.cmp(y)),
        _ => match (as_f64(a), as_f64(b)) {
            // NaN is neither less nor greater, as in Go.
            (Some(x), Some(y)) => Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal)),
            _ if incomparable(a, b) => Err("incompatible types for comparison".to_owned()),
            _ => Err("invalid type for comparison".to_owned()),
        },
    }
}

fn as_index(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err("cannot index slice/array with nil".to_owned()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

fn index_one(item: &Value, key: &Value) -> Result<Value, String> {
    match item {
        Value::Map(map) => match key {
            Value::String(k) => Ok(map.get(k).cloned().unwrap_or_else(|| {
                // Go's `index` returns the element type's zero value: "" for the
                // `map[string]string` label sets templates index, nil otherwise.
                if map.values().all(|v| matches!(v, Value::String(_))) {
                    Value::String(String::new())
                } else {
                    Value::Nil
                }
            })),
            other => Err(format!(
                "value has type {}; should be string",
                other.type_name()
            )),
        },
        Value::List(list) => {
            let i = as_index(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| list.get(i).cloned())
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::String(s) => {
            let i = as_index(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Nil => Err("index of untyped nil".to_owned()),
        other => Err(format!("can't index item of type {}", other.type_name())),
    }
}

/// Go's `slice item [low [high [max]]]` on strings and lists.
fn slice(args: &[Value]) -> Result<Value, String> {
    let item = &args[0];
    let len = match item {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Nil => return Err("slice of untyped nil".to_owned()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if args.len() > 4 {
        return Err(format!("too many slice indexes: {}", args.len() - 1));
    }
    let mut bounds = [0usize, len, len];
    for (slot, arg) in args[1..].iter().enumerate() {
        let i = as_index(arg)?;
        let i = usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?;
        if i > len {
            return Err(format!("index out of range: {i}"));
        }
        bounds[slot] = i;
    }
    if args.len() == 4 && matches!(item, Value::String(_)) {
        return Err("cannot 3-index slice a string".to_owned());
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    match item {
        Value::String(s) => s
            .get(bounds[0]..bounds[1])
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| "slice splits a UTF-8 character".to_owned()),
        Value::List(l) => Ok(Value::List(l[bounds[0]..bounds[1]].to_vec())),
        _ => unreachable!("checked above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, String> {
        let funcs = Funcs::builtins();
        let (_, f) = funcs.get(name).unwrap();
        f(args)
    }

    #[test]
    fn comparisons_follow_go_with_numeric_cross_kind() {
        assert_eq!(
            call("eq", &[1i64.into(), 1.0f64.into()]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("lt", &[1i64.into(), 1.5f64.into()]),
            Ok(Value::Bool(true))
        );
        assert_eq!(call("gt", &["b".into(), "a".into()]), Ok(Value::Bool(true)));
        assert_eq!(
            call("eq", &[1i64.into(), "1".into()]),
            Err("incompatible types for comparison".to_owned())
        );
        assert_eq!(
            call("lt", &[true.into(), false.into()]),
            Err("invalid type for comparison".to_owned())
        );
        assert_eq!(call("eq", &[Value::Nil, Value::Nil]), Ok(Value::Bool(true)));
    }

    #[test]
    fn index_and_slice() {
        let list = Value::List(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(call("index", &[list.clone(), 1i64.into()]), Ok("b".into()));
        assert_eq!(
            call("index", &[list.clone(), 5i64.into()]),
            Err("index out of range: 5".to_owned())
        );
        assert_eq!(
            call("slice", &[list, 1i64.into()]),
            Ok(Value::List(vec!["b".into(), "c".into()]))
        );
        assert_eq!(
            call("slice", &["hello".into(), 1i64.into(), 3i64.into()]),
            Ok("el".into())
        );
        let map = Value::string_map([("k", "v")]);
        assert_eq!(call("index", &[map.clone(), "k".into()]), Ok("v".into()));
        assert_eq!(call("index", &[map, "missing".into()]), Ok("".into()));
        let mixed = Value::Map([("n".to_owned(), Value::Int(1))].into_iter().collect());
        assert_eq!(call("index", &[mixed, "missing".into()]), Ok(Value::Nil));
    }
}
