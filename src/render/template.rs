//! `template {}` blocks: consul-template (Go `text/template`) syntax translated to tera 2.
//!
//! Nomad users write Go template syntax. Before compiling with tera we translate the forms a
//! dispatch template needs:
//!
//! * `{{ env "NAME" }}` -> `env(name="NAME")`, a tera function reading the task environment
//!   (NOMAD_* variables, NOMAD_META_*, the task `env {}`); unknown names give `""` as in
//!   consul-template;
//! * `{{ $x := ... }}` / `{{ $x }}` -> `{% set v_x = ... %}` / `{{ v_x }}`;
//! * `{{ if ... }}`, `{{ else if ... }}`, `{{ else }}`, `{{ end }}`;
//! * pipelines and the functions `printf` (`%s`, `%d`, `%v`, `%%`), `eq`, `ne`, `lt`, `le`,
//!   `gt`, `ge`, `and`, `or`, `not`, `toUpper`, `toLower`, `trimSpace`, `replaceAll`;
//! * `{{- ` / ` -}}` whitespace trimming and `{{/* comments */}}`;
//! * `left_delimiter` / `right_delimiter` (any length: the translator reads them, tera always
//!   gets its own delimiters).
//!
//! Everything else is rejected with a message saying what is supported; Consul, Vault and
//! Nomad lookups (`key`, `service`, `secret`, `nomadVar`, ...) say they are not supported.
//! Literal text containing `{` and string literals tera would unescape are passed through
//! context variables (`__l<N>`), so no text is ever misread as tera syntax.

use std::collections::BTreeMap;
use std::sync::Arc;

use tera::{Context, Kwargs, State, Tera, TeraResult, Value};

const NAME: &str = "template";

/// A template translated and compiled once (at registration or per render).
pub struct Compiled {
    tera: Tera,
    literals: Vec<String>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("literals", &self.literals.len())
            .finish()
    }
}

/// Translate and compile Go/consul-template text (empty delimiters mean `{{` / `}}`).
pub fn compile(src: &str, left: &str, right: &str) -> Result<Compiled, String> {
    let translated = translate(src, left, right)?;
    let mut tera = Tera::new();
    tera.autoescape_on(Vec::<&str>::new());
    tera.register_function("env", env_function);
    tera.add_raw_template(NAME, &translated.source)
        .map_err(|e| format!("does not compile: {}", tera_message(&e)))?;
    Ok(Compiled {
        tera,
        literals: translated.literals,
    })
}

impl Compiled {
    /// Render with this task environment.
    pub fn render(&self, env: &BTreeMap<String, String>) -> Result<String, String> {
        let mut ctx = Context::new();
        ctx.insert("__env", env);
        for (i, lit) in self.literals.iter().enumerate() {
            ctx.insert(format!("__l{i}"), lit);
        }
        self.tera
            .render(NAME, &ctx)
            .map_err(|e| format!("does not render: {}", tera_message(&e)))
    }
}

/// Render a `source` template once its file has been fetched into the sandbox: for the
/// backends, which get the task environment from the `CommandInfo` they launch.
pub fn render_fetched(
    text: &str,
    env: &BTreeMap<String, String>,
    left: &str,
    right: &str,
) -> Result<String, String> {
    compile(text, left, right)?.render(env)
}

