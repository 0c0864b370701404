//! HCL1 job files, as Nomad read them before HCL2 (and with `-hcl1` until 1.5): translated
//! token by token into HCL2 text, which the one HCL2 decoder then reads, so an HCL1 file and
//! its HCL2 rewrite give the same `Job` by construction.
//!
//! What is translated, each occurrence reported as a warning naming the construct and line:
//! * a quoted attribute or block name (`"S3_BUCKET" = "x"`) is unquoted; a quoted name that is
//!   not an HCL2 identifier (`"a.b" = "x"`) turns its block into an object attribute
//!   (`env = { "a.b" = "x" }`, the HCL2 way to write such keys);
//! * a comma after an attribute (`meta_required = ["a"],`) is dropped;
//! * several items on one line of a block (`restart { attempts = 0 mode = "fail" }`) are put
//!   on lines of their own (error positions still name the file's own lines).
//!
//! HCL1 did not evaluate strings when Nomad parsed a job: `${...}` stayed as written for the
//! client to interpolate. So in strings and heredocs `${` and `%{` are escaped (`$${`, `%%{`)
//! and come out verbatim. Files using HCL2-only features (`variable`, `locals`, `dynamic`,
//! function calls) are never read as HCL1.

use std::borrow::Cow;

/// One HCL1 construct found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Construct {
    /// 1-based line in the original file.
    pub line: usize,
    /// What it is and how HCL2 writes it.
    pub what: String,
}

/// An HCL1 file rewritten as HCL2.
#[derive(Debug)]
pub struct Translation {
    pub text: String,
    pub constructs: Vec<Construct>,
    /// Original 1-based line of every line of `text` (index 0 = line 1).
    line_map: Vec<usize>,
}

impl Translation {
    /// The original line of a line of the translated text.
    pub fn original_line(&self, line: usize) -> usize {
        line.checked_sub(1)
            .and_then(|i| self.line_map.get(i))
            .copied()
            .unwrap_or(line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
    Str,
    Heredoc,
    Number,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Eq,
    Colon,
    Comma,
}

struct Token<'a> {
    kind: Tok,
    /// Byte range in the source.
    start: usize,
    end: usize,
    /// 1-based lines of the first and last byte.
    line: usize,
    end_line: usize,
    /// The token as written.
    raw: &'a str,
    text: Cow<'a, str>,
    /// Put a line break before this token.
    break_before: bool,
    /// Text inserted before the token (after `break_before`).
    insert_before: &'static str,
}

/// Translate `src` as HCL1; `None` when it is not HCL1 either (or uses HCL2-only features).
pub fn translate(src: &str) -> Option<Translation> {
    let tokens = lex(src)?;
    let mut p = Parser {
        toks: tokens,
        i: 0,
        constructs: Vec::new(),
    };
    p.body(true, false)?;
    if p.i != p.toks.len() {
        return None;
    }
    let constructs = std::mem::take(&mut p.constructs);
    let (text, line_map) = emit(src, &p.toks);
    Some(Translation {
        text,
        constructs,
        line_map,
    })
}

// ---- lexing ----

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == ':'
}

/// Whether `s` can be written unquoted as an HCL2 attribute or block name.
fn is_hcl2_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_ident_start)
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// `${` -> `$${` and `%{` -> `%%{`: HCL1 strings are literal, HCL2 ones are templates.
fn escape_template(s: &str) -> Cow<'_, str> {
    if !s.contains("${") && !s.contains("%{") {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("${", "$${").replace("%{", "%%{"))
}

fn lex(src: &str) -> Option<Vec<Token<'_>>> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/")? + i + 4;
                line += src[i..end].matches('\n').count();
                i = end;
            }
            b'"' => {
                let end = string_end(bytes, i)?;
                toks.push(token(src, Tok::Str, i, end, line, line, true));
                i = end;
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                let (end, lines) = heredoc_end(src, i)?;
                toks.push(token(src, Tok::Heredoc, i, end, line, line + lines, true));
                line += lines;
                i = end;
            }
            b'{' | b'}' | b'[' | b']' | b'=' | b':' | b',' => {
                let kind = match c {
                    b'{' => Tok::LBrace,
                    b'}' => Tok::RBrace,
                    b'[' => Tok::LBrack,
                    b']' => Tok::RBrack,
                    b'=' => Tok::Eq,
                    b':' => Tok::Colon,
                    _ => Tok::Comma,
                };
                toks.push(token(src, kind, i, i + 1, line, line, false));
                i += 1;
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
                toks.push(token(src, Tok::Number, start, i, line, line, false));
            }
            _ => {
                let ch = src[i..].chars().next()?;
                if !is_ident_start(ch) {
                    return None;
                }
                let start = i;
                i += ch.len_utf8();
                while let Some(ch) = src[i..].chars().next().filter(|c| is_ident_char(*c)) {
                    i += ch.len_utf8();
                }
                toks.push(token(src, Tok::Ident, start, i, line, line, false));
            }
        }
    }
    Some(toks)
}

