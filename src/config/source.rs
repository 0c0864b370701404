//! Config files as written: which files a `-config` path names (a directory = its `*.hcl`
//! and `*.json` in name order), and each file parsed (HCL or JSON) into a `Tree` of values
//! that remember their line, so every later error can name `file:line`.

use std::path::{Path, PathBuf};

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use indexmap::IndexMap;

use super::ConfigError;

/// A value from a config file and the line it starts on.
#[derive(Debug, Clone)]
pub struct Entry {
    pub line: usize,
    pub node: Node,
}

#[derive(Debug, Clone)]
pub enum Node {
    Str(String),
    /// The number as written (so `4646` and `4646.5` can be told apart).
    Num(String),
    Bool(bool),
    Null,
    List(Vec<Entry>),
    /// A block, an object attribute, or a JSON object.
    Object(IndexMap<String, Entry>),
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Str(_) => "a string",
            Node::Num(_) => "a number",
            Node::Bool(_) => "a bool",
            Node::Null => "null",
            Node::List(_) => "a list",
            Node::Object(_) => "a block",
        }
    }
}

/// One parsed config file: its top-level keys.
#[derive(Debug, Clone)]
pub struct Tree {
    pub file: PathBuf,
    pub root: IndexMap<String, Entry>,
}

/// The files named by one `-config` argument, in load order. A directory gives its `*.hcl`
/// and `*.json` files (not recursively), in lexical order, skipping editor temp files.
pub fn files_of(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let editor_temp = name.ends_with('~') || name.starts_with(".#") || name.starts_with('#');
        let wanted = name.ends_with(".hcl") || name.ends_with(".json");
        let is_file = entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink());
        if wanted && !editor_temp && is_file {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Read and parse one file: JSON when its name ends in `.json` (or its text starts with `{`),
/// HCL otherwise.
pub fn read(file: &Path) -> Result<Tree, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let json = file.extension().is_some_and(|e| e == "json")
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{');
    let root = if json {
        parse_json(file, &text)?
    } else {
        parse_hcl(file, &text)?
    };
    Ok(Tree {
        file: file.to_path_buf(),
        root,
    })
}

fn syntax(file: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Insert `key`, refusing a key given twice in one file.
fn insert(
    file: &Path,
    map: &mut IndexMap<String, Entry>,
    prefix: &str,
    key: String,
    entry: Entry,
) -> Result<(), ConfigError> {
    if let Some(first) = map.get(&key) {
        return Err(syntax(
            file,
            entry.line,
            format!(
                "{prefix}{key} is given twice in this file (first on line {})",
                first.line
            ),
        ));
    }
    map.insert(key, entry);
    Ok(())
}

// ---- HCL ----

fn parse_hcl(file: &Path, text: &str) -> Result<IndexMap<String, Entry>, ConfigError> {
    let body = hcl::edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        syntax(file, loc.line(), format!("invalid HCL: {}", e.message()))
    })?;
    hcl_body(file, text, &body, "")
}

fn hcl_body(
    file: &Path,
    text: &str,
    body: &Body,
    prefix: &str,
) -> Result<IndexMap<String, Entry>, ConfigError> {
    let mut out = IndexMap::new();
    for item in body.iter() {
        let line = item.span().map_or(0, |s| line_of(text, s.start));
        match item {
            Structure::Attribute(a) => {
                let key = a.key.as_str().to_string();
                let node = hcl_expr(file, text, &a.value, &format!("{prefix}{key}"))?;
                insert(file, &mut out, prefix, key, Entry { line, node })?;
            }
            Structure::Block(b) => {
                let key = b.ident.as_str().to_string();
                if let Some(label) = b.labels.first() {
                    return Err(syntax(
                        file,
                        line,
                        format!(
                            "{prefix}{key}: blocks take no label here (found {:?}); write {key} {{ ... }}",
                            label.as_str()
                        ),
                    ));
                }
                let inner = hcl_body(file, text, &b.body, &format!("{prefix}{key}."))?;
                insert(
                    file,
                    &mut out,
                    prefix,
                    key,
                    Entry {
                        line,
                        node: Node::Object(inner),
                    },
                )?;
            }
        }
    }
    Ok(out)
}

