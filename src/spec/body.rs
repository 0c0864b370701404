//! Walking an HCL block body: `dynamic` block expansion, typed attribute conversion with
//! errors that name file:line:col and field, and the free-form JSON rendering of driver
//! `config` (nested blocks become lists, keys stay as written).

use std::ops::Range;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::duration::parse_go_duration;
use super::error::{line_col, ErrorKind, SpecError};
use super::eval::{describe, to_string, type_name, EvalError, Evaluator, Scope};

pub(crate) type Res<T> = Result<T, SpecError>;

/// What an item of a body is.
pub(crate) enum Kind<'a> {
    Attr(&'a Expression),
    Block { labels: Vec<String>, body: &'a Body },
}

/// One attribute or block of a body, after `dynamic` expansion, with the names it sees.
pub(crate) struct Item<'a> {
    pub name: String,
    pub kind: Kind<'a>,
    pub scope: Scope,
    pub span: Option<Range<usize>>,
}

/// The decoding context of one file.
pub(crate) struct Cx<'a> {
    pub ev: Evaluator<'a>,
    pub file: &'a str,
    pub src: &'a str,
}

impl<'a> Cx<'a> {
    pub fn pos(&self, span: &Option<Range<usize>>) -> Option<(usize, usize)> {
        span.as_ref().map(|s| line_col(self.src, s.start))
    }

    pub fn err(
        &self,
        span: &Option<Range<usize>>,
        path: &str,
        msg: impl Into<String>,
    ) -> SpecError {
        SpecError::new(ErrorKind::Shape, self.file, msg)
            .at(self.pos(span))
            .in_path(path)
    }

    fn eval_err(
        &self,
        e: EvalError,
        item_span: &Option<Range<usize>>,
        path: &str,
        field: &str,
    ) -> SpecError {
        let span = if e.span.is_some() {
            e.span
        } else {
            item_span.clone()
        };
        self.err(&span, path, format!("{field}: {}", e.msg))
    }

    pub fn eval(&self, expr: &Expression, scope: &Scope, path: &str, field: &str) -> Res<Value> {
        self.ev
            .eval(expr, scope)
            .map_err(|e| self.eval_err(e, &expr.span(), path, field))
    }