fn token(
    src: &str,
    kind: Tok,
    start: usize,
    end: usize,
    line: usize,
    end_line: usize,
    escape: bool,
) -> Token<'_> {
    let raw = &src[start..end];
    Token {
        kind,
        start,
        end,
        line,
        end_line,
        raw,
        text: if escape {
            escape_template(raw)
        } else {
            Cow::Borrowed(raw)
        },
        break_before: false,
        insert_before: "",
    }
}

fn skip_line(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `start`. As HCL1's scanner does, quotes inside
/// `${ }` do not end the string; a newline outside of one does not belong in a string.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut braces = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                braces += 1;
                i += 2;
            }
            b'}' if braces > 0 => {
                braces -= 1;
                i += 1;
            }
            b'"' if braces == 0 => return Some(i + 1),
            b'\n' if braces == 0 => return None,
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of a heredoc `<<ID` / `<<-ID` starting at `start`, and the number of line
/// breaks in it. The closing marker is alone on its line (indentation allowed).
fn heredoc_end(src: &str, start: usize) -> Option<(usize, usize)> {
    let rest = &src[start + 2..];
    let rest_start = start + 2 + usize::from(rest.starts_with('-'));
    let header_end = src[rest_start..].find('\n')? + rest_start;
    let marker = src[rest_start..header_end].trim_end_matches('\r');
    if marker.is_empty() || !marker.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let mut pos = header_end + 1;
    let mut lines = 1;
    loop {
        let line_end = src[pos..].find('\n').map_or(src.len(), |n| pos + n);
        if src[pos..line_end].trim() == marker {
            let end = pos + src[pos..line_end].trim_end().len();
            return Some((end, lines));
        }
        if line_end == src.len() {
            return None;
        }
        pos = line_end + 1;
        lines += 1;
    }
}

