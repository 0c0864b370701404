//! `${...}` runtime interpolation, as Nomad's client does it when a task starts.
//!
//! Known references are replaced: `${NOMAD_META_<key>}` (the key as written, or in any case:
//! Nomad exports both the written and the upper-cased form), `${meta.<key>}`, the `NOMAD_*`
//! runtime variables, `${env.X}` and `${X}` for any variable of the task environment.
//! Everything else (`${node.unique.id}`, `${attr.kernel.name}`, a shell `${dur}`) stays as
//! literal text, and so does an unclosed `${...`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::Meta;

/// What `${...}` can refer to.
pub struct Vars<'a> {
    /// Effective meta (job meta + dispatch meta, then group and task meta over it).
    pub meta: &'a Meta,
    /// The task environment known so far (NOMAD_* variables, NOMAD_META_*, task env).
    pub env: &'a BTreeMap<String, String>,
}

impl Vars<'_> {
    /// The value of a reference, or None when it is not ours to expand.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        if let Some(key) = name.strip_prefix("NOMAD_META_") {
            if let Some(v) = meta_lookup(self.meta, key) {
                return Some(v);
            }
        }
        if let Some(key) = name.strip_prefix("meta.") {
            return meta_lookup(self.meta, key);
        }
        if let Some(var) = name.strip_prefix("env.") {
            return self.env.get(var).map(String::as_str);
        }
        self.env.get(name).map(String::as_str)
    }
}

/// A meta value by key: exact first, then case-insensitively (also against the env-safe form
/// of the key, so `${NOMAD_META_MY_KEY}` finds `my-key`).
fn meta_lookup<'m>(meta: &'m Meta, key: &str) -> Option<&'m str> {
    if let Some(v) = meta.get(key) {
        return Some(v);
    }
    meta.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key) || env_key(k).eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// A meta key as Nomad puts it in an env var name: characters outside `[A-Za-z0-9_.]`
/// become `_`.
pub fn env_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Expand the known `${...}` references of `s`.
pub fn interpolate(s: &str, vars: &Vars) -> String {
    if !s.contains("${") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // Unclosed: the rest is literal text.
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match vars.lookup(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Interpolate every string inside a JSON value (object keys are left alone).
pub fn interpolate_value(v: &Value, vars: &Vars) -> Value {
    match v {
        Value::String(s) => Value::String(interpolate(s, vars)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| interpolate_value(i, vars)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate_value(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Registration check: reject references that can never be expanded nor are plausible
/// literal text (`${}`).
pub fn check(s: &str) -> Result<(), String> {
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Ok(());
        };
        if after[..end].trim().is_empty() {
            return Err(format!("empty interpolation \"${{}}\" in {s:?}"));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Every string inside a JSON value passes `check`.
pub fn check_value(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => check(s),
        Value::Array(items) => items.iter().try_for_each(check_value),
        Value::Object(map) => map.values().try_for_each(check_value),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars_fixture() -> (Meta, BTreeMap<String, String>) {
        let mut meta = Meta::new();
        meta.insert("input".into(), "http://x/in.mov".into());
        meta.insert("my-key".into(), "v".into());
        let mut env = BTreeMap::new();
        env.insert("NOMAD_TASK_DIR".into(), "local".into());
        env.insert("S3_BUCKET".into(), "videos".into());
        (meta, env)
    }

    #[test]
    fn known_references_expand_and_unknown_stay() {
        let (meta, env) = vars_fixture();
        let vars = Vars {
            meta: &meta,
            env: &env,
        };
        let cases = [
            ("${NOMAD_META_input}", "http://x/in.mov"),
            ("${NOMAD_META_INPUT}", "http://x/in.mov"),
            ("${meta.input}", "http://x/in.mov"),
            ("${NOMAD_META_MY_KEY}", "v"),
            ("${NOMAD_TASK_DIR}/out.mp4", "local/out.mp4"),
            ("s3://${env.S3_BUCKET}/${S3_BUCKET}", "s3://videos/videos"),
            ("${node.unique.id}", "${node.unique.id}"),
            ("${attr.kernel.name}-${dur}", "${attr.kernel.name}-${dur}"),
            ("${NOMAD_META_TIME", "${NOMAD_META_TIME"),
            ("a ${NOMAD_META_missing} b", "a ${NOMAD_META_missing} b"),
            ("$$ ${ no", "$$ ${ no"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &vars), want, "{input}");
        }
    }

    #[test]
    fn check_rejects_empty_references_only() {
        assert!(check("${}").is_err());
        assert!(check("a ${ } b").is_err());
        assert!(check("${NOMAD_META_TIME").is_ok());
        assert!(check("${dur} ${node.unique.id}").is_ok());
    }
}
