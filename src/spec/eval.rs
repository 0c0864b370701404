//! HCL2 expression evaluation as Nomad's jobspec2 does it.
//!
//! Values are `serde_json::Value`. `var.*`, `local.*`, dynamic-block iterators and
//! `for` variables are evaluated; any other reference (`NOMAD_META_x`, `node.unique.id`,
//! `attr.kernel.name`, `dur`, ...) is Nomad's `UndefinedVariable` case and becomes its own
//! source text wrapped in `${...}`, so runtime interpolations survive byte for byte.

use std::cell::RefCell;
use std::ops::Range;

use hcl::edit::expr::{
    BinaryOperator, Expression, ForExpr, ObjectKey, TraversalOperator, UnaryOperator,
};
use hcl::edit::template::{Directive, Element, Template};
use hcl::edit::Span;
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use super::funcs;

/// An evaluation failure, with the byte span of the offending expression when known.
#[derive(Debug, Clone)]
pub struct EvalError {
    pub span: Option<Range<usize>>,
    pub msg: String,
}

impl EvalError {
    pub fn new(span: Option<Range<usize>>, msg: impl Into<String>) -> Self {
        EvalError {
            span,
            msg: msg.into(),
        }
    }
}

type R<T> = Result<T, EvalError>;

/// Names bound by dynamic blocks (`group.value`) and `for` expressions.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    names: Vec<(String, Value)>,
}

impl Scope {
    pub fn with(&self, name: &str, value: Value) -> Scope {
        let mut names = self.names.clone();
        names.push((name.to_string(), value));
        Scope { names }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.names
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Evaluates expressions of one file: its variables and (lazily) its locals.
pub struct Evaluator<'a> {
    src: &'a str,
    vars: IndexMap<String, Value>,
    locals: IndexMap<String, &'a Expression>,
    cache: RefCell<IndexMap<String, Value>>,
    active: RefCell<Vec<String>>,
}

impl<'a> Evaluator<'a> {
    pub fn new(src: &'a str) -> Self {
        Evaluator {
            src,
            vars: IndexMap::new(),
            locals: IndexMap::new(),
            cache: RefCell::new(IndexMap::new()),
            active: RefCell::new(Vec::new()),
        }
    }

    pub fn set_vars(&mut self, vars: IndexMap<String, Value>) {
        self.vars = vars;
    }

    pub fn add_local(&mut self, name: &str, expr: &'a Expression) -> bool {
        self.locals.insert(name.to_string(), expr).is_none()
    }

