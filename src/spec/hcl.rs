//! HCL2 job files: syntax errors (with HCL1 hints), `variable` and `locals` blocks, and the
//! top level (`job`), handing the job block to `decode`.

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use indexmap::IndexMap;
use serde_json::Value;

use super::body::{check_known, Cx, Kind, Res};
use super::decode;
use super::error::{line_col, ErrorKind, SpecError};
use super::eval::{num, to_f64, to_string, truthy, type_name, Evaluator, Scope};
use crate::model::Job;

/// Parse an HCL2 job file, with `-var name=value` style overrides.
pub fn parse(src: &str, file: &str, overrides: &IndexMap<String, String>) -> Res<Job> {
    let body = hcl::edit::parser::parse_body(src).map_err(|e| syntax_error(src, file, &e))?;
    let vars = variables(&body, src, file, overrides)?;
    let mut ev = Evaluator::new(src);
    ev.set_vars(vars);
    for s in body.iter() {
        if let Structure::Block(b) = s {
            if b.ident.as_str() == "locals" {
                for a in b.body.attributes() {
                    if !ev.add_local(a.key.as_str(), &a.value) {
                        return Err(SpecError::new(
                            ErrorKind::Shape,
                            file,
                            format!("duplicate local value \"local.{}\"", a.key.as_str()),
                        )
                        .at(a.span().map(|s| line_col(src, s.start))));
                    }
                }
            }
        }
    }
    let cx = Cx { ev, file, src };
    let mut job = None;
    for item in cx.items(&body, &decode::root_scope(), "")? {
        check_known(
            &cx,
            &item,
            &["job", "variable", "variables", "locals"],
            "",
            "the file",
        )?;
        if let Kind::Attr(_) = item.kind {
            return Err(cx.err(
                &item.span,
                "",
                format!(
                    "{} must be a block; the file holds job, variable and locals blocks",
                    item.name
                ),
            ));
        }
        if item.name == "job" {
            if job.is_some() {
                return Err(cx.err(&item.span, "", "only one job block is allowed per file"));
            }
            job = Some(decode::job(&cx, &item)?);
        }
    }
    job.ok_or_else(|| {
        SpecError::new(
            ErrorKind::Shape,
            file,
            "no job block found (expected job \"<id>\" { ... })",
        )
    })
}

fn syntax_error(src: &str, file: &str, e: &hcl::edit::parser::Error) -> SpecError {
    let loc = e.location();
    let (line, col) = (loc.line(), loc.column());
    let mut msg = e.message().to_string();
    if let Some(hint) = hcl1_hint(src, line) {
        msg = format!("{hint} ({msg})");
    }
    if e.line().contains("<< ") {
        msg = format!("{msg}; a heredoc is written <<EOT or <<-EOT, with no space after <<");
    }
    let text = e.line().trim_end();
    if !text.is_empty() {
        msg = format!("{msg}\n    {line} | {text}");
    }
    SpecError::new(
        ErrorKind::Syntax,
        file,
        format!("invalid HCL2 syntax: {msg}"),
    )
    .at(Some((line, col)))
}

/// Recognises the two common HCL1-only constructs near the error line.
fn hcl1_hint(src: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    let start = line.saturating_sub(2);
    for l in lines.get(start..line.min(lines.len()))?.iter().rev() {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix('"') {
            if let Some(end) = rest.find('"') {
                if rest[end + 1..].trim_start().starts_with('=') {
                    let name = &rest[..end];
                    return Some(format!(
                        "HCL1 syntax is not supported: quoted attribute names must be written unquoted ({name} = ...)"
                    ));
                }
            }
        }
        let no_comment = t.split(" #").next().unwrap_or(t).trim_end();
        if no_comment.ends_with(',') && no_comment.contains('=') {
            return Some(
                "HCL1 syntax is not supported: remove the comma after the attribute value (HCL2 separates attributes with newlines)"
                    .to_string(),
            );
        }
    }
    None
}

