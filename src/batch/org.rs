//! Org documents (Org Babel on Mesos): every `#+BEGIN_SRC <lang> [header args]` block is a
//! task.
//!
//! * `#+name:` directly above a block names it (else `block-<n>`).
//! * `#+header:` / `#+headers:` lines directly above it stack; the nearest line wins, and
//!   header args on the `#+BEGIN_SRC` line win over all of them.
//! * Header args: `:cpus` (fractional), `:mem` (MB), `:disk` (MB), `:gpus`, `:dockerimage`,
//!   `:env "K=V K2=V2"`. Defaults: 1 cpu, 128 MB mem. Babel's output args (`:results`,
//!   `:exports`, ...) mean nothing for a batch task and are ignored.
//! * `sh`, `shell` run with `/bin/sh -c`, `bash` with `bash -c`, `python`/`python3` with
//!   `python3 -c`; other languages are an error.
//! * `#+master: host:port` is reported (used when the server runs against Mesos).

use indexmap::IndexMap;
use serde_json::{json, Value};

use super::{Batch, Item};
use crate::model::job::{Resources, Task};

/// Languages a block may use.
pub const LANGS: &[&str] = &["sh", "shell", "bash", "python", "python3"];

const IGNORED: &[&str] = &[
    ":results",
    ":exports",
    ":eval",
    ":session",
    ":tangle",
    ":noweb",
    ":cache",
    ":comments",
    ":wrap",
    ":colnames",
    ":rownames",
    ":hlines",
    ":post",
    ":file",
];

/// `:key value words :key2 "quoted value"` → ordered (key, value) pairs.
pub fn header_args(s: &str) -> Vec<(String, String)> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() || was_quoted {
                    tokens.push((std::mem::take(&mut cur), was_quoted));
                }
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() || was_quoted {
        tokens.push((cur, was_quoted));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (tok, q) in tokens {
        if !q && tok.starts_with(':') {
            out.push((tok.to_ascii_lowercase(), String::new()));
        } else if let Some(last) = out.last_mut() {
            if !last.1.is_empty() {
                last.1.push(' ');
            }
            last.1.push_str(&tok);
        }
    }
    out
}

fn keyword<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let prefix = format!("#+{name}:");
    // `get` rather than indexing: the line is user text, and byte `prefix.len()` may fall
    // inside a multi-byte character
    match t.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(&prefix) => Some(t[prefix.len()..].trim()),
        _ => None,
    }
}

fn begin_src(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let p = "#+begin_src";
    if t.get(..p.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(p))
    {
        let rest = &t[p.len()..];
        if rest.is_empty() || rest.starts_with(char::is_whitespace) {
            return Some(rest.trim());
        }
    }
    None
}

fn is_end_src(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case("#+end_src")
}

/// Parse an Org document.
pub fn parse(content: &str) -> Result<Batch, String> {
    let mut batch = Batch::default();
    let mut name: Option<String> = None;
    let mut headers: Vec<String> = Vec::new();
    let mut lines = content.lines().enumerate();
    let mut n = 0;
    while let Some((lineno, line)) = lines.next() {
        if let Some(m) = keyword(line, "master") {
            batch.master = Some(m.to_string());
            continue;
        }
        if let Some(v) = keyword(line, "name") {
            name = Some(v.to_string());
            continue;
        }
        if let Some(v) = keyword(line, "header").or_else(|| keyword(line, "headers")) {
            headers.push(v.to_string());
            continue;
        }
        let Some(rest) = begin_src(line) else {
            name = None;
            headers.clear();
            continue;
        };
        n += 1;
        let (lang, inline) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(l, r)| (l, r));
        let mut body = Vec::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            if is_end_src(l) {
                closed = true;
                break;
            }
            body.push(l);
        }
        let block_name = name.take().unwrap_or_else(|| format!("block-{n}"));
        if !closed {
            return Err(format!(
                "block {block_name:?} (line {}): #+BEGIN_SRC without #+END_SRC",
                lineno + 1
            ));
        }
        // Farthest header line first, so nearer lines and the BEGIN_SRC line win.
        let mut args: IndexMap<String, String> = IndexMap::new();
        for h in headers.drain(..).chain(std::iter::once(inline.to_string())) {
            for (k, v) in header_args(&h) {
                args.insert(k, v);
            }
        }
        let task = block_task(&block_name, lang, &args, &body.join("\n"), &mut batch.notes)
            .map_err(|e| format!("block {block_name:?} (line {}): {e}", lineno + 1))?;
        batch.items.push(Item { tasks: vec![task] });
    }
    if batch.items.is_empty() {
        return Err("the Org document has no #+BEGIN_SRC blocks".into());
    }
    Ok(batch)
}

