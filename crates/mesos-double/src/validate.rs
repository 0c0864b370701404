//! Resource arithmetic (containment with identical metadata, 3-decimal fixed
//! point), call-level required-field checks and task validation, following
//! mesos-scheduler-api.md §3.8, §4.1–4.2 and the captures.

use serde_json::{json, Map, Value};

/// Scalars are fixed point with 3 decimals.
fn millis(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

#[derive(Clone, Debug, PartialEq)]
enum Qty {
    Scalar(i64),
    Ranges(Vec<(u64, u64)>),
    Set(Vec<String>),
}

#[derive(Clone, Debug)]
struct Entry {
    /// Canonical JSON of every identity field (everything but the quantity).
    key: String,
    template: Value,
    qty: Qty,
}

/// A bag of resources; entries with the same identity are merged.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    entries: Vec<Entry>,
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Removes the allocation, e.g. when resources return to an agent.
pub fn strip_allocation(r: &Value) -> Value {
    let mut r = r.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("allocation_info");
    }
    r
}

fn entry(r: &Value, default_role: Option<&str>) -> Result<Entry, String> {
    let obj = r.as_object().ok_or("resource is not an object")?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or("resource without 'name'")?;
    let typ = obj.get("type").and_then(Value::as_str).unwrap_or("SCALAR");
    let qty = match typ {
        "SCALAR" => {
            let v = obj
                .get("scalar")
                .and_then(|s| s.get("value"))
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("Invalid scalar resource {name}: missing value"))?;
            if v < 0.0 {
                return Err(format!("Invalid scalar resource {name}: negative value"));
            }
            Qty::Scalar(millis(v))
        }
        "RANGES" => {
            let mut out = Vec::new();
            for rg in obj
                .get("ranges")
                .and_then(|r| r.get("range"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let b = rg.get("begin").and_then(Value::as_u64).ok_or("bad range")?;
                let e = rg.get("end").and_then(Value::as_u64).ok_or("bad range")?;
                if b > e {
                    return Err(format!("Invalid ranges resource {name}"));
                }
                out.push((b, e));
            }
            Qty::Ranges(normalize_ranges(out))
        }
        "SET" => Qty::Set(
            obj.get("set")
                .and_then(|s| s.get("item"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        other => return Err(format!("Unsupported resource type {other} for {name}")),
    };
    let mut ident = obj.clone();
    for k in ["scalar", "ranges", "set", "text"] {
        ident.remove(k);
    }
    ident.insert("type".into(), json!(typ));
    // The deprecated `role` field: "*" is the default and means unreserved.
    if ident.get("role").and_then(Value::as_str) == Some("*") {
        ident.remove("role");
    }
    // The master fills `allocation_info` in when a task leaves it out.
    if let Some(role) = default_role {
        ident
            .entry("allocation_info")
            .or_insert_with(|| json!({"role": role}));
    }
    let template = Value::Object(ident);
    Ok(Entry {
        key: canonical(&template).to_string(),
        template,
        qty,
    })
}

fn normalize_ranges(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (b, e) in v {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

fn ranges_contain(have: &[(u64, u64)], want: &[(u64, u64)]) -> bool {
    want.iter()
        .all(|(b, e)| have.iter().any(|(hb, he)| hb <= b && e <= he))
}

fn ranges_sub(have: &[(u64, u64)], want: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut cur = have.to_vec();
    for &(b, e) in want {
        let mut next = Vec::new();
        for (hb, he) in cur {
            if e < hb || b > he {
                next.push((hb, he));
                continue;
            }
            if hb < b {
                next.push((hb, b - 1));
            }
            if e < he {
                next.push((e + 1, he));
            }
        }
        cur = next;
    }
    cur
}

impl Pool {
    /// Parses resources; `default_role` fills a missing `allocation_info`.
    pub fn parse(resources: &[Value], default_role: Option<&str>) -> Result<Pool, String> {
        let mut p = Pool::default();
        for r in resources {
            p.add_entry(entry(r, default_role)?);
        }
        Ok(p)
    }

    fn add_entry(&mut self, e: Entry) {
        if let Some(x) = self.entries.iter_mut().find(|x| x.key == e.key) {
            x.qty = match (&x.qty, &e.qty) {
                (Qty::Scalar(a), Qty::Scalar(b)) => Qty::Scalar(a + b),
                (Qty::Ranges(a), Qty::Ranges(b)) => {
                    Qty::Ranges(normalize_ranges(a.iter().chain(b).copied().collect()))
                }
                (Qty::Set(a), Qty::Set(b)) => {
                    let mut s = a.clone();
                    s.extend(b.iter().filter(|i| !a.contains(i)).cloned());
                    Qty::Set(s)
                }
                _ => return,
            };
        } else {
            self.entries.push(e);
        }
    }

    pub fn add(&mut self, other: &Pool) {
        for e in &other.entries {
            self.add_entry(e.clone());
        }
    }

    pub fn contains(&self, other: &Pool) -> bool {
        other.entries.iter().all(|w| {
            self.entries
                .iter()
                .find(|h| h.key == w.key)
                .is_some_and(|h| match (&h.qty, &w.qty) {
                    (Qty::Scalar(a), Qty::Scalar(b)) => a >= b,
                    (Qty::Ranges(a), Qty::Ranges(b)) => ranges_contain(a, b),
                    (Qty::Set(a), Qty::Set(b)) => b.iter().all(|i| a.contains(i)),
                    _ => false,
                })
        })
    }

    /// Subtracts `other`, which must be contained.
    pub fn subtract(&mut self, other: &Pool) -> bool {
        if !self.contains(other) {
            return false;
        }
        for w in &other.entries {
            let h = self.entries.iter_mut().find(|h| h.key == w.key).unwrap();
            h.qty = match (&h.qty, &w.qty) {
                (Qty::Scalar(a), Qty::Scalar(b)) => Qty::Scalar(a - b),
                (Qty::Ranges(a), Qty::Ranges(b)) => Qty::Ranges(ranges_sub(a, b)),
                (Qty::Set(a), Qty::Set(b)) => {
                    Qty::Set(a.iter().filter(|i| !b.contains(i)).cloned().collect())
                }
                _ => unreachable!(),
            };
        }
        self.entries.retain(|e| !e.is_empty());
        true
    }

    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Entry::is_empty)
    }

    /// Unreserved resources, and reserved ones by the role they are reserved for (the top of
    /// a refined `reservations` stack, or the old `role`).
    pub fn split_by_reservation(&self) -> (Pool, std::collections::BTreeMap<String, Pool>) {
        let mut unreserved = Pool::default();
        let mut reserved: std::collections::BTreeMap<String, Pool> = Default::default();
        for e in self.entries.iter().filter(|e| !e.is_empty()) {
            let role = e.template["reservations"]
                .as_array()
                .and_then(|a| a.last())
                .and_then(|r| r["role"].as_str())
                .or_else(|| e.template["role"].as_str().filter(|r| *r != "*"));
            match role {
                Some(r) => reserved
                    .entry(r.to_string())
                    .or_default()
                    .add_entry(e.clone()),
                None => unreserved.add_entry(e.clone()),
            }
        }
        (unreserved, reserved)
    }

    /// The same resources without `allocation_info` (as an agent holds them).
    pub fn unallocated(&self) -> Pool {
        let stripped: Vec<Value> = self.to_json(None).iter().map(strip_allocation).collect();
        Pool::parse(&stripped, None).expect("own resources parse")
    }

    /// Resources in Mesos JSON form; `role` adds `allocation_info` (MULTI_ROLE)
    /// and every resource carries the deprecated `"role": "*"` like the master's.
    pub fn to_json(&self, role: Option<&str>) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| {
                let mut o = e.template.as_object().cloned().unwrap_or_default();
                match &e.qty {
                    Qty::Scalar(m) => {
                        o.insert("scalar".into(), json!({"value": *m as f64 / 1000.0}));
                    }
                    Qty::Ranges(r) => {
                        let range: Vec<Value> = r
                            .iter()
                            .map(|(b, e)| json!({"begin": b, "end": e}))
                            .collect();
                        o.insert("ranges".into(), json!({ "range": range }));
                    }
                    Qty::Set(s) => {
                        o.insert("set".into(), json!({ "item": s }));
                    }
                }
                if !o.contains_key("reservations") {
                    o.entry("role").or_insert_with(|| json!("*"));
                }
                if let Some(role) = role {
                    o.insert("allocation_info".into(), json!({ "role": role }));
                }
                Value::Object(o)
            })
            .collect()
    }

    /// Mesos's text form, e.g. `cpus(allocated: *):2; ports(allocated: *):[31000-32000]`.
    pub fn describe(&self) -> String {
        self.entries
            .iter()
            .filter(|e| !e.is_empty())
            .map(|e| {
                let name = e.template["name"].as_str().unwrap_or("?");
                let alloc = e.template["allocation_info"]["role"]
                    .as_str()
                    .map(|r| format!("(allocated: {r})"))
                    .unwrap_or_default();
                let q = match &e.qty {
                    Qty::Scalar(m) => {
                        let v = *m as f64 / 1000.0;
                        format!("{v}")
                    }
                    Qty::Ranges(r) => format!(
                        "[{}]",
                        r.iter()
                            .map(|(b, e)| format!("{b}-{e}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Qty::Set(s) => format!("{{{}}}", s.join(", ")),
                };
                format!("{name}{alloc}:{q}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Entry {
    fn is_empty(&self) -> bool {
        match &self.qty {
            Qty::Scalar(m) => *m == 0,
            Qty::Ranges(r) => r.is_empty(),
            Qty::Set(s) => s.is_empty(),
        }
    }
}

/// picojson-style parse error, as the master's "Failed to parse body into JSON: ..." carries.
pub fn json_parse_error(body: &[u8], e: &serde_json::Error) -> String {
    let text = String::from_utf8_lossy(body);
    let line = e.line().max(1);
    let col = e.column().max(1);
    let near: String = text
        .lines()
        .nth(line - 1)
        .map(|l| l.chars().skip(col - 1).collect())
        .unwrap_or_default();
    format!("syntax error at line {line} near: {near}")
}

fn has_value(v: &Value, path: &[&str]) -> bool {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) if !x.is_null() => cur = x,
            _ => return false,
        }
    }
    true
}

/// Proto2 required fields a JSON → protobuf conversion insists on. Returns the
/// missing paths (protobuf's InitializationErrorString style).
pub fn missing_required(call: &Value) -> Vec<String> {
    let mut miss = Vec::new();
    let mut need = |v: &Value, prefix: &str, fields: &[&[&str]]| {
        for f in fields {
            if !has_value(v, f) {
                miss.push(format!("{prefix}{}", f.join(".")));
            }
        }
    };
    if let Some(fid) = call.get("framework_id").filter(|v| !v.is_null()) {
        need(fid, "framework_id.", &[&["value"]]);
    }
    if let Some(s) = call.get("subscribe").filter(|v| !v.is_null()) {
        need(s, "subscribe.", &[&["framework_info"]]);
        if let Some(fi) = s.get("framework_info").filter(|v| !v.is_null()) {
            need(fi, "subscribe.framework_info.", &[&["user"], &["name"]]);
        }
    }
    if let Some(a) = call.get("acknowledge").filter(|v| !v.is_null()) {
        need(
            a,
            "acknowledge.",
            &[&["agent_id", "value"], &["task_id", "value"], &["uuid"]],
        );
    }
    if let Some(k) = call.get("kill").filter(|v| !v.is_null()) {
        need(k, "kill.", &[&["task_id", "value"]]);
    }
    if let Some(tasks) = call["reconcile"]["tasks"].as_array() {
        for (i, t) in tasks.iter().enumerate() {
            need(
                t,
                &format!("reconcile.tasks[{i}]."),
                &[&["task_id", "value"]],
            );
        }
    }
    if let Some(ops) = call["accept"]["operations"].as_array() {
        for (i, op) in ops.iter().enumerate() {
            let mut tasks: Vec<(String, &Value)> = Vec::new();
            if let Some(ts) = op["launch"]["task_infos"].as_array() {
                for (j, t) in ts.iter().enumerate() {
                    tasks.push((format!("accept.operations[{i}].launch.task_infos[{j}]."), t));
                }
            }
            if let Some(ts) = op["launch_group"]["task_group"]["tasks"].as_array() {
                for (j, t) in ts.iter().enumerate() {
                    tasks.push((
                        format!("accept.operations[{i}].launch_group.task_group.tasks[{j}]."),
                        t,
                    ));
                }
            }
            for (prefix, t) in tasks {
                need(
                    t,
                    &prefix,
                    &[&["name"], &["task_id", "value"], &["agent_id", "value"]],
                );
                if let Some(rs) = t["resources"].as_array() {
                    for (k, r) in rs.iter().enumerate() {
                        need(r, &format!("{prefix}resources[{k}]."), &[&["name"]]);
                    }
                }
            }
        }
    }
    miss
}

/// Checks of `validation::task` that do not depend on the offer pool.
/// Returns the TASK_ERROR message.
pub fn validate_task(task: &Value, offer_agent: &str, seen_ids: &[String]) -> Option<String> {
    validate_task_identity(task, offer_agent, seen_ids)
        .or_else(|| validate_command_or_executor(task))
        .or_else(|| validate_task_resources(task))
}

/// Task ID well-formed and unused, agent the offers' agent.
pub fn validate_task_identity(
    task: &Value,
    offer_agent: &str,
    seen_ids: &[String],
) -> Option<String> {
    let id = task["task_id"]["value"].as_str().unwrap_or("");
    if let Some(e) = validate_id(id) {
        return Some(format!("Task uses invalid task ID: {e}"));
    }
    if seen_ids.iter().any(|s| s == id) {
        return Some(format!("Task has duplicate ID: {id}"));
    }
    let agent = task["agent_id"]["value"].as_str().unwrap_or("");
    if agent != offer_agent {
        return Some(format!(
            "Task uses invalid agent: {agent} (the offers are for agent {offer_agent})"
        ));
    }
    None
}

fn validate_command_or_executor(task: &Value) -> Option<String> {
    let has_cmd = !task["command"].is_null();
    let has_exec = !task["executor"].is_null();
    if has_cmd == has_exec {
        return Some(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into(),
        );
    }
    if has_cmd && task["command"]["value"].as_str().is_none() {
        return Some("Task uses invalid CommandInfo: 'value' is not set".into());
    }
    if has_exec && task["executor"]["command"]["value"].as_str().is_none() {
        return Some("Executor uses invalid CommandInfo: 'value' is not set".into());
    }
    None
}

/// The task brings resources and they parse.
pub fn validate_task_resources(task: &Value) -> Option<String> {
    let res = task["resources"].as_array().cloned().unwrap_or_default();
    if res.is_empty() {
        return Some("Task uses no resources".into());
    }
    if let Err(e) = Pool::parse(&res, None) {
        return Some(format!("Task uses invalid resources: {e}"));
    }
    None
}

pub fn validate_id(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("ID must not be empty".into());
    }
    if id == "." || id == ".." {
        return Some("'.' and '..' are disallowed".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| *c == '/' || c.is_whitespace() || c.is_control())
    {
        return Some(format!("'{c}' is not a valid character"));
    }
    None
}