    fn local(&self, name: &str, span: Option<Range<usize>>) -> R<Value> {
        if let Some(v) = self.cache.borrow().get(name) {
            return Ok(v.clone());
        }
        let expr = *self.locals.get(name).ok_or_else(|| {
            EvalError::new(
                span.clone(),
                format!("unknown local value \"local.{name}\" (no such entry in a locals block)"),
            )
        })?;
        if self.active.borrow().iter().any(|n| n == name) {
            return Err(EvalError::new(
                span,
                format!("local value \"local.{name}\" refers to itself"),
            ));
        }
        self.active.borrow_mut().push(name.to_string());
        let v = self.eval(expr, &Scope::default());
        self.active.borrow_mut().pop();
        let v = v?;
        self.cache.borrow_mut().insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// `${<source text>}` for an expression Nomad leaves to the client.
    fn passthrough(&self, expr: &Expression) -> R<Value> {
        match expr.span().and_then(|s| self.src.get(s)) {
            Some(text) => Ok(Value::String(format!("${{{text}}}"))),
            None => Err(EvalError::new(None, "unknown variable")),
        }
    }

    pub fn eval(&self, expr: &Expression, scope: &Scope) -> R<Value> {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(number(n.value())),
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(a) => a
                .iter()
                .map(|e| self.eval(e, scope))
                .collect::<R<Vec<_>>>()
                .map(Value::Array),
            Expression::Object(o) => {
                let mut map = Map::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(id) => id.as_str().to_string(),
                        ObjectKey::Expression(e) => {
                            let kv = self.eval(e, scope)?;
                            to_string(&kv).map_err(|m| EvalError::new(e.span(), m))?
                        }
                    };
                    map.insert(key, self.eval(v.expr(), scope)?);
                }
                Ok(Value::Object(map))
            }
            Expression::StringTemplate(t) => self.template_value(t, scope),
            Expression::HeredocTemplate(h) => self.template_value(&h.template, scope),
            Expression::Parenthesis(p) => self.eval(p.inner(), scope),
            Expression::Variable(v) => match self.root(v.as_str(), scope) {
                Some(val) => Ok(val),
                None if v.as_str() == "local" => Err(EvalError::new(
                    expr.span(),
                    "\"local\" must be followed by a name (local.<name>)",
                )),
                None => self.passthrough(expr),
            },
            Expression::Traversal(t) => self.traversal(expr, &t.expr, &t.operators, scope),
            Expression::FuncCall(f) => {
                let mut args = Vec::new();
                for a in f.args.iter() {
                    args.push(self.eval(a, scope)?);
                }
                if f.args.expand_final() {
                    match args.pop() {
                        Some(Value::Array(rest)) => args.extend(rest),
                        _ => {
                            return Err(EvalError::new(
                                expr.span(),
                                "the final argument before ... must be a list",
                            ))
                        }
                    }
                }
                let name = f.name.name.as_str();
                funcs::call(name, args)
                    .map_err(|m| EvalError::new(expr.span(), format!("{name}(): {m}")))
            }
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr, scope)?;
                if truthy(&cond).map_err(|m| EvalError::new(c.cond_expr.span(), m))? {
                    self.eval(&c.true_expr, scope)
                } else {
                    self.eval(&c.false_expr, scope)
                }
            }
            Expression::UnaryOp(u) => {
                let v = self.eval(&u.expr, scope)?;
                match u.operator.value() {
                    UnaryOperator::Neg => to_f64(&v)
                        .map(|n| num(-n))
                        .map_err(|m| EvalError::new(expr.span(), m)),
                    UnaryOperator::Not => truthy(&v)
                        .map(|b| Value::Bool(!b))
                        .map_err(|m| EvalError::new(expr.span(), m)),
                }
            }
            Expression::BinaryOp(b) => {
                let op = *b.operator.value();
                let l = self.eval(&b.lhs_expr, scope)?;
                // short-circuit logic
                if op == BinaryOperator::And || op == BinaryOperator::Or {
                    let lb = truthy(&l).map_err(|m| EvalError::new(b.lhs_expr.span(), m))?;
                    if (op == BinaryOperator::And && !lb) || (op == BinaryOperator::Or && lb) {
                        return Ok(Value::Bool(lb));
                    }
                    let r = self.eval(&b.rhs_expr, scope)?;
                    return truthy(&r)
                        .map(Value::Bool)
                        .map_err(|m| EvalError::new(b.rhs_expr.span(), m));
                }
                let r = self.eval(&b.rhs_expr, scope)?;
                binary(op, &l, &r).map_err(|m| EvalError::new(expr.span(), m))
            }
            Expression::ForExpr(f) => self.for_expr(f, scope),
        }
    }

    /// Value of a root name, or None when it is a runtime reference to pass through.
    fn root(&self, name: &str, scope: &Scope) -> Option<Value> {
        if let Some(v) = scope.get(name) {
            return Some(v.clone());
        }
        if name == "var" {
            let map: Map<String, Value> = self
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Some(Value::Object(map));
        }
        None
    }

    fn traversal(
        &self,
        whole: &Expression,
        base: &Expression,
        ops: &[hcl::edit::Decorated<TraversalOperator>],
        scope: &Scope,
    ) -> R<Value> {
        let mut ops = ops;
        let mut value = match base {
            Expression::Variable(v) if v.as_str() == "local" && scope.get("local").is_none() => {
                match ops.first().map(|o| o.value()) {
                    Some(TraversalOperator::GetAttr(name)) => {
                        ops = &ops[1..];
                        self.local(name.as_str(), whole.span())?
                    }
                    _ => {
                        return Err(EvalError::new(
                            whole.span(),
                            "\"local\" must be followed by a name (local.<name>)",
                        ))
                    }
                }
            }
            Expression::Variable(v) => match self.root(v.as_str(), scope) {
                Some(val) => val,
                None => return self.passthrough(whole),
            },
            other => self.eval(other, scope)?,
        };
        let root_name = match base {
            Expression::Variable(v) => v.as_str().to_string(),
            _ => String::new(),
        };
        let mut i = 0;
        while i < ops.len() {
            match ops[i].value() {
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match value {
                        Value::Array(items) => items,
                        Value::Null => vec![],
                        other => vec![other],
                    };
                    let rest = &ops[i + 1..];
                    let mut out = Vec::new();
                    for item in items {
                        out.push(apply_ops(self, item, rest, scope, whole, &root_name)?);
                    }
                    return Ok(Value::Array(out));
                }
                _ => {
                    value = apply_ops(self, value, &ops[i..=i], scope, whole, &root_name)?;
                }
            }
            i += 1;
        }
        Ok(value)
    }

    fn for_expr(&self, f: &ForExpr, scope: &Scope) -> R<Value> {
        let coll = self.eval(&f.intro.collection_expr, scope)?;
        let pairs: Vec<(Value, Value)> = match coll {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i as i64), v))
                .collect(),
            Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            _ => {
                return Err(EvalError::new(
                    f.intro.collection_expr.span(),
                    "for expression needs a list or object",
                ))
            }
        };
        let mut arr = Vec::new();
        let mut obj = Map::new();
        for (k, v) in pairs {
            let mut s = scope.with(f.intro.value_var.as_str(), v);
            if let Some(kv) = &f.intro.key_var {
                s = s.with(kv.as_str(), k);
            }
            if let Some(cond) = &f.cond {
                let c = self.eval(&cond.expr, &s)?;
                if !truthy(&c).map_err(|m| EvalError::new(cond.expr.span(), m))? {
                    continue;
                }
            }
            let val = self.eval(&f.value_expr, &s)?;
            match &f.key_expr {
                Some(ke) => {
                    let key = self.eval(ke, &s)?;
                    let key = to_string(&key).map_err(|m| EvalError::new(ke.span(), m))?;
                    obj.insert(key, val);
                }
                None => arr.push(val),
            }
        }
        Ok(if f.key_expr.is_some() {
            Value::Object(obj)
        } else {
            Value::Array(arr)
        })
    }

    fn template_value(&self, t: &Template, scope: &Scope) -> R<Value> {
        if let Some(Element::Interpolation(i)) = t.as_single_element() {
            return self.eval(&i.expr, scope);
        }
        let mut out = String::new();
        self.render(t, scope, &mut out, &mut false)?;
        Ok(Value::String(out))
    }

    fn render(
        &self,
        t: &Template,
        scope: &Scope,
        out: &mut String,
        strip_next: &mut bool,
    ) -> R<()> {
        for el in t.iter() {
            match el {
                Element::Literal(s) => {
                    let s = s.value();
                    if *strip_next {
                        out.push_str(s.trim_start());
                    } else {
                        out.push_str(s);
                    }
                    *strip_next = false;
                }
                Element::Interpolation(i) => {
                    if i.strip.strip_start() {
                        trim_end(out);
                    }
                    let v = self.eval(&i.expr, scope)?;
                    out.push_str(&to_string(&v).map_err(|m| EvalError::new(i.expr.span(), m))?);
                    *strip_next = i.strip.strip_end();
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        if d.if_expr.strip.strip_start() {
                            trim_end(out);
                        }
                        *strip_next = d.if_expr.strip.strip_end();
                        let c = self.eval(&d.if_expr.cond_expr, scope)?;
                        let c = truthy(&c)
                            .map_err(|m| EvalError::new(d.if_expr.cond_expr.span(), m))?;
                        if c {
                            self.render(&d.if_expr.template, scope, out, strip_next)?;
                        } else if let Some(e) = &d.else_expr {
                            if e.strip.strip_start() {
                                trim_end(out);
                            }
                            *strip_next = e.strip.strip_end();
                            self.render(&e.template, scope, out, strip_next)?;
                        }
                        if d.endif_expr.strip.strip_start() {
                            trim_end(out);
                        }
                        *strip_next = d.endif_expr.strip.strip_end();
                    }
                    Directive::For(d) => {
                        let fe = &d.for_expr;
                        let coll = self.eval(&fe.collection_expr, scope)?;
                        let pairs: Vec<(Value, Value)> = match coll {
                            Value::Array(a) => a
                                .into_iter()
                                .enumerate()
                                .map(|(i, v)| (Value::from(i as i64), v))
                                .collect(),
                            Value::Object(o) => {
                                o.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                            }
                            _ => {
                                return Err(EvalError::new(
                                    fe.collection_expr.span(),
                                    "for directive needs a list or object",
                                ))
                            }
                        };
                        for (k, v) in pairs {
                            let mut s = scope.with(fe.value_var.as_str(), v);
                            if let Some(kv) = &fe.key_var {
                                s = s.with(kv.as_str(), k);
                            }
                            *strip_next = fe.strip.strip_end();
                            self.render(&fe.template, &s, out, strip_next)?;
                        }
                        *strip_next = d.endfor_expr.strip.strip_end();
                    }
                },
            }
        }
        Ok(())
    }
}