fn number(args: &IndexMap<String, String>, key: &str, default: f64) -> Result<f64, String> {
    match args.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("{key} {v:?} is not a non-negative number")),
    }
}

fn block_task(
    name: &str,
    lang: &str,
    args: &IndexMap<String, String>,
    body: &str,
    notes: &mut Vec<String>,
) -> Result<Task, String> {
    let interpreter = match lang.to_ascii_lowercase().as_str() {
        "sh" | "shell" => "/bin/sh",
        "bash" => "bash",
        "python" | "python3" => "python3",
        "" => {
            return Err(format!(
                "no language after #+BEGIN_SRC (supported: {})",
                LANGS.join(", ")
            ))
        }
        other => {
            return Err(format!(
                "language {other:?} is not supported (supported: {})",
                LANGS.join(", ")
            ))
        }
    };
    let cpus = number(args, ":cpus", 1.0)?;
    let mem = number(args, ":mem", 128.0)?;
    let disk = args
        .get(":disk")
        .map(|_| number(args, ":disk", 0.0))
        .transpose()?;
    let gpus = args
        .get(":gpus")
        .map(|_| number(args, ":gpus", 0.0))
        .transpose()?;
    let mut task = Task {
        name: name.to_string(),
        ..Task::default()
    };
    task.meta.insert("org.lang".into(), lang.to_string());
    let mut config: IndexMap<String, Value> = IndexMap::new();
    match args.get(":dockerimage").filter(|s| !s.is_empty()) {
        Some(image) => {
            task.driver = "docker".into();
            config.insert("image".into(), Value::String(image.clone()));
        }
        None => task.driver = "raw_exec".into(),
    }
    config.insert("command".into(), Value::String(interpreter.into()));
    config.insert("args".into(), json!(["-c", body]));
    task.config = config;
    if let Some(env) = args.get(":env") {
        for pair in env.split_whitespace() {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!(":env {pair:?} is not K=V"));
            };
            task.env.insert(k.to_string(), v.to_string());
        }
    }
    let unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| {
            ![":cpus", ":mem", ":disk", ":gpus", ":dockerimage", ":env"].contains(k)
                && !IGNORED.contains(k)
        })
        .collect();
    if !unknown.is_empty() {
        notes.push(format!("{name}: header args {unknown:?} are ignored"));
    }
    task.resources = Some(Resources {
        cpu: Some((cpus * 1000.0).round().max(1.0) as i64),
        memory_mb: Some(mem.ceil().max(1.0) as i64),
        disk_mb: disk.map(|d| d.ceil() as i64),
        gpus: gpus.map(|g| g as i64).filter(|g| *g > 0),
        ..Resources::default()
    });
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/fuzz_targets/batch_file.rs): a keyword line whose byte at the
    /// keyword's length falls inside a multi-byte character panicked on a string slice.
    #[test]
    fn keyword_lines_with_multibyte_characters_do_not_panic() {
        for text in [
            "#+namο: x\n",
            "#+name\u{3bf}\n#+BEGIN_SRC sh\necho hi\n#+END_SRC\n",
            "#+begin_sr\u{3bf}\n",
            "  #+headeρ: :cpus 1\n",
        ] {
            let _ = parse(text);
        }
        assert_eq!(keyword("#+namο: x", "name"), None);
        assert_eq!(begin_src("#+begin_sρc sh"), None);
    }

    #[test]
    fn headers_stack_nearest_wins() {
        let doc = "#+master: m:5050\n#+name: one\n#+header: :cpus 2 :mem 256\n#+headers: :cpus 0.5\n#+BEGIN_SRC sh :mem 64 :env \"A=1 B=2\"\necho hi\n#+END_SRC\n\n#+begin_src python\nprint(1)\n#+end_src\n";
        let b = parse(doc).unwrap();
        assert_eq!(b.master.as_deref(), Some("m:5050"));
        let t = &b.items[0].tasks[0];
        assert_eq!(t.name, "one");
        let r = t.resources.as_ref().unwrap();
        assert_eq!((r.cpu, r.memory_mb), (Some(500), Some(64)));
        assert_eq!(t.env["A"], "1");
        assert_eq!(t.env["B"], "2");
        let p = &b.items[1].tasks[0];
        assert_eq!(p.name, "block-2");
        assert_eq!(p.config["command"], "python3");
        assert_eq!(p.resources.as_ref().unwrap().cpu, Some(1000));
    }

    #[test]
    fn unsupported_language() {
        let e = parse("#+BEGIN_SRC ruby\nputs 1\n#+END_SRC\n").unwrap_err();
        assert!(e.contains("\"ruby\" is not supported"), "{e}");
    }
}
