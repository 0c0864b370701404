//! Nomad blocks Dispatch does not model (constraint, network, periodic, service, ...):
//! rendered as API-style PascalCase JSON into the `extra` maps so nothing is lost.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::body::{Cx, Item, Keys, Kind, Res};

impl<'a> Cx<'a> {
    /// Renders a Nomad block Dispatch does not model into `extra` (PascalCase keys).
    pub fn put_extra(
        &self,
        extra: &mut IndexMap<String, Value>,
        item: &Item<'a>,
        path: &str,
    ) -> Res<()> {
        let name = item.name.as_str();
        let value = match &item.kind {
            Kind::Attr(_) => {
                let v = self.value(item, path, name)?;
                extra.insert(attr_key(name), v);
                return Ok(());
            }
            Kind::Block { labels, body } => {
                let mut obj = self.object(body, &item.scope, path, name, Keys::Api)?;
                if let Some(l) = labels.first() {
                    let k = if name == "port" { "Label" } else { "Name" };
                    obj.shift_insert(0, k.to_string(), Value::from(l.clone()));
                }
                if name == "constraint" || name == "affinity" {
                    constraint_operand(&mut obj);
                }
                Value::Object(obj)
            }
        };
        let key = json_key(name);
        if name == "volume" {
            let label = match &item.kind {
                Kind::Block { labels, .. } => labels.first().cloned().unwrap_or_default(),
                Kind::Attr(_) => String::new(),
            };
            if let Value::Object(m) = extra
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()))
            {
                m.insert(label, value);
            }
        } else if is_plural(name) {
            if let Value::Array(a) = extra.entry(key).or_insert_with(|| Value::Array(vec![])) {
                a.push(value);
            }
        } else {
            match extra.get_mut(&key) {
                Some(Value::Array(a)) => a.push(value),
                Some(prev) => {
                    let first = prev.take();
                    *prev = Value::Array(vec![first, value]);
                }
                None => {
                    extra.insert(key, value);
                }
            }
        }
        Ok(())
    }
}

/// Repeatable Nomad blocks whose API field is a list.
fn is_plural(name: &str) -> bool {
    matches!(
        name,
        "constraint"
            | "affinity"
            | "spread"
            | "network"
            | "service"
            | "volume_mount"
            | "device"
            | "check"
            | "port"
            | "target"
            | "upstreams"
            | "action"
    )
}

/// The API JSON key for an HCL attribute name.
pub(crate) fn attr_key(name: &str) -> String {
    let special = match name {
        "attribute" => "LTarget",
        "value" => "RTarget",
        "operator" => "Operand",
        "cron" => "Spec",
        "crons" => "Specs",
        "max_file_size" => "MaxFileSizeMB",
        "cpu" => "CPU",
        "memory" => "MemoryMB",
        "mbits" => "MBits",
        "iops" => "IOPS",
        "id" => "ID",
        _ => return pascal(name),
    };
    special.to_string()
}

/// The API JSON key for an HCL block name.
pub(crate) fn json_key(name: &str) -> String {
    let special = match name {
        "constraint" => "Constraints",
        "affinity" => "Affinities",
        "spread" => "Spreads",
        "network" => "Networks",
        "service" => "Services",
        "volume" => "Volumes",
        "volume_mount" => "VolumeMounts",
        "device" => "Devices",
        "check" => "Checks",
        "port" => "DynamicPorts",
        "target" => "SpreadTarget",
        "logs" => "LogConfig",
        "ui" => "UI",
        "numa" => "NUMA",
        _ => return attr_key(name),
    };
    special.to_string()
}

fn pascal(name: &str) -> String {
    name.split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `distinct_hosts = true`, `regexp = "..."` ... are operator shorthands in Nomad.
fn constraint_operand(obj: &mut Map<String, Value>) {
    for op in [
        "DistinctHosts",
        "DistinctProperty",
        "Regexp",
        "Version",
        "Semver",
        "SetContains",
        "SetContainsAll",
        "SetContainsAny",
        "IsSet",
        "IsNotSet",
    ] {
        if let Some(v) = obj.remove(op) {
            let operand: String = op
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let lower = c.to_ascii_lowercase();
                    if c.is_ascii_uppercase() && i > 0 {
                        vec!['_', lower]
                    } else {
                        vec![lower]
                    }
                })
                .collect();
            match op {
                "DistinctHosts" | "IsSet" | "IsNotSet" => {}
                "DistinctProperty" => {
                    obj.insert("LTarget".into(), v);
                }
                _ => {
                    obj.insert("RTarget".into(), v);
                }
            }
            obj.insert("Operand".into(), Value::from(operand));
        }
    }
}