/// Values of the `variable` blocks: defaults converted to their type, then overrides.
fn variables(
    body: &Body,
    src: &str,
    file: &str,
    overrides: &IndexMap<String, String>,
) -> Res<IndexMap<String, Value>> {
    let plain = Evaluator::new(src);
    let err = |span: Option<std::ops::Range<usize>>, msg: String| {
        SpecError::new(ErrorKind::Shape, file, msg).at(span.map(|s| line_col(src, s.start)))
    };
    let mut out = IndexMap::new();
    for b in body.blocks().filter(|b| b.ident.as_str() == "variable") {
        let name = match b.labels.as_slice() {
            [l] => l.as_str().to_string(),
            _ => {
                return Err(err(
                    b.span(),
                    "variable block needs exactly one label: variable \"name\" { ... }".into(),
                ))
            }
        };
        let path = format!("variable {name:?}");
        let mut ty: Option<&Expression> = None;
        let mut default = None;
        for s in b.body.iter() {
            match s {
                Structure::Attribute(a) => match a.key.as_str() {
                    "type" => ty = Some(&a.value),
                    "default" => {
                        let v = plain
                            .eval(&a.value, &Scope::default())
                            .map_err(|e| err(e.span.or(a.span()), format!("{path}: default: {}", e.msg)))?;
                        default = Some((v, a.span()));
                    }
                    "description" | "sensitive" | "nullable" => {}
                    other => {
                        return Err(err(
                            a.span(),
                            format!("{path}: unknown field \"{other}\"; allowed: type, default, description, sensitive, nullable, validation"),
                        ))
                    }
                },
                Structure::Block(v) if v.ident.as_str() == "validation" => {}
                Structure::Block(v) => {
                    return Err(err(v.span(), format!("{path}: unknown block \"{}\"; allowed: validation", v.ident.as_str())))
                }
            }
        }
        let value = match (overrides.get(&name), default) {
            (Some(raw), _) => from_override(raw, ty).map_err(|m| {
                SpecError::new(ErrorKind::Shape, file, format!("Invalid value for variable {name:?} (-var {name}={raw}): {m}"))
            })?,
            (None, Some((v, span))) => match ty {
                Some(t) => convert(v, t).map_err(|m| err(span, format!("{path}: default: {m}")))?,
                None => v,
            },
            (None, None) => {
                return Err(err(
                    b.span(),
                    format!("Unset variable {name:?}: a used variable must be set (-var {name}=...) or have a default value"),
                ))
            }
        };
        out.insert(name, value);
    }
    // `variables { name = default }` shorthand: untyped variables with defaults
    for b in body.blocks().filter(|b| b.ident.as_str() == "variables") {
        for a in b.body.attributes() {
            let name = a.key.as_str().to_string();
            let value = match overrides.get(&name) {
                Some(raw) => Value::from(raw.as_str()),
                None => plain.eval(&a.value, &Scope::default()).map_err(|e| {
                    err(e.span.or(a.span()), format!("variables.{name}: {}", e.msg))
                })?,
            };
            if out.insert(name.clone(), value).is_some() {
                return Err(err(
                    a.span(),
                    format!("variable {name:?} is declared twice"),
                ));
            }
        }
    }
    for k in overrides.keys() {
        if !out.contains_key(k) {
            return Err(SpecError::new(
                ErrorKind::Shape,
                file,
                format!("Undefined -var variable {k:?}: declare it with a variable block"),
            ));
        }
    }
    Ok(out)
}

fn type_keyword(ty: &Expression) -> Option<&str> {
    match ty {
        Expression::Variable(v) => Some(v.as_str()),
        Expression::FuncCall(f) => Some(f.name.name.as_str()),
        _ => None,
    }
}

/// A `-var` value: strings stay strings, other types are read as HCL values.
fn from_override(raw: &str, ty: Option<&Expression>) -> Result<Value, String> {
    let s = Value::from(raw);
    let Some(ty) = ty else { return Ok(s) };
    match type_keyword(ty) {
        Some("string") | Some("number") | Some("bool") => convert(s, ty),
        _ => {
            let parsed = hcl::edit::parser::parse_expr(raw)
                .ok()
                .and_then(|e| Evaluator::new(raw).eval(&e, &Scope::default()).ok());
            match parsed {
                Some(v) => convert(v, ty),
                None => convert(s, ty),
            }
        }
    }
}

/// HCL type conversion of a value to a declared variable type.
fn convert(v: Value, ty: &Expression) -> Result<Value, String> {
    let elem = match ty {
        Expression::FuncCall(f) => f.args.iter().next(),
        _ => None,
    };
    match type_keyword(ty) {
        Some("string") => to_string(&v).map(Value::from),
        Some("number") => to_f64(&v).map(num),
        Some("bool") => truthy(&v).map(Value::Bool),
        Some("list") | Some("set") => match v {
            Value::Array(items) => items
                .into_iter()
                .map(|i| match elem {
                    Some(t) => convert(i, t),
                    None => Ok(i),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Err(format!("a list is required, got {}", type_name(&other))),
        },
        Some("map") => match v {
            Value::Object(o) => o
                .into_iter()
                .map(|(k, i)| {
                    let i = match elem {
                        Some(t) => convert(i, t)?,
                        None => i,
                    };
                    Ok((k, i))
                })
                .collect::<Result<serde_json::Map<_, _>, String>>()
                .map(Value::Object),
            other => Err(format!("a map is required, got {}", type_name(&other))),
        },
        _ => Ok(v),
    }
}