fn apply_ops(
    ev: &Evaluator,
    mut value: Value,
    ops: &[hcl::edit::Decorated<TraversalOperator>],
    scope: &Scope,
    whole: &Expression,
    root: &str,
) -> R<Value> {
    for op in ops {
        value = match op.value() {
            TraversalOperator::GetAttr(name) => match value {
                Value::Object(mut m) => match m.swap_remove(name.as_str()) {
                    Some(v) => v,
                    None if root == "var" => {
                        return Err(EvalError::new(
                            whole.span(),
                            format!(
                                "undeclared input variable \"var.{}\" (declare it with a variable block)",
                                name.as_str()
                            ),
                        ))
                    }
                    None => {
                        return Err(EvalError::new(
                            whole.span(),
                            format!("object has no attribute \"{}\"", name.as_str()),
                        ))
                    }
                },
                _ => {
                    return Err(EvalError::new(
                        whole.span(),
                        format!("cannot read attribute \"{}\" of a non-object", name.as_str()),
                    ))
                }
            },
            TraversalOperator::Index(e) => {
                let k = ev.eval(e, scope)?;
                index(value, &k).map_err(|m| EvalError::new(whole.span(), m))?
            }
            TraversalOperator::LegacyIndex(n) => {
                index(value, &Value::from(*n.value())).map_err(|m| EvalError::new(whole.span(), m))?
            }
            TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                return Err(EvalError::new(whole.span(), "nested splat is not supported"))
            }
        };
    }
    Ok(value)
}