fn tera_message(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn env_function(kwargs: Kwargs, state: &State) -> TeraResult<String> {
    let name: String = kwargs.must_get("name")?;
    let env: Option<Value> = state.get("__env")?;
    Ok(env
        .as_ref()
        .and_then(Value::as_map)
        .and_then(|m| m.get(&tera::value::Key::String(Arc::from(name.as_str()))))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Parse an `env = true` template's output: `KEY=value` lines, blank lines and `#` comments
/// skipped, an optional `export ` prefix, matching surrounding quotes removed.
pub fn parse_env(rendered: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in rendered.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=value, got {line:?}", n + 1));
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(format!("line {}: invalid variable name {k:?}", n + 1));
        }
        let v = v.trim();
        let v = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| {
                (v.len() >= 2 && v.starts_with(*a) && v.ends_with(*b)).then(|| &v[1..v.len() - 1])
            })
            .unwrap_or(v);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Translation
// ---------------------------------------------------------------------------------------

/// Tera source plus the literal strings it reads from the context.
#[derive(Debug)]
pub struct Translated {
    pub source: String,
    pub literals: Vec<String>,
}

enum Piece {
    Text(String),
    Code(String),
}

#[derive(PartialEq)]
enum Block {
    If,
}

/// Translate Go template text to tera source.
pub fn translate(src: &str, left: &str, right: &str) -> Result<Translated, String> {
    let left = if left.is_empty() { "{{" } else { left };
    let right = if right.is_empty() { "}}" } else { right };
    let mut tr = Translator {
        literals: Vec::new(),
    };
    let mut pieces: Vec<Piece> = Vec::new();
    let mut stack: Vec<Block> = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos < src.len() {
        let Some(off) = src[pos..].find(left) else {
            push_text(&mut pieces, &src[pos..], trim_next);
            break;
        };
        push_text(&mut pieces, &src[pos..pos + off], trim_next);
        let start = pos + off + left.len();
        let end = find_close(src, start, right).ok_or_else(|| {
            format!(
                "unclosed action at byte {}: no {right:?} after {left:?}",
                pos + off
            )
        })?;
        let mut action = &src[start..end];
        pos = end + right.len();
        if action.starts_with('-') && action[1..].starts_with(char::is_whitespace) {
            action = &action[1..];
            if let Some(Piece::Text(t)) = pieces.last_mut() {
                t.truncate(t.trim_end().len());
            }
        }
        trim_next = false;
        if action.ends_with('-') && action[..action.len() - 1].ends_with(char::is_whitespace) {
            action = &action[..action.len() - 1];
            trim_next = true;
        }
        let action = action.trim();
        if action.starts_with("/*") {
            if !action.ends_with("*/") {
                return Err(format!("unclosed comment in {{{{{action}}}}}"));
            }
            continue;
        }
        let code = tr
            .action(action, &mut stack)
            .map_err(|e| format!("in {left}{action}{right}: {e}"))?;
        pieces.push(Piece::Code(code));
    }
    if !stack.is_empty() {
        return Err(format!("missing {left} end {right}"));
    }
    let mut source = String::new();
    for p in pieces {
        match p {
            Piece::Code(c) => source.push_str(&c),
            Piece::Text(t) if t.contains('{') => {
                let var = tr.literal(t);
                source.push_str(&format!("{{{{ {var} }}}}"));
            }
            Piece::Text(t) => source.push_str(&t),
        }
    }
    Ok(Translated {
        source,
        literals: tr.literals,
    })
}

fn push_text(pieces: &mut Vec<Piece>, text: &str, trim_start: bool) {
    let text = if trim_start { text.trim_start() } else { text };
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
}

/// Byte index of the closing delimiter, skipping quoted strings.
fn find_close(src: &str, from: usize, right: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if src[i..].starts_with(right) {
            return Some(i);
        }
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(String),
    Ident(String),
    Var(String),
    Field(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => v.push('\n'),
                                Some('t') => v.push('\t'),
                                Some('r') => v.push('\r'),
                                Some('\\') => v.push('\\'),
                                Some('"') => v.push('"'),
                                Some('\'') => v.push('\''),
                                Some(o) => return Err(format!("unsupported escape \\{o}")),
                                None => return Err("unterminated string".into()),
                            }
                        }
                        Some(ch) => v.push(*ch),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '`' => {
                let mut v = String::new();
                i += 1;
                while let Some(ch) = chars.get(i) {
                    if *ch == '`' {
                        break;
                    }
                    v.push(*ch);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw string".into());
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '$' | '.' => {
                let mut v = String::new();
                i += 1;
                while let Some(ch) = chars.get(i) {
                    if ch.is_alphanumeric() || *ch == '_' || (c == '.' && *ch == '.') {
                        v.push(*ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(if c == '$' { Tok::Var(v) } else { Tok::Field(v) });
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let mut v = String::from(c);
                i += 1;
                while let Some(ch) = chars.get(i) {
                    if ch.is_ascii_alphanumeric() || *ch == '.' || *ch == '_' {
                        v.push(*ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                if v.parse::<f64>().is_err() {
                    return Err(format!("invalid number {v:?}"));
                }
                out.push(Tok::Num(v));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut v = String::new();
                while let Some(ch) = chars.get(i) {
                    if ch.is_alphanumeric() || *ch == '_' {
                        v.push(*ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(Tok::Ident(v));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

/// A translated expression; `lit` keeps the Go string literal when it was one (printf).
struct Expr {
    code: String,
    lit: Option<String>,
}

impl Expr {
    fn code(code: String) -> Expr {
        Expr { code, lit: None }
    }
}

struct Translator {
    literals: Vec<String>,
}

const SUPPORTED: &str = "env, printf, eq, ne, lt, le, gt, ge, and, or, not, toUpper, toLower, \
                         trimSpace, replaceAll, if/else/end and $variables";

impl Translator {
    /// A context variable holding `s` verbatim.
    fn literal(&mut self, s: String) -> String {
        self.literals.push(s);
        format!("__l{}", self.literals.len() - 1)
    }

    /// A tera string literal for `s` (or a context variable when quoting is not safe).
    fn string(&mut self, s: &str) -> String {
        if !s.contains('\\') {
            for q in ['"', '\'', '`'] {
                if !s.contains(q) {
                    return format!("{q}{s}{q}");
                }
            }
        }
        self.literal(s.to_string())
    }

    fn action(&mut self, action: &str, stack: &mut Vec<Block>) -> Result<String, String> {
        let toks = tokenize(action)?;
        match toks.first() {
            None => Err("empty action".into()),
            Some(Tok::Ident(kw)) => match kw.as_str() {
                "if" => {
                    stack.push(Block::If);
                    Ok(format!("{{% if {} %}}", self.pipeline(&toks[1..])?.code))
                }
                "else" => {
                    if stack.last() != Some(&Block::If) {
                        return Err("else without if".into());
                    }
                    match toks.get(1) {
                        None => Ok("{% else %}".into()),
                        Some(Tok::Ident(k)) if k == "if" => {
                            Ok(format!("{{% elif {} %}}", self.pipeline(&toks[2..])?.code))
                        }
                        _ => Err("else may only be followed by if".into()),
                    }
                }
                "end" => match stack.pop() {
                    Some(Block::If) => Ok("{% endif %}".into()),
                    None => Err("end without if".into()),
                },
                "range" | "with" | "define" | "template" | "block" | "break" | "continue" => {
                    Err(format!("{kw} is not supported (supported: {SUPPORTED})"))
                }
                _ => Ok(format!("{{{{ {} }}}}", self.pipeline(&toks)?.code)),
            },
            Some(Tok::Var(name))
                if matches!(toks.get(1), Some(Tok::Declare) | Some(Tok::Assign)) =>
            {
                let var = var_name(name)?;
                Ok(format!(
                    "{{% set {var} = {} %}}",
                    self.pipeline(&toks[2..])?.code
                ))
            }
            Some(_) => Ok(format!("{{{{ {} }}}}", self.pipeline(&toks)?.code)),
        }
    }

    fn pipeline(&mut self, toks: &[Tok]) -> Result<Expr, String> {
        if toks.is_empty() {
            return Err("missing value".into());
        }
        let mut cmds: Vec<&[Tok]> = Vec::new();
        let mut depth = 0i32;
        let mut start = 0;
        for (i, t) in toks.iter().enumerate() {
            match t {
                Tok::LParen => depth += 1,
                Tok::RParen => depth -= 1,
                Tok::Pipe if depth == 0 => {
                    cmds.push(&toks[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        cmds.push(&toks[start..]);
        let mut acc: Option<Expr> = None;
        for cmd in cmds {
            if cmd.is_empty() {
                return Err("empty command in pipeline".into());
            }
            acc = Some(self.command(cmd, acc)?);
        }
        acc.ok_or_else(|| "missing value".into())
    }

    fn command(&mut self, toks: &[Tok], piped: Option<Expr>) -> Result<Expr, String> {
        if let Tok::Ident(name) = &toks[0] {
            if !matches!(name.as_str(), "true" | "false" | "nil") {
                let mut args = Vec::new();
                let mut i = 1;
                while i < toks.len() {
                    args.push(self.operand(toks, &mut i)?);
                }
                args.extend(piped);
                return self.call(name, args);
            }
        }
        if piped.is_some() {
            return Err("only a function can receive a piped value".into());
        }
        let mut i = 0;
        let e = self.operand(toks, &mut i)?;
        if i != toks.len() {
            return Err("expected one value, found several (call a function?)".into());
        }
        Ok(e)
    }

    fn operand(&mut self, toks: &[Tok], i: &mut usize) -> Result<Expr, String> {
        let t = &toks[*i];
        *i += 1;
        match t {
            Tok::Str(s) => Ok(Expr {
                code: self.string(s),
                lit: Some(s.clone()),
            }),
            Tok::Num(n) => Ok(Expr::code(n.trim_start_matches('+').to_string())),
            Tok::Ident(b) if b == "true" || b == "false" => Ok(Expr::code(b.clone())),
            Tok::Ident(b) if b == "nil" => Err("nil is not supported".into()),
            Tok::Ident(f) => self.call(f, Vec::new()),
            Tok::Var(v) => Ok(Expr::code(var_name(v)?)),
            Tok::Field(f) => Err(format!(
                "template data fields (.{f}) are not available: read values with {{{{ env \"NAME\" }}}}"
            )),
            Tok::LParen => {
                let start = *i;
                let mut depth = 1;
                while *i < toks.len() {
                    match toks[*i] {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    *i += 1;
                }
                if depth != 0 {
                    return Err("unclosed (".into());
                }
                let inner = self.pipeline(&toks[start..*i])?;
                *i += 1;
                Ok(Expr::code(format!("({})", inner.code)))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Expr>) -> Result<Expr, String> {
        let arity = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{name} takes {n} argument(s), got {}", args.len()))
            }
        };
        let code = match name {
            "env" => {
                arity(1)?;
                format!("env(name={})", args[0].code)
            }
            "toUpper" | "toLower" | "trimSpace" => {
                arity(1)?;
                let filter = match name {
                    "toUpper" => "upper",
                    "toLower" => "lower",
                    _ => "trim",
                };
                format!("({} | {filter})", args[0].code)
            }
            "replaceAll" => {
                arity(3)?;
                format!(
                    "({} | replace(from={}, to={}))",
                    args[2].code, args[0].code, args[1].code
                )
            }
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                if args.len() < 2 || (name != "eq" && args.len() != 2) {
                    return Err(format!("{name} takes 2 arguments, got {}", args.len()));
                }
                let op = match name {
                    "eq" => "==",
                    "ne" => "!=",
                    "lt" => "<",
                    "le" => "<=",
                    "gt" => ">",
                    _ => ">=",
                };
                let first = &args[0].code;
                let parts: Vec<String> = args[1..]
                    .iter()
                    .map(|a| format!("{first} {op} {}", a.code))
                    .collect();
                format!("({})", parts.join(" or "))
            }
            "and" | "or" => {
                if args.len() < 2 {
                    return Err(format!("{name} takes at least 2 arguments"));
                }
                let parts: Vec<&str> = args.iter().map(|a| a.code.as_str()).collect();
                format!("({})", parts.join(&format!(" {name} ")))
            }
            "not" => {
                arity(1)?;
                format!("(not {})", args[0].code)
            }
            "printf" => return self.printf(args),
            "key" | "keyOrDefault" | "keyExists" | "ls" | "safeLs" | "tree" | "safeTree" => {
                return Err(format!("{name}: consul key lookups are not supported"));
            }
            "service" | "services" | "connect" | "caRoots" | "caLeaf" | "node" | "nodes"
            | "checks" | "datacenters" | "partitions" | "peerings" => {
                return Err(format!("{name}: consul catalog lookups are not supported"));
            }
            "secret" | "secrets" | "pkiCert" => {
                return Err(format!("{name}: vault secrets are not supported"));
            }
            n if n.starts_with("nomad") => {
                return Err(format!(
                    "{name}: nomad service and variable lookups are not supported"
                ));
            }
            "file" => return Err("file: reading agent files is not supported".into()),
            _ => {
                return Err(format!(
                    "unsupported function {name} (supported: {SUPPORTED})"
                ))
            }
        };
        Ok(Expr::code(code))
    }

    fn printf(&mut self, args: Vec<Expr>) -> Result<Expr, String> {
        let mut args = args.into_iter();
        let fmt = args
            .next()
            .and_then(|a| a.lit)
            .ok_or("printf needs a string literal format")?;
        let mut parts: Vec<String> = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => lit.push('%'),
                Some('s' | 'd' | 'v') => {
                    if !lit.is_empty() {
                        parts.push(self.string(&std::mem::take(&mut lit)));
                    }
                    let a = args.next().ok_or("printf: missing argument")?;
                    parts.push(a.code);
                }
                Some(v) => return Err(format!("printf: verb %{v} is not supported (%s, %d, %v)")),
                None => return Err("printf: trailing %".into()),
            }
        }
        if args.next().is_some() {
            return Err("printf: too many arguments".into());
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(self.string(&lit));
        }
        Ok(Expr::code(format!("({})", parts.join(" ~ "))))
    }
}

fn var_name(go: &str) -> Result<String, String> {
    if go.is_empty() {
        return Err("$ (the template data) is not available".into());
    }
    Ok(format!("v_{go}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        let mut e = BTreeMap::new();
        e.insert("AWS_ACCESS_KEY_ID".into(), "AKIA".into());
        e.insert("NOMAD_META_profile".into(), "small".into());
        e.insert("NOMAD_META_input".into(), "http://x/a.mov".into());
        e
    }

    fn render(src: &str) -> Result<String, String> {
        compile(src, "", "")?.render(&env())
    }

    #[test]
    fn env_calls_and_literal_text() {
        assert_eq!(
            render("[default]\naccess_key = \"{{ env \"AWS_ACCESS_KEY_ID\" }}\"\n").unwrap(),
            "[default]\naccess_key = \"AKIA\"\n"
        );
        assert_eq!(render("{{ env \"NOPE\" }}|").unwrap(), "|");
        // Text that looks like tera or JSON is kept verbatim.
        assert_eq!(
            render("{\"a\": \"{% x %}\", \"p\": \"{{ env \"NOMAD_META_profile\" }}\"} {# c #}")
                .unwrap(),
            "{\"a\": \"{% x %}\", \"p\": \"small\"} {# c #}"
        );
        assert_eq!(
            render("echo ${NOMAD_ALLOC_DIR}\n").unwrap(),
            "echo ${NOMAD_ALLOC_DIR}\n"
        );
    }

    #[test]
    fn variables_trimming_conditionals_and_functions() {
        let src = "#!/bin/bash\n{{- $P := env \"NOMAD_META_profile\" -}}\nP={{ $P }}\n\
                   {{ if eq $P \"small\" }}W=640{{ else if eq $P \"large\" }}W=1280{{ else }}W=0{{ end }}\n\
                   {{ env \"NOMAD_META_profile\" | toUpper }} {{ printf \"%s-%d%%\" $P 5 }}\n\
                   {{/* a comment */}}{{ replaceAll \"a\" \"o\" \"banana\" }} {{ \"back\\\\slash\" }}";
        assert_eq!(
            render(src).unwrap(),
            "#!/bin/bashP=small\nW=640\nSMALL small-5%\nbonono back\\slash"
        );
        assert_eq!(
            render("{{ if not (eq (env \"X\") \"\") }}y{{ else }}n{{ end }}").unwrap(),
            "n"
        );
    }

    #[test]
    fn real_world_variable_template() {
        // From angrycub/nomad_example_jobs (wordpress build-site): variables, trim markers,
        // and a `${...}` inside a string literal kept as written.
        let src = "#!/bin/bash\n{{- $NMSN := env \"NOMAD_META_profile\" -}}\n\
                   {{- $UUID := \"${uuidv4}\" -}}\nSite={{ $NMSN }}\nUUID={{ $UUID }}\n";
        assert_eq!(
            render(src).unwrap(),
            "#!/bin/bashSite=small\nUUID=${uuidv4}\n"
        );
    }

    #[test]
    fn custom_delimiters() {
        let out = compile("{{ not me }} [[ env \"NOMAD_META_profile\" ]]", "[[", "]]")
            .unwrap()
            .render(&env())
            .unwrap();
        assert_eq!(out, "{{ not me }} small");
        let out = compile("<<<env \"NOMAD_META_profile\">>>", "<<<", ">>>")
            .unwrap()
            .render(&env())
            .unwrap();
        assert_eq!(out, "small");
    }

    #[test]
    fn unsupported_forms_are_rejected_clearly() {
        let err = |s: &str| compile(s, "", "").unwrap_err();
        assert!(err("{{ key \"x\" }}").contains("consul key lookups are not supported"));
        assert!(err("{{ with secret \"x\" }}{{ end }}").contains("not supported"));
        assert!(err("{{ .Name }}").contains("template data fields"));
        assert!(err("{{ env \"X\" ").contains("unclosed"));
        assert!(err("{{ if env \"X\" }}x").contains("missing"));
        assert!(err("{{ bogus 1 }}").contains("unsupported function bogus"));
        assert!(err("{{ range service \"x\" }}{{ end }}").contains("range is not supported"));
    }

    #[test]
    fn env_files_parse() {
        let vars = parse_env("# c\n\nexport A=1\nB = \"two words\"\nC='x=y'\n").unwrap();
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x=y".into())
            ]
        );
        assert!(parse_env("no equals sign").is_err());
    }
}