fn hcl_expr(file: &Path, text: &str, expr: &Expression, key: &str) -> Result<Node, ConfigError> {
    let line = expr.span().map_or(0, |s| line_of(text, s.start));
    let literal_only = || {
        syntax(
            file,
            line,
            format!("{key}: only literal values are allowed in the agent config (strings, numbers, bools, lists, blocks); found an expression"),
        )
    };
    Ok(match expr {
        Expression::String(s) => Node::Str(s.value().to_string()),
        Expression::Number(n) => Node::Num(n.value().to_string()),
        Expression::Bool(b) => Node::Bool(*b.value()),
        Expression::Null(_) => Node::Null,
        Expression::Array(items) => Node::List(
            items
                .iter()
                .map(|item| {
                    Ok(Entry {
                        line: item.span().map_or(line, |s| line_of(text, s.start)),
                        node: hcl_expr(file, text, item, key)?,
                    })
                })
                .collect::<Result<_, ConfigError>>()?,
        ),
        Expression::Object(obj) => {
            let mut out = IndexMap::new();
            for (k, v) in obj.iter() {
                let name = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().to_string(),
                    ObjectKey::Expression(_) => return Err(literal_only()),
                };
                let value = v.expr();
                let entry = Entry {
                    line: value.span().map_or(line, |s| line_of(text, s.start)),
                    node: hcl_expr(file, text, value, &format!("{key}.{name}"))?,
                };
                insert(file, &mut out, &format!("{key}."), name, entry)?;
            }
            Node::Object(out)
        }
        Expression::UnaryOp(op) => match (&op.operator.value(), &op.expr) {
            (hcl::expr::UnaryOperator::Neg, Expression::Number(n)) => {
                Node::Num(format!("-{}", n.value()))
            }
            _ => return Err(literal_only()),
        },
        Expression::Parenthesis(inner) => hcl_expr(file, text, inner.inner(), key)?,
        _ => return Err(literal_only()),
    })
}

// ---- JSON ----

fn parse_json(file: &Path, text: &str) -> Result<IndexMap<String, Entry>, ConfigError> {
    use jsonc_parser::{CollectOptions, ParseOptions};
    let strict = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let parsed =
        jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &strict).map_err(|e| {
            syntax(
                file,
                e.line_display(),
                format!("invalid JSON: {}", e.kind()),
            )
        })?;
    match parsed.value {
        Some(jsonc_parser::ast::Value::Object(obj)) => {
            match json_value(file, text, &jsonc_parser::ast::Value::Object(obj), "")? {
                Node::Object(map) => Ok(map),
                _ => Ok(IndexMap::new()),
            }
        }
        Some(_) => Err(syntax(
            file,
            1,
            "a JSON config file holds one object ({\"data_dir\": ..., \"mesos\": {...}})",
        )),
        None => Ok(IndexMap::new()),
    }
}

fn json_value(
    file: &Path,
    text: &str,
    value: &jsonc_parser::ast::Value<'_>,
    key: &str,
) -> Result<Node, ConfigError> {
    use jsonc_parser::ast::Value;
    Ok(match value {
        Value::StringLit(s) => Node::Str(s.value.to_string()),
        Value::NumberLit(n) => Node::Num(n.value.to_string()),
        Value::BooleanLit(b) => Node::Bool(b.value),
        Value::NullKeyword(_) => Node::Null,
        Value::Array(a) => Node::List(
            a.elements
                .iter()
                .map(|e| {
                    Ok(Entry {
                        line: line_of(text, json_start(e)),
                        node: json_value(file, text, e, key)?,
                    })
                })
                .collect::<Result<_, ConfigError>>()?,
        ),
        Value::Object(obj) => {
            let prefix = if key.is_empty() {
                String::new()
            } else {
                format!("{key}.")
            };
            let mut out = IndexMap::new();
            for prop in &obj.properties {
                let name = prop.name.as_str().to_string();
                let entry = Entry {
                    line: line_of(text, prop.range.start),
                    node: json_value(file, text, &prop.value, &format!("{prefix}{name}"))?,
                };
                insert(file, &mut out, &prefix, name, entry)?;
            }
            Node::Object(out)
        }
    })
}

fn json_start(v: &jsonc_parser::ast::Value<'_>) -> usize {
    use jsonc_parser::ast::Value;
    match v {
        Value::StringLit(x) => x.range.start,
        Value::NumberLit(x) => x.range.start,
        Value::BooleanLit(x) => x.range.start,
        Value::NullKeyword(x) => x.range.start,
        Value::Array(x) => x.range.start,
        Value::Object(x) => x.range.start,
    }
}