    /// The items of a body with every `dynamic "x" { ... }` replaced by its generated blocks.
    pub fn items(&self, body: &'a Body, scope: &Scope, path: &str) -> Res<Vec<Item<'a>>> {
        let mut out = Vec::new();
        let mut seen: IndexMap<&str, Option<Range<usize>>> = IndexMap::new();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    if let Some(prev) = seen.insert(a.key.as_str(), a.span()) {
                        let at = self
                            .pos(&prev)
                            .map(|(l, c)| format!(" at {l}:{c}"))
                            .unwrap_or_default();
                        return Err(self.err(
                            &a.span(),
                            path,
                            format!(
                                "attribute \"{}\" redefined; it was already set{at}",
                                a.key.as_str()
                            ),
                        ));
                    }
                    out.push(Item {
                        name: a.key.as_str().to_string(),
                        kind: Kind::Attr(&a.value),
                        scope: scope.clone(),
                        span: a.span(),
                    })
                }
                Structure::Block(b) if b.ident.as_str() == "dynamic" => {
                    self.expand_dynamic(b, scope, path, &mut out)?
                }
                Structure::Block(b) => {
                    let labels = b.labels.iter().map(|l| l.as_str().to_string()).collect();
                    out.push(Item {
                        name: b.ident.as_str().to_string(),
                        kind: Kind::Block {
                            labels,
                            body: &b.body,
                        },
                        scope: scope.clone(),
                        span: b.span(),
                    })
                }
            }
        }
        Ok(out)
    }

    fn expand_dynamic(
        &self,
        b: &'a hcl::edit::structure::Block,
        scope: &Scope,
        path: &str,
        out: &mut Vec<Item<'a>>,
    ) -> Res<()> {
        let span = b.span();
        let name = match b.labels.as_slice() {
            [l] => l.as_str().to_string(),
            _ => {
                return Err(self.err(
                    &span,
                    path,
                    "a dynamic block needs exactly one label: the block type to generate",
                ))
            }
        };
        let field = format!("dynamic \"{name}\"");
        let mut for_each = None;
        let mut labels = None;
        let mut iterator = name.clone();
        let mut content = None;
        for s in b.body.iter() {
            match s {
                Structure::Attribute(a) => match a.key.as_str() {
                    "for_each" => for_each = Some(&a.value),
                    "labels" => labels = Some(&a.value),
                    "iterator" => match &a.value {
                        Expression::Variable(v) => iterator = v.as_str().to_string(),
                        _ => return Err(self.err(&a.span(), path, format!("{field}.iterator must be a bare name"))),
                    },
                    other => {
                        return Err(self.err(
                            &a.span(),
                            path,
                            format!("unknown field \"{other}\" in {field}; allowed: for_each, iterator, labels, content"),
                        ))
                    }
                },
                Structure::Block(c) if c.ident.as_str() == "content" => content = Some(&c.body),
                Structure::Block(c) => {
                    return Err(self.err(
                        &c.span(),
                        path,
                        format!("unknown block \"{}\" in {field}; allowed: content", c.ident.as_str()),
                    ))
                }
            }
        }
        let for_each =
            for_each.ok_or_else(|| self.err(&span, path, format!("{field} needs for_each")))?;
        let content = content
            .ok_or_else(|| self.err(&span, path, format!("{field} needs a content block")))?;
        let coll = self.eval(for_each, scope, path, &format!("{field}.for_each"))?;
        let pairs: Vec<(Value, Value)> = match coll {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i as i64), v))
                .collect(),
            Value::Object(o) => o.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            Value::Null => vec![],
            other => {
                return Err(self.err(
                    &for_each.span(),
                    path,
                    format!(
                        "{field}.for_each must be a list or map, got {}",
                        type_name(&other)
                    ),
                ))
            }
        };
        for (k, v) in pairs {
            let mut it = Map::new();
            it.insert("key".into(), k);
            it.insert("value".into(), v);
            let inner = scope.with(&iterator, Value::Object(it));
            let labels = match labels {
                Some(l) => match self.eval(l, &inner, path, &format!("{field}.labels"))? {
                    Value::Array(items) => items
                        .iter()
                        .map(to_string)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| self.err(&l.span(), path, format!("{field}.labels: {m}")))?,
                    other => {
                        return Err(self.err(
                            &l.span(),
                            path,
                            format!(
                                "{field}.labels must be a list of strings, got {}",
                                type_name(&other)
                            ),
                        ))
                    }
                },
                None => vec![],
            };
            out.push(Item {
                name: name.clone(),
                kind: Kind::Block {
                    labels,
                    body: content,
                },
                scope: inner,
                span: span.clone(),
            });
        }
        Ok(())
    }

    /// The value of an attribute item (blocks are an error).
    pub fn value(&self, item: &Item, path: &str, field: &str) -> Res<Value> {
        match &item.kind {
            Kind::Attr(e) => self.eval(e, &item.scope, path, field),
            Kind::Block { .. } => Err(self.err(
                &item.span,
                path,
                format!(
                    "{field} is an attribute: write {} = <value>, not a block",
                    item.name
                ),
            )),
        }
    }

    /// The body of a block item (attributes are an error).
    pub fn block<'i>(
        &self,
        item: &'i Item<'a>,
        path: &str,
        field: &str,
    ) -> Res<(&'a Body, &'i Scope)> {
        match &item.kind {
            Kind::Block { body, labels } => {
                if !labels.is_empty() {
                    return Err(self.err(
                        &item.span,
                        path,
                        format!("{field} block takes no label"),
                    ));
                }
                Ok((body, &item.scope))
            }
            Kind::Attr(_) => Err(self.err(
                &item.span,
                path,
                format!("{field} is a block: write {} {{ ... }}", item.name),
            )),
        }
    }

    pub fn string(&self, item: &Item, path: &str, field: &str) -> Res<String> {
        let v = self.value(item, path, field)?;
        match &v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(_) | Value::Bool(_) => Ok(describe(&v)),
            other => Err(self.err(
                &item.span,
                path,
                format!("{field} must be a string, got {}", type_name(other)),
            )),
        }
    }

    pub fn int(&self, item: &Item, path: &str, field: &str) -> Res<i64> {
        let v = self.value(item, path, field)?;
        let n = match &v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
            Some(_) => Err(self.err(
                &item.span,
                path,
                format!("{field} must be a whole number, got {}", describe(&v)),
            )),
            None => Err(self.err(
                &item.span,
                path,
                format!("{field} must be a number, got {}", describe(&v)),
            )),
        }
    }

    pub fn bool(&self, item: &Item, path: &str, field: &str) -> Res<bool> {
        let v = self.value(item, path, field)?;
        match &v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" => Ok(true),
            Value::String(s) if s == "false" => Ok(false),
            other => Err(self.err(
                &item.span,
                path,
                format!("{field} must be true or false, got {}", describe(other)),
            )),
        }
    }

    /// A Go duration string (`"10s"`, `"1h30m"`) or a number of nanoseconds.
    pub fn duration(&self, item: &Item, path: &str, field: &str) -> Res<i64> {
        let v = self.value(item, path, field)?;
        match &v {
            Value::String(s) => parse_go_duration(s)
                .map_err(|m| self.err(&item.span, path, format!("{field}: {m}"))),
            Value::Number(n) => n.as_i64().ok_or_else(|| {
                self.err(
                    &item.span,
                    path,
                    format!("{field} must be a duration like \"10s\""),
                )
            }),
            other => Err(self.err(
                &item.span,
                path,
                format!(
                    "{field} must be a duration like \"10s\", got {}",
                    describe(other)
                ),
            )),
        }
    }

    pub fn strings(&self, item: &Item, path: &str, field: &str) -> Res<Vec<String>> {
        let v = self.value(item, path, field)?;
        let bad = |what: &str| {
            self.err(
                &item.span,
                path,
                format!("{field} must be a list of strings, got {what}"),
            )
        };
        match &v {
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(describe(i)),
                    other => Err(bad(&format!("a list containing {}", type_name(other)))),
                })
                .collect(),
            Value::Null => Ok(vec![]),
            other => Err(bad(type_name(other))),
        }
    }

    /// A map of strings, written as a block of attributes or as `name = { ... }`.
    pub fn string_map(
        &self,
        item: &Item<'a>,
        path: &str,
        field: &str,
    ) -> Res<IndexMap<String, String>> {
        let obj = match &item.kind {
            Kind::Attr(_) => match self.value(item, path, field)? {
                Value::Object(o) => o,
                Value::Null => Map::new(),
                other => {
                    return Err(self.err(
                        &item.span,
                        path,
                        format!("{field} must be a map, got {}", type_name(&other)),
                    ))
                }
            },
            Kind::Block { .. } => {
                let (body, scope) = self.block(item, path, field)?;
                let mut o = Map::new();
                for it in self.items(body, scope, path)? {
                    let key = format!("{field}.{}", it.name);
                    if let Kind::Block { .. } = it.kind {
                        return Err(self.err(
                            &it.span,
                            path,
                            format!("{key}: {field} holds only key = value pairs, not blocks"),
                        ));
                    }
                    o.insert(it.name.clone(), self.value(&it, path, &key)?);
                }
                o
            }
        };
        obj.into_iter()
            .map(|(k, v)| match &v {
                Value::String(s) => Ok((k, s.clone())),
                Value::Number(_) | Value::Bool(_) => Ok((k, describe(&v))),
                other => Err(self.err(
                    &item.span,
                    path,
                    format!("{field}.{k} must be a string, got {}", type_name(other)),
                )),
            })
            .collect()
    }

    /// Free-form map (driver `config`): attributes as written, nested blocks as lists.
    pub fn free_map(
        &self,
        item: &Item<'a>,
        path: &str,
        field: &str,
    ) -> Res<IndexMap<String, Value>> {
        match &item.kind {
            Kind::Attr(_) => match self.value(item, path, field)? {
                Value::Object(o) => Ok(o.into_iter().collect()),
                other => Err(self.err(
                    &item.span,
                    path,
                    format!("{field} must be a map, got {}", type_name(&other)),
                )),
            },
            Kind::Block { body, .. } => Ok(self
                .object(body, &item.scope, path, field, Keys::AsWritten)?
                .into_iter()
                .collect()),
        }
    }

    /// A block body as a JSON object. Attributes are evaluated; sub-blocks are nested
    /// objects, keyed by `keys`: as written (free-form maps such as `config`), or as Nomad's
    /// API names them (blocks Dispatch does not model, kept in `extra`).
    pub(crate) fn object(
        &self,
        body: &'a Body,
        scope: &Scope,
        path: &str,
        field: &str,
        keys: Keys,
    ) -> Res<Map<String, Value>> {
        let mut out: IndexMap<String, Value> = IndexMap::new();
        for it in self.items(body, scope, path)? {
            let key = format!("{field}.{}", it.name);
            match (&it.kind, keys) {
                (Kind::Attr(_), _) => {
                    let v = self.value(&it, path, &key)?;
                    let name = match keys {
                        Keys::AsWritten => it.name.clone(),
                        Keys::Api => super::extra::attr_key(&it.name),
                    };
                    out.insert(name, v);
                }
                (Kind::Block { labels, body }, Keys::AsWritten) => {
                    let nested = self.object(body, &it.scope, path, &key, Keys::AsWritten)?;
                    let mut v = Value::Object(nested);
                    for l in labels.iter().rev() {
                        let mut m = Map::new();
                        m.insert(l.clone(), v);
                        v = Value::Object(m);
                    }
                    match out
                        .entry(it.name.clone())
                        .or_insert_with(|| Value::Array(vec![]))
                    {
                        Value::Array(a) => a.push(v),
                        _ => {
                            return Err(self.err(
                                &it.span,
                                path,
                                format!("{key} is both an attribute and a block"),
                            ))
                        }
                    }
                }
                // config-like free-form sub-blocks keep their keys as written
                (Kind::Block { .. }, Keys::Api)
                    if matches!(it.name.as_str(), "config" | "options" | "meta" | "headers") =>
                {
                    let m = self.free_map(&it, path, &key)?;
                    out.insert(
                        super::extra::json_key(&it.name),
                        Value::Object(m.into_iter().collect()),
                    );
                }
                (Kind::Block { .. }, Keys::Api) => self.put_extra(&mut out, &it, path)?,
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// How `Cx::object` names what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    /// As written in the file.
    AsWritten,
    /// Nomad's API names (`attr_key`, `json_key`).
    Api,
}

/// Checks a name against the allowed fields of a block, with a helpful error.
pub(crate) fn check_known(
    cx: &Cx,
    item: &Item,
    allowed: &[&str],
    path: &str,
    what: &str,
) -> Res<()> {
    if allowed.contains(&item.name.as_str()) {
        return Ok(());
    }
    let kind = match item.kind {
        Kind::Attr(_) => "field",
        Kind::Block { .. } => "block",
    };
    Err(cx.err(
        &item.span,
        path,
        format!(
            "unknown {kind} \"{}\" in {what}; allowed: {}",
            item.name,
            allowed.join(", ")
        ),
    ))
}