// ---- structure ----

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    constructs: Vec<Construct>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.i).map(|t| t.kind)
    }

    fn note(&mut self, line: usize, what: String) {
        if !self
            .constructs
            .iter()
            .any(|c| c.line == line && c.what == what)
        {
            self.constructs.push(Construct { line, what });
        }
    }

    /// The items of a block body (or the file when `top`), up to its `}` (not consumed).
    /// `labelled`: the block has labels (so it cannot become an object attribute).
    fn body(&mut self, top: bool, labelled: bool) -> Option<()> {
        let open = if top { None } else { Some(self.i - 1) };
        let mut prev_end_line: Option<usize> = open.map(|o| self.toks[o].line);
        let mut quoted_keys = Vec::new();
        let mut blocks = 0;
        let mut items = 0;
        loop {
            match self.peek() {
                None if top => break,
                None => return None,
                Some(Tok::RBrace) if !top => {
                    let close = self.i;
                    let one_line = open.is_some_and(|o| self.toks[o].line == self.toks[close].line);
                    let shares_line = prev_end_line == Some(self.toks[close].line);
                    if shares_line && !(one_line && items == 1 && blocks == 0) && items > 0 {
                        self.toks[close].break_before = true;
                    }
                    break;
                }
                Some(Tok::Ident) | Some(Tok::Str) => {}
                _ => return None,
            }
            let start = self.i;
            let line = self.toks[start].line;
            if prev_end_line == Some(line) {
                let single_attr_line = open.is_some_and(|o| self.toks[o].line == line)
                    && items == 0
                    && self.is_single_attribute_line(start);
                if !single_attr_line {
                    self.toks[start].break_before = true;
                    self.note(line, "several items on one line; HCL2 puts each attribute and block on a line of its own".into());
                }
            }
            let key_quoted = self.toks[start].kind == Tok::Str;
            self.i += 1;
            match self.peek() {
                Some(Tok::Eq) => {
                    self.i += 1;
                    if key_quoted {
                        quoted_keys.push(start);
                    }
                    self.value()?;
                    if self.peek() == Some(Tok::Comma) {
                        let comma = self.i;
                        let key = unquoted(&self.toks[start].text).to_string();
                        self.toks[comma].text = Cow::Borrowed("");
                        self.note(
                            self.toks[comma].line,
                            format!("comma after the attribute {key:?}; HCL2 ends an attribute with a line break"),
                        );
                        self.i += 1;
                    }
                }
                Some(Tok::LBrace) | Some(Tok::Str) | Some(Tok::Ident) => {
                    if key_quoted {
                        let name = unquoted(&self.toks[start].text).to_string();
                        if !is_hcl2_identifier(&name) {
                            return None;
                        }
                        self.toks[start].text = Cow::Owned(name.clone());
                        self.note(
                            line,
                            format!("quoted block name \"{name}\"; HCL2 writes {name} {{ ... }}"),
                        );
                    }
                    let mut labelled = false;
                    while matches!(self.peek(), Some(Tok::Str) | Some(Tok::Ident)) {
                        // labels are literal in HCL2 too: no template escaping
                        let label = &mut self.toks[self.i];
                        label.text = Cow::Borrowed(label.raw);
                        labelled = true;
                        self.i += 1;
                    }
                    if self.peek() != Some(Tok::LBrace) {
                        return None;
                    }
                    self.i += 1;
                    self.body(false, labelled)?;
                    self.i += 1; // the `}`
                    blocks += 1;
                }
                _ => return None,
            }
            items += 1;
            prev_end_line = Some(self.toks[self.i - 1].end_line);
        }
        self.quoted_keys(open, labelled, quoted_keys, blocks)
    }

    /// Whether the item at `start` is `key = <one-line value>` closed by `}` on the same line.
    fn is_single_attribute_line(&self, start: usize) -> bool {
        let line = self.toks[start].line;
        let Some(close) = self.toks[start..]
            .iter()
            .position(|t| t.line != line || t.kind == Tok::RBrace)
            .map(|n| start + n)
        else {
            return false;
        };
        self.toks[close].kind == Tok::RBrace
            && self.toks[close].line == line
            && self.toks.get(start + 1).is_some_and(|t| t.kind == Tok::Eq)
            && !self.toks[start + 2..close]
                .iter()
                .any(|t| matches!(t.kind, Tok::LBrace | Tok::Comma))
    }

    /// Unquote quoted attribute names that are identifiers; a body with other quoted names
    /// becomes an object attribute (`name = { "a.b" = ... }`).
    fn quoted_keys(
        &mut self,
        open: Option<usize>,
        labelled: bool,
        keys: Vec<usize>,
        blocks: usize,
    ) -> Option<()> {
        if keys.is_empty() {
            return Some(());
        }
        let all_identifiers = keys
            .iter()
            .all(|k| is_hcl2_identifier(unquoted(&self.toks[*k].text)));
        if all_identifiers {
            for k in keys {
                let name = unquoted(&self.toks[k].text).to_string();
                self.note(
                    self.toks[k].line,
                    format!("quoted attribute name \"{name}\"; HCL2 writes {name} = ..."),
                );
                self.toks[k].text = Cow::Owned(name);
            }
            return Some(());
        }
        // `"a.b" = "x"` can only be an object key in HCL2: only an unlabelled block holding
        // attributes alone can become one.
        let open = open?;
        if labelled || blocks > 0 {
            return None;
        }
        let name = self.toks[open - 1].text.to_string();
        self.toks[open].insert_before = "= ";
        self.note(
            self.toks[open].line,
            format!("quoted attribute names that are not identifiers in block {name:?}; HCL2 writes {name} = {{ \"key\" = ... }}"),
        );
        Some(())
    }

    /// One value: a literal, a heredoc, a list or an object.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            Tok::Str | Tok::Heredoc | Tok::Number | Tok::Ident => {
                self.i += 1;
                Some(())
            }
            Tok::LBrack => {
                self.i += 1;
                loop {
                    if self.peek()? == Tok::RBrack {
                        self.i += 1;
                        return Some(());
                    }
                    self.value()?;
                    match self.peek()? {
                        Tok::Comma => self.i += 1,
                        Tok::RBrack => {}
                        _ => return None,
                    }
                }
            }
            Tok::LBrace => {
                self.i += 1;
                loop {
                    match self.peek()? {
                        Tok::RBrace => {
                            self.i += 1;
                            return Some(());
                        }
                        Tok::Ident | Tok::Str => self.i += 1,
                        _ => return None,
                    }
                    if !matches!(self.peek()?, Tok::Eq | Tok::Colon) {
                        return None;
                    }
                    self.i += 1;
                    self.value()?;
                    if self.peek()? == Tok::Comma {
                        self.i += 1;
                    }
                }
            }
            _ => None,
        }
    }
}

