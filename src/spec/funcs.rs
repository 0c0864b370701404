//! The HCL function table available in job files: the common Terraform-derived functions
//! Nomad's jobspec2 registers (strings, collections, numbers, encoding, `uuidv4`).

use base64::Engine;
use serde_json::{Map, Value};

use super::eval::{num, to_f64, to_string, type_name};

type R = Result<Value, String>;

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("expects {n} argument(s), got {}", args.len()))
    }
}

fn s(v: &Value) -> Result<String, String> {
    to_string(v)
}

fn list(v: &Value) -> Result<&Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("a list is required, got {}", type_name(other))),
    }
}

fn object(v: &Value) -> Result<&Map<String, Value>, String> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(format!("a map is required, got {}", type_name(other))),
    }
}

/// Names of the supported functions, for error messages.
pub const NAMES: &[&str] = &[
    "abs",
    "base64decode",
    "base64encode",
    "ceil",
    "chomp",
    "coalesce",
    "compact",
    "concat",
    "contains",
    "distinct",
    "element",
    "flatten",
    "floor",
    "format",
    "index",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "range",
    "regex_replace",
    "replace",
    "reverse",
    "split",
    "strrev",
    "substr",
    "title",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "upper",
    "uuidv4",
    "values",
    "zipmap",
];

pub fn call(name: &str, a: Vec<Value>) -> R {
    match name {
        "upper" => {
            arity(&a, 1)?;
            Ok(Value::from(s(&a[0])?.to_uppercase()))
        }
        "lower" => {
            arity(&a, 1)?;
            Ok(Value::from(s(&a[0])?.to_lowercase()))
        }
        "title" => {
            arity(&a, 1)?;
            let t: Vec<String> = s(&a[0])?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    match c.next() {
                        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                        None => String::new(),
                    }
                })
                .collect();
            Ok(Value::from(t.join(" ")))
        }
        "trimspace" => {
            arity(&a, 1)?;
            Ok(Value::from(s(&a[0])?.trim()))
        }
        "chomp" => {
            arity(&a, 1)?;
            Ok(Value::from(s(&a[0])?.trim_end_matches(['\n', '\r'])))
        }
        "trim" => {
            arity(&a, 2)?;
            let cut = s(&a[1])?;
            Ok(Value::from(s(&a[0])?.trim_matches(|c| cut.contains(c))))
        }
        "trimprefix" => {
            arity(&a, 2)?;
            let v = s(&a[0])?;
            let p = s(&a[1])?;
            Ok(Value::from(v.strip_prefix(p.as_str()).unwrap_or(&v)))
        }
        "trimsuffix" => {
            arity(&a, 2)?;
            let v = s(&a[0])?;
            let p = s(&a[1])?;
            Ok(Value::from(v.strip_suffix(p.as_str()).unwrap_or(&v)))
        }
        "strrev" => {
            arity(&a, 1)?;
            Ok(Value::from(s(&a[0])?.chars().rev().collect::<String>()))
        }
        "substr" => {
            arity(&a, 3)?;
            let chars: Vec<char> = s(&a[0])?.chars().collect();
            let off = to_f64(&a[1])? as i64;
            let len = to_f64(&a[2])? as i64;
            let start = if off < 0 {
                chars.len() as i64 + off
            } else {
                off
            }
            .max(0) as usize;
            let start = start.min(chars.len());
            let end = if len < 0 {
                chars.len()
            } else {
                (start + len as usize).min(chars.len())
            };
            Ok(Value::from(chars[start..end].iter().collect::<String>()))
        }
        "replace" | "regex_replace" => {
            arity(&a, 3)?;
            Ok(Value::from(s(&a[0])?.replace(&s(&a[1])?, &s(&a[2])?)))
        }
        "format" => format(&a),
        "join" => {
            arity(&a, 2)?;
            let sep = s(&a[0])?;
            let parts = list(&a[1])?.iter().map(s).collect::<Result<Vec<_>, _>>()?;
            Ok(Value::from(parts.join(&sep)))
        }
        "split" => {
            arity(&a, 2)?;
            let sep = s(&a[0])?;
            let v = s(&a[1])?;
            Ok(Value::Array(
                v.split(sep.as_str()).map(Value::from).collect(),
            ))
        }
        "concat" => {
            let mut out = Vec::new();
            for l in &a {
                out.extend(list(l)?.iter().cloned());
            }
            Ok(Value::Array(out))
        }
        "flatten" => {
            arity(&a, 1)?;
            fn flat(v: &Value, out: &mut Vec<Value>) {
                match v {
                    Value::Array(items) => items.iter().for_each(|i| flat(i, out)),
                    other => out.push(other.clone()),
                }
            }
            let mut out = Vec::new();
            flat(&a[0], &mut out);
            Ok(Value::Array(out))
        }
        "distinct" | "toset" => {
            arity(&a, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in list(&a[0])? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "compact" => {
            arity(&a, 1)?;
            Ok(Value::Array(
                list(&a[0])?
                    .iter()
                    .filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
                    .cloned()
                    .collect(),
            ))
        }
        "reverse" => {
            arity(&a, 1)?;
            Ok(Value::Array(list(&a[0])?.iter().rev().cloned().collect()))
        }
        "tolist" => {
            arity(&a, 1)?;
            Ok(Value::Array(list(&a[0])?.clone()))
        }
        "tomap" => {
            arity(&a, 1)?;
            Ok(Value::Object(object(&a[0])?.clone()))
        }
        "length" => {
            arity(&a, 1)?;
            Ok(Value::from(match &a[0] {
                Value::Array(l) => l.len(),
                Value::Object(o) => o.len(),
                Value::String(st) => st.chars().count(),
                other => return Err(format!("cannot take the length of {}", type_name(other))),
            }))
        }
        "element" => {
            arity(&a, 2)?;
            let l = list(&a[0])?;
            if l.is_empty() {
                return Err("cannot use element on an empty list".into());
            }
            let i = to_f64(&a[1])? as i64;
            Ok(l[i.rem_euclid(l.len() as i64) as usize].clone())
        }
        "index" => {
            arity(&a, 2)?;
            list(&a[0])?
                .iter()
                .position(|v| v == &a[1])
                .map(Value::from)
                .ok_or_else(|| "item not found".to_string())
        }
        "contains" => {
            arity(&a, 2)?;
            Ok(Value::Bool(list(&a[0])?.contains(&a[1])))
        }
        "keys" => {
            arity(&a, 1)?;
            let mut k: Vec<&String> = object(&a[0])?.keys().collect();
            k.sort();
            Ok(Value::Array(
                k.into_iter().map(|k| Value::from(k.as_str())).collect(),
            ))
        }
        "values" => {
            arity(&a, 1)?;
            let o = object(&a[0])?;
            let mut k: Vec<&String> = o.keys().collect();
            k.sort();
            Ok(Value::Array(k.into_iter().map(|k| o[k].clone()).collect()))
        }
        "lookup" => {
            if a.len() != 2 && a.len() != 3 {
                return Err(format!("expects 2 or 3 arguments, got {}", a.len()));
            }
            let key = s(&a[1])?;
            match object(&a[0])?.get(&key) {
                Some(v) => Ok(v.clone()),
                None => a
                    .get(2)
                    .cloned()
                    .ok_or_else(|| format!("the given key {key:?} does not exist in this map")),
            }
        }
        "merge" => {
            let mut out = Map::new();
            for m in &a {
                if m.is_null() {
                    continue;
                }
                for (k, v) in object(m)? {
                    out.insert(k.clone(), v.clone());
                }
            }
            Ok(Value::Object(out))
        }
        "zipmap" => {
            arity(&a, 2)?;
            let (k, v) = (list(&a[0])?, list(&a[1])?);
            if k.len() != v.len() {
                return Err("lists must have the same length".into());
            }
            let mut out = Map::new();
            for (k, v) in k.iter().zip(v) {
                out.insert(s(k)?, v.clone());
            }
            Ok(Value::Object(out))
        }
        "range" => {
            let nums = a.iter().map(to_f64).collect::<Result<Vec<_>, _>>()?;
            let (start, end, step) = match nums.as_slice() {
                [e] => (0.0, *e, 1.0),
                [s, e] => (*s, *e, if e >= s { 1.0 } else { -1.0 }),
                [s, e, st] => (*s, *e, *st),
                _ => return Err("expects 1 to 3 arguments".into()),
            };
            if step == 0.0 {
                return Err("step must not be zero".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                out.push(num(x));
                x += step;
                if out.len() > 1024 {
                    return Err("range too long".into());
                }
            }
            Ok(Value::Array(out))
        }
        "coalesce" => a
            .iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or_else(|| "no non-null, non-empty-string arguments".to_string()),
        "tostring" => {
            arity(&a, 1)?;
            Ok(Value::from(s(&a[0])?))
        }
        "tonumber" => {
            arity(&a, 1)?;
            to_f64(&a[0]).map(num)
        }
        "abs" => {
            arity(&a, 1)?;
            to_f64(&a[0]).map(|n| num(n.abs()))
        }
        "ceil" => {
            arity(&a, 1)?;
            to_f64(&a[0]).map(|n| num(n.ceil()))
        }
        "floor" => {
            arity(&a, 1)?;
            to_f64(&a[0]).map(|n| num(n.floor()))
        }
        "min" | "max" => {
            let nums = a.iter().map(to_f64).collect::<Result<Vec<_>, _>>()?;
            let r = if name == "min" {
                nums.iter().cloned().fold(f64::INFINITY, f64::min)
            } else {
                nums.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            };
            if nums.is_empty() {
                return Err("expects at least one argument".into());
            }
            Ok(num(r))
        }
        "base64encode" => {
            arity(&a, 1)?;
            Ok(Value::from(
                base64::engine::general_purpose::STANDARD.encode(s(&a[0])?),
            ))
        }
        "base64decode" => {
            arity(&a, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s(&a[0])?)
                .map_err(|e| format!("invalid base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::from)
                .map_err(|_| "decoded bytes are not valid UTF-8".to_string())
        }
        "jsonencode" => {
            arity(&a, 1)?;
            serde_json::to_string(&a[0])
                .map(Value::from)
                .map_err(|e| e.to_string())
        }
        "jsondecode" => {
            arity(&a, 1)?;
            serde_json::from_str(&s(&a[0])?).map_err(|e| format!("invalid JSON: {e}"))
        }
        "uuidv4" => {
            arity(&a, 0)?;
            Ok(Value::from(uuid::Uuid::new_v4().to_string()))
        }
        _ => Err(format!(
            "call to unknown function; available functions: {}",
            NAMES.join(", ")
        )),
    }
}

/// Go `fmt.Sprintf`-style `format` with `%s`, `%d`, `%v`, `%q`, `%f`, `%%`.
fn format(a: &[Value]) -> R {
    let fmt = s(a.first().ok_or("expects a format string")?)?;
    let mut args = a[1..].iter();
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("format string ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = args
            .next()
            .ok_or("not enough arguments for format string")?;
        match verb {
            's' | 'v' => out.push_str(&match v {
                Value::Array(_) | Value::Object(_) => v.to_string(),
                _ => s(v)?,
            }),
            'd' => out.push_str(&(to_f64(v)? as i64).to_string()),
            'f' => out.push_str(&format!("{:.6}", to_f64(v)?)),
            'q' => out.push_str(&format!("{:?}", s(v)?)),
            other => return Err(format!("unsupported format verb %{other}")),
        }
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn common_functions() {
        assert_eq!(call("base64encode", vec![json!("a:b")]), Ok(json!("YTpi")));
        assert_eq!(call("base64decode", vec![json!("YTpi")]), Ok(json!("a:b")));
        assert_eq!(
            call("format", vec![json!("%s-%d"), json!("x"), json!(3)]),
            Ok(json!("x-3"))
        );
        assert_eq!(
            call("join", vec![json!(","), json!(["a", "b"])]),
            Ok(json!("a,b"))
        );
        assert_eq!(call("max", vec![json!(1), json!(5)]), Ok(json!(5)));
        assert_eq!(
            call("lookup", vec![json!({"a": 1}), json!("b"), json!(2)]),
            Ok(json!(2))
        );
        assert_eq!(
            call("coalesce", vec![json!(""), json!("x")]),
            Ok(json!("x"))
        );
        assert_eq!(call("length", vec![json!("héllo")]), Ok(json!(5)));
        assert_eq!(
            call("uuidv4", vec![]).map(|v| v.as_str().map(str::len)),
            Ok(Some(36))
        );
        assert!(call("nope", vec![])
            .unwrap_err()
            .contains("unknown function"));
    }
}