fn index(value: Value, key: &Value) -> Result<Value, String> {
    match value {
        Value::Array(mut a) => {
            let i = to_f64(key)? as i64;
            if i < 0 || i as usize >= a.len() {
                return Err(format!("index {i} out of range for list of {}", a.len()));
            }
            Ok(a.swap_remove(i as usize))
        }
        Value::Object(mut m) => {
            let k = to_string(key)?;
            m.swap_remove(&k)
                .ok_or_else(|| format!("the given key {k:?} does not exist in this map"))
        }
        _ => Err("only lists and maps can be indexed".into()),
    }
}

fn trim_end(s: &mut String) {
    let len = s.trim_end().len();
    s.truncate(len);
}

fn number(n: &hcl::edit::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::from(i)
    } else if let Some(u) = n.as_u64() {
        Value::from(u)
    } else {
        num(n.as_f64().unwrap_or(0.0))
    }
}

/// A JSON number, integral when the value is a whole number.
pub fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// A number, or a string holding one (HCL's automatic conversion).
pub fn to_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "invalid number".to_string()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("a number is required, got {s:?}")),
        other => Err(format!("a number is required, got {}", type_name(other))),
    }
}

pub fn truthy(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(format!("a bool is required, got {}", describe(other))),
    }
}

/// String conversion for interpolation and string fields.
pub fn to_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("cannot use a null value as a string".into()),
        other => Err(format!("a string is required, got {}", type_name(other))),
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Short description of a value for error messages: strings quoted, others by type.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => type_name(other).to_string(),
    }
}

fn equal(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => l == r,
    }
}