fn unquoted(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// The HCL2 text: the source between tokens as written, tokens as translated; and the
/// original line of every output line.
fn emit(src: &str, toks: &[Token<'_>]) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(src.len() + 64);
    let mut line_map = vec![1];
    let mut line = 1;
    fn copy(out: &mut String, text: &str, line: &mut usize, line_map: &mut Vec<usize>) {
        for ch in text.chars() {
            out.push(ch);
            if ch == '\n' {
                *line += 1;
                line_map.push(*line);
            }
        }
    }
    let mut pos = 0;
    for t in toks {
        if t.break_before {
            out.push('\n');
            line_map.push(line);
        }
        copy(&mut out, &src[pos..t.start], &mut line, &mut line_map);
        out.push_str(t.insert_before);
        copy(&mut out, &t.text, &mut line, &mut line_map);
        pos = t.end;
    }
    copy(&mut out, &src[pos..], &mut line, &mut line_map);
    (out, line_map)
}

/// Whether the file uses features only HCL2 has, so an HCL2 error in it is never HCL1.
pub fn uses_hcl2_features(src: &str) -> bool {
    let Some(toks) = lex(src) else {
        // HCL1's lexer knows no `(`, `?`, `*`, ...: function calls and operators are HCL2.
        return true;
    };
    let mut depth = 0i32;
    for (n, t) in toks.iter().enumerate() {
        match t.kind {
            Tok::LBrace => depth += 1,
            Tok::RBrace => depth -= 1,
            Tok::Ident if depth == 0 => {
                let starts_item = n == 0 || toks[n - 1].line < t.line;
                if starts_item && matches!(&*t.text, "variable" | "variables" | "locals") {
                    return true;
                }
            }
            Tok::Ident if &*t.text == "dynamic" => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(src: &str) -> Translation {
        translate(src).expect("translates")
    }

    #[test]
    fn quoted_attribute_names_are_unquoted() {
        let t = tr("env {\n  \"S3_BUCKET\" = \"b\"\n  X = \"${NOMAD_META_x}\"\n}\n");
        assert_eq!(
            t.text,
            "env {\n  S3_BUCKET = \"b\"\n  X = \"$${NOMAD_META_x}\"\n}\n"
        );
        assert_eq!(t.constructs.len(), 1);
        assert_eq!(t.constructs[0].line, 2);
        assert!(t.constructs[0]
            .what
            .contains("quoted attribute name \"S3_BUCKET\""));
    }

    #[test]
    fn comma_after_attribute_is_dropped() {
        let t = tr("p {\n  a = [ \"A\", \"B\" ],\n  b = 1\n}\n");
        assert_eq!(t.text, "p {\n  a = [ \"A\", \"B\" ]\n  b = 1\n}\n");
        assert_eq!(t.constructs[0].line, 2);
        assert!(t.constructs[0]
            .what
            .starts_with("comma after the attribute \"a\""));
    }

    #[test]
    fn items_on_one_line_get_lines_of_their_own_and_keep_original_lines() {
        let t = tr("r { attempts = 0, mode = \"fail\" }\nx {\n  y = 1\n}\n");
        assert_eq!(
            t.text,
            "r {\n attempts = 0\n mode = \"fail\"\n }\nx {\n  y = 1\n}\n"
        );
        assert_eq!(t.original_line(4), 1);
        assert_eq!(t.original_line(5), 2);
        assert_eq!(t.original_line(7), 4);
        // a single attribute on one line is HCL2 already
        assert!(tr("r { attempts = 0 }\n").constructs.is_empty());
    }

    #[test]
    fn non_identifier_keys_make_an_object() {
        let t = tr("meta {\n  \"a.b\" = \"x\"\n  \"c\" = \"y\"\n}\n");
        assert_eq!(t.text, "meta = {\n  \"a.b\" = \"x\"\n  \"c\" = \"y\"\n}\n");
        // a labelled block cannot become an object
        assert!(translate("task \"t\" {\n  \"a.b\" = 1\n}\n").is_none());
    }

    #[test]
    fn heredocs_and_comments_stay_verbatim_but_literal() {
        let src = "t {\n  data = <<EOH\n${x} %{ if }\n  EOH\n  # \"q\" = 1,\n}\n";
        let t = tr(src);
        assert_eq!(
            t.text,
            "t {\n  data = <<EOH\n$${x} %%{ if }\n  EOH\n  # \"q\" = 1,\n}\n"
        );
        assert!(t.constructs.is_empty());
    }

    #[test]
    fn not_hcl1_either() {
        assert!(translate("job \"x\" {\n  a = << EOT\n}\n").is_none());
        assert!(translate("***REMOVED*** x\n").is_none());
        assert!(translate("a = [\"x\" \"y\"]\n").is_none());
        assert!(uses_hcl2_features("variable \"x\" {}\njob \"j\" {}\n"));
        assert!(uses_hcl2_features("job \"j\" { a = upper(\"x\") }\n"));
        assert!(!uses_hcl2_features("job \"j\" {\n  variable = 1\n}\n"));
    }
}