fn binary(op: BinaryOperator, l: &Value, r: &Value) -> Result<Value, String> {
    use BinaryOperator::*;
    Ok(match op {
        Eq => Value::Bool(equal(l, r)),
        NotEq => Value::Bool(!equal(l, r)),
        And | Or => logic(op, l, r)?,
        _ => {
            let (a, b) = (to_f64(l)?, to_f64(r)?);
            match op {
                LessEq => Value::Bool(a <= b),
                GreaterEq => Value::Bool(a >= b),
                Less => Value::Bool(a < b),
                Greater => Value::Bool(a > b),
                Plus => num(a + b),
                Minus => num(a - b),
                Mul => num(a * b),
                Div => {
                    if b == 0.0 {
                        return Err("division by zero".into());
                    }
                    num(a / b)
                }
                Mod => {
                    if b == 0.0 {
                        return Err("modulo by zero".into());
                    }
                    num(a % b)
                }
                _ => return Err("unsupported operator".into()),
            }
        }
    })
}

fn logic(op: BinaryOperator, l: &Value, r: &Value) -> Result<Value, String> {
    let (a, b) = (truthy(l)?, truthy(r)?);
    Ok(Value::Bool(if op == BinaryOperator::And {
        a && b
    } else {
        a || b
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(src: &str) -> Result<Value, String> {
        let body = hcl::edit::parser::parse_body(src).map_err(|e| e.to_string())?;
        let attr = body.get_attribute("x").ok_or("no x")?;
        let mut e = Evaluator::new(src);
        let mut vars = IndexMap::new();
        vars.insert("name".to_string(), Value::from("web"));
        vars.insert("n".to_string(), Value::from(3));
        e.set_vars(vars);
        e.eval(&attr.value, &Scope::default()).map_err(|e| e.msg)
    }

    #[test]
    fn runtime_references_pass_through_verbatim() {
        assert_eq!(
            ev(r#"x = "a-${NOMAD_META_input}-${node.unique.id}-${attr.kernel.name}""#),
            Ok(Value::from(
                "a-${NOMAD_META_input}-${node.unique.id}-${attr.kernel.name}"
            ))
        );
        assert_eq!(
            ev(r#"x = "$${X} ${var.name}""#),
            Ok(Value::from("${X} web"))
        );
        assert_eq!(ev("x = node.class"), Ok(Value::from("${node.class}")));
    }

    #[test]
    fn arithmetic_conditionals_functions() {
        assert_eq!(ev("x = -1"), Ok(Value::from(-1)));
        assert_eq!(ev("x = var.n * 2 + 1"), Ok(Value::from(7)));
        assert_eq!(
            ev(r#"x = var.n > 2 ? "big" : "small""#),
            Ok(Value::from("big"))
        );
        assert_eq!(ev(r#"x = upper(var.name)"#), Ok(Value::from("WEB")));
        assert_eq!(
            ev(r#"x = "%{ if var.name != "" }${var.name}%{ else }none%{ endif }""#),
            Ok(Value::from("web"))
        );
        assert_eq!(
            ev(r#"x = [for s in ["a", "b"] : upper(s)]"#),
            Ok(serde_json::json!(["A", "B"]))
        );
        assert_eq!(ev(r#"x = {"a": 1, b = 2}["b"]"#), Ok(Value::from(2)));
    }

    #[test]
    fn template_directives_and_strip_markers() {
        assert_eq!(
            ev(r#"x = "%{ for s in ["a", "b"] }<${s}>%{ endfor }""#),
            Ok(Value::from("<a><b>"))
        );
        assert_eq!(
            ev(r#"x = "a   ${~ var.name ~}   b""#),
            Ok(Value::from("awebb"))
        );
        assert_eq!(
            ev("x = <<-EOT\n    k=${var.n}\n      ${NOMAD_META_x}\n    EOT\n"),
            Ok(Value::from("k=3\n  ${NOMAD_META_x}\n"))
        );
        assert_eq!(
            ev(r#"x = "${ NOMAD_META_x }""#),
            Ok(Value::from("${NOMAD_META_x}"))
        );
        assert_eq!(
            ev(r#"x = "%%{ if } $${x}""#),
            Ok(Value::from("%{ if } ${x}"))
        );
    }

    #[test]
    fn undeclared_variable_is_an_error() {
        let err = ev("x = var.nope").unwrap_err();
        assert!(err.contains("var.nope"), "{err}");
    }
}
