//! Nomad's ACL policy language: `namespace "<glob>" { policy = "read" capabilities = [...] }`,
//! `agent`, `operator`, `node` (and, accepted for compatibility, `node_pool`, `host_volume`,
//! `quota`, `plugin`) with `policy = "deny|read|write"`; plus Dispatch's `job "<id or
//! prefix*>" { ... }` so a token can be given one job. Rules are HCL or JSON; every error
//! names the line and the cause. Shorthand policies expand into capabilities exactly as
//! Nomad's `acl/policy.go` does, so `RulesJSON` (what the Nomad UI reads) lists them.

use std::collections::BTreeSet;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use serde::{Deserialize, Serialize};

/// Every namespace capability Nomad's parser accepts.
pub const NAMESPACE_CAPABILITIES: &[&str] = &[
    "deny",
    "list-jobs",
    "parse-job",
    "read-job",
    "submit-job",
    "dispatch-job",
    "read-logs",
    "read-fs",
    "alloc-exec",
    "alloc-node-exec",
    "alloc-lifecycle",
    "sentinel-override",
    "submit-recommendation",
    "csi-register-plugin",
    "csi-write-volume",
    "csi-read-volume",
    "csi-list-volume",
    "csi-mount-volume",
    "host-volume-create",
    "host-volume-register",
    "host-volume-read",
    "host-volume-write",
    "host-volume-delete",
    "list-scaling-policies",
    "read-scaling-policy",
    "read-job-scaling",
    "scale-job",
    "register-job",
    "revert-job",
    "deregister-job",
    "purge-job",
    "evaluate-job",
    "plan-job",
    "tag-job-version",
    "stable-job",
    "fail-deployment",
    "pause-deployment",
    "promote-deployment",
    "unblock-deployment",
    "cancel-deployment",
    "set-alloc-health-deployment",
    "gc-allocation",
    "pause-allocation",
    "force-periodic-job",
    "delete-service-registration",
];

/// Capabilities a `job` block may grant: those that concern one job and its children.
pub const JOB_CAPABILITIES: &[&str] = &[
    "deny",
    "list-jobs",
    "parse-job",
    "read-job",
    "submit-job",
    "register-job",
    "deregister-job",
    "purge-job",
    "dispatch-job",
    "read-logs",
    "read-fs",
    "alloc-lifecycle",
];

const READ: &[&str] = &[
    "list-jobs",
    "parse-job",
    "read-job",
    "csi-list-volume",
    "csi-read-volume",
    "read-job-scaling",
    "list-scaling-policies",
    "read-scaling-policy",
    "host-volume-read",
];

const WRITE_EXTRA: &[&str] = &[
    "scale-job",
    "submit-job",
    "dispatch-job",
    "read-logs",
    "read-fs",
    "alloc-exec",
    "alloc-lifecycle",
    "csi-mount-volume",
    "csi-write-volume",
    "submit-recommendation",
    "host-volume-create",
];

const SCALE: &[&str] = &[
    "list-scaling-policies",
    "read-scaling-policy",
    "read-job-scaling",
    "scale-job",
    "read-job",
    "submit-recommendation",
];

/// A coarse level: `agent`, `operator`, `node` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Deny,
    List,
    Read,
    Write,
}

impl Level {
    fn parse(raw: &str, allowed: &[Level]) -> Option<Level> {
        let level = match raw {
            "deny" => Level::Deny,
            "list" => Level::List,
            "read" => Level::Read,
            "write" => Level::Write,
            _ => return None,
        };
        allowed.contains(&level).then_some(level)
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Deny => "deny",
            Level::List => "list",
            Level::Read => "read",
            Level::Write => "write",
        }
    }

    /// Whether this level grants `want` (`deny` grants nothing).
    pub fn grants(self, want: Level) -> bool {
        self != Level::Deny && self >= want
    }
}

/// `namespace "<glob>"` or `job "<pattern>"`: a policy shorthand and/or capabilities,
/// expanded into the full list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScopeRule {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    pub capabilities: Vec<String>,
}

impl ScopeRule {
    pub fn denies(&self) -> bool {
        self.capabilities.iter().any(|c| c == "deny")
    }

    pub fn has(&self, capability: &str) -> bool {
        !self.denies() && self.capabilities.iter().any(|c| c == capability)
    }
}

/// A coarse rule as Nomad writes it in `RulesJSON`: `{"Policy": "read"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LevelRule {
    pub policy: Level,
}

/// A parsed policy: what `RulesJSON` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rules {
    pub namespaces: Vec<ScopeRule>,
    /// Dispatch's extension: rules for one job (and its dispatched children) or a prefix.
    pub jobs: Vec<ScopeRule>,
    pub agent: Option<LevelRule>,
    pub operator: Option<LevelRule>,
    pub node: Option<LevelRule>,
}

/// A policy that does not parse: the line (1-based, 0 when unknown) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", if *line > 0 { format!("line {line}: {message}") } else { message.clone() })]
pub struct PolicyError {
    pub line: usize,
    pub message: String,
}

fn error(line: usize, message: impl Into<String>) -> PolicyError {
    PolicyError {
        line,
        message: message.into(),
    }
}

/// Parse policy rules (HCL, or JSON when the text starts with `{`). Empty rules are an
/// empty policy, as in Nomad.
pub fn parse(text: &str) -> Result<Rules, PolicyError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let tree = if trimmed.starts_with('{') {
        json_tree(trimmed)?
    } else {
        hcl_tree(text)?
    };
    rules(&tree)
}

// ---- one tree for both syntaxes ----

/// A value of the rules, with the line it starts on.
#[derive(Debug)]
struct Node {
    line: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Str(String),
    List(Vec<Node>),
    /// A block's (or the file's) items: key, labels, value.
    Body(Vec<(String, Vec<String>, Node)>),
    /// Anything else (numbers, bools, expressions), named for messages.
    Other(&'static str),
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn hcl_tree(text: &str) -> Result<Node, PolicyError> {
    let body = hcl::edit::parser::parse_body(text)
        .map_err(|e| error(e.location().line(), format!("invalid HCL: {}", e.message())))?;
    Ok(Node {
        line: 1,
        kind: Kind::Body(hcl_body(text, &body)),
    })
}

fn hcl_body(text: &str, body: &Body) -> Vec<(String, Vec<String>, Node)> {
    body.iter()
        .map(|item| {
            let line = item.span().map_or(0, |s| line_of(text, s.start));
            match item {
                Structure::Attribute(a) => (
                    a.key.as_str().to_string(),
                    Vec::new(),
                    hcl_expr(text, &a.value),
                ),
                Structure::Block(b) => (
                    b.ident.as_str().to_string(),
                    b.labels.iter().map(|l| l.as_str().to_string()).collect(),
                    Node {
                        line,
                        kind: Kind::Body(hcl_body(text, &b.body)),
                    },
                ),
            }
        })
        .collect()
}

fn hcl_expr(text: &str, expr: &Expression) -> Node {
    let line = expr.span().map_or(0, |s| line_of(text, s.start));
    let kind = match expr {
        Expression::String(s) => Kind::Str(s.value().to_string()),
        Expression::Array(items) => Kind::List(items.iter().map(|e| hcl_expr(text, e)).collect()),
        Expression::Number(_) => Kind::Other("a number"),
        Expression::Bool(_) => Kind::Other("a bool"),
        Expression::Null(_) => Kind::Other("null"),
        Expression::Object(_) => Kind::Other("an object"),
        _ => Kind::Other("an expression"),
    };
    Node { line, kind }
}

/// Blocks that take a label, in HCL's JSON form `{"namespace": {"default": {...}}}`.
const LABELED: &[&str] = &["namespace", "job", "node_pool", "host_volume", "path"];

fn json_tree(text: &str) -> Result<Node, PolicyError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| error(e.line(), format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(error(1, "JSON rules must be an object"));
    };
    Ok(Node {
        line: 1,
        kind: Kind::Body(json_body(&map)),
    })
}

fn json_body(map: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, Vec<String>, Node)> {
    let mut out = Vec::new();
    for (key, value) in map {
        // `"namespace": [{...}, {...}]` is the same as the objects merged
        let values: Vec<&serde_json::Value> = match value {
            serde_json::Value::Array(items)
                if items.iter().all(serde_json::Value::is_object) && !items.is_empty() =>
            {
                items.iter().collect()
            }
            other => vec![other],
        };
        for value in values {
            match value {
                serde_json::Value::Object(inner) if LABELED.contains(&key.as_str()) => {
                    for (label, block) in inner {
                        let body = match block {
                            serde_json::Value::Object(b) => Kind::Body(json_body(b)),
                            _ => Kind::Other("not a block"),
                        };
                        out.push((
                            key.clone(),
                            vec![label.clone()],
                            Node {
                                line: 1,
                                kind: body,
                            },
                        ));
                    }
                }
                serde_json::Value::Object(inner) => out.push((
                    key.clone(),
                    Vec::new(),
                    Node {
                        line: 1,
                        kind: Kind::Body(json_body(inner)),
                    },
                )),
                other => out.push((key.clone(), Vec::new(), json_value(other))),
            }
        }
    }
    out
}

fn json_value(value: &serde_json::Value) -> Node {
    let kind = match value {
        serde_json::Value::String(s) => Kind::Str(s.clone()),
        serde_json::Value::Array(items) => Kind::List(items.iter().map(json_value).collect()),
        serde_json::Value::Number(_) => Kind::Other("a number"),
        serde_json::Value::Bool(_) => Kind::Other("a bool"),
        serde_json::Value::Null => Kind::Other("null"),
        serde_json::Value::Object(_) => Kind::Other("an object"),
    };
    Node { line: 1, kind }
}

// ---- the tree -> rules ----

const TOP_LEVEL: &str =
    "namespace, job, agent, operator, node, node_pool, host_volume, quota, plugin";

fn rules(tree: &Node) -> Result<Rules, PolicyError> {
    let Kind::Body(items) = &tree.kind else {
        return Err(error(tree.line, "rules must be blocks"));
    };
    let mut rules = Rules::default();
    for (key, labels, node) in items {
        let line = node.line;
        let Kind::Body(body) = &node.kind else {
            return Err(error(
                line,
                format!("{key:?} must be a block ({key} {{ ... }}); a policy has: {TOP_LEVEL}"),
            ));
        };
        match key.as_str() {
            "namespace" => {
                let name = one_label(key, labels, line)?;
                if name.is_empty()
                    || name.len() > 128
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                {
                    return Err(error(line, format!("invalid namespace name {name:?}; expected letters, digits, '-' and '*' globs")));
                }
                rules.namespaces.push(scope(
                    &format!("namespace {name:?}"),
                    name,
                    body,
                    line,
                    NAMESPACE_CAPABILITIES,
                    &["variables"],
                )?);
            }
            "job" => {
                let name = one_label(key, labels, line)?;
                if name.is_empty() || name.trim() != name || name[..name.len() - 1].contains('*') {
                    return Err(error(line, format!("invalid job pattern {name:?}; expected a job ID, or an ID prefix ending in * (\"transcode*\")")));
                }
                rules.jobs.push(scope(
                    &format!("job {name:?}"),
                    name,
                    body,
                    line,
                    JOB_CAPABILITIES,
                    &[],
                )?);
            }
            "agent" | "operator" | "node" | "quota" | "plugin" => {
                no_label(key, labels, line)?;
                let allowed: &[Level] = if key == "plugin" {
                    &[Level::Deny, Level::List, Level::Read, Level::Write]
                } else {
                    &[Level::Deny, Level::Read, Level::Write]
                };
                let extra: &[&str] = if key == "operator" {
                    &["capabilities"]
                } else {
                    &[]
                };
                let level = level(key, body, line, allowed, extra)?;
                let rule = Some(LevelRule { policy: level });
                match key.as_str() {
                    "agent" => rules.agent = rule,
                    "operator" => rules.operator = rule,
                    "node" => rules.node = rule,
                    _ => {}
                }
            }
            "node_pool" | "host_volume" => {
                // accepted so that Nomad policies load; Dispatch has no such resources
                one_label(key, labels, line)?;
                for (k, _, n) in body {
                    if k != "policy" && k != "capabilities" {
                        return Err(error(
                            n.line,
                            format!("{key}: unknown key {k:?}; expected policy or capabilities"),
                        ));
                    }
                }
            }
            other => {
                return Err(error(
                    line,
                    format!("unknown block {other:?}; a policy has: {TOP_LEVEL}"),
                ))
            }
        }
    }
    Ok(rules)
}

fn one_label(key: &str, labels: &[String], line: usize) -> Result<String, PolicyError> {
    match labels {
        [one] => Ok(one.clone()),
        [] => Err(error(
            line,
            format!("{key} needs a name: {key} \"<name>\" {{ ... }}"),
        )),
        _ => Err(error(
            line,
            format!("{key} takes one name, not {}", labels.len()),
        )),
    }
}

fn no_label(key: &str, labels: &[String], line: usize) -> Result<(), PolicyError> {
    if let Some(l) = labels.first() {
        return Err(error(
            line,
            format!("{key} takes no name (found {l:?}); write {key} {{ policy = \"read\" }}"),
        ));
    }
    Ok(())
}

fn string(what: &str, key: &str, node: &Node) -> Result<String, PolicyError> {
    match &node.kind {
        Kind::Str(s) => Ok(s.clone()),
        Kind::Other(t) => Err(error(
            node.line,
            format!("{what}: {key} must be a string, not {t}"),
        )),
        Kind::List(_) => Err(error(
            node.line,
            format!("{what}: {key} must be a string, not a list"),
        )),
        Kind::Body(_) => Err(error(
            node.line,
            format!("{what}: {key} must be a string, not a block"),
        )),
    }
}

/// A `namespace` or `job` block.
fn scope(
    what: &str,
    name: String,
    body: &[(String, Vec<String>, Node)],
    line: usize,
    known: &[&'static str],
    ignored_blocks: &[&str],
) -> Result<ScopeRule, PolicyError> {
    let mut policy = String::new();
    let mut caps: BTreeSet<&'static str> = BTreeSet::new();
    let mut seen_policy = false;
    let mut seen_caps = false;
    for (key, _, node) in body {
        match key.as_str() {
            "policy" if !seen_policy => {
                seen_policy = true;
                policy = string(what, key, node)?;
                let expansion: Vec<&'static str> = match policy.as_str() {
                    "deny" => vec!["deny"],
                    "read" => READ.to_vec(),
                    "write" => READ.iter().chain(WRITE_EXTRA).copied().collect(),
                    "scale" if known == NAMESPACE_CAPABILITIES => SCALE.to_vec(),
                    other => {
                        let allowed = if known == NAMESPACE_CAPABILITIES {
                            "deny, read, write or scale"
                        } else {
                            "deny, read or write"
                        };
                        return Err(error(
                            node.line,
                            format!("{what}: invalid policy {other:?}; expected {allowed}"),
                        ));
                    }
                };
                // a job's shorthand grants only what concerns a job
                caps.extend(expansion.into_iter().filter(|c| known.contains(c)));
            }
            "capabilities" if !seen_caps => {
                seen_caps = true;
                let Kind::List(items) = &node.kind else {
                    return Err(error(node.line, format!("{what}: capabilities must be a list of strings, e.g. [\"read-job\", \"dispatch-job\"]")));
                };
                for item in items {
                    let cap = string(what, "each capability", item)?;
                    let Some(known_cap) = known.iter().find(|k| **k == cap) else {
                        let hint = if known == JOB_CAPABILITIES
                            && NAMESPACE_CAPABILITIES.contains(&cap.as_str())
                        {
                            format!(
                                "{cap:?} applies to a namespace, not a job; a job block grants: {}",
                                JOB_CAPABILITIES.join(", ")
                            )
                        } else {
                            format!("known capabilities: {}", known.join(", "))
                        };
                        return Err(error(
                            item.line.max(node.line),
                            format!("{what}: unknown capability {cap:?}; {hint}"),
                        ));
                    };
                    caps.insert(known_cap);
                }
            }
            "policy" | "capabilities" => {
                return Err(error(node.line, format!("{what}: {key} is given twice")))
            }
            k if ignored_blocks.contains(&k) => {}
            other => {
                return Err(error(
                    node.line,
                    format!("{what}: unknown key {other:?}; expected policy or capabilities"),
                ))
            }
        }
    }
    if !seen_policy && !seen_caps {
        return Err(error(
            line,
            format!("{what} grants nothing: give policy = \"read\" (deny, read, write) or capabilities = [...]"),
        ));
    }
    // Nomad lists the capabilities in the order of its table
    let capabilities = known
        .iter()
        .filter(|k| caps.contains(**k))
        .map(|k| k.to_string())
        .collect();
    Ok(ScopeRule {
        name,
        policy,
        capabilities,
    })
}

/// `agent { policy = "read" }` and friends.
fn level(
    key: &str,
    body: &[(String, Vec<String>, Node)],
    line: usize,
    allowed: &[Level],
    extra_keys: &[&str],
) -> Result<Level, PolicyError> {
    let mut found = None;
    for (k, _, node) in body {
        if k == "policy" {
            let raw = string(key, "policy", node)?;
            let level = Level::parse(&raw, allowed).ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|l| l.name()).collect();
                error(
                    node.line,
                    format!(
                        "{key}: invalid policy {raw:?}; expected {}",
                        names.join(", ")
                    ),
                )
            })?;
            found = Some(level);
        } else if !extra_keys.contains(&k.as_str()) {
            return Err(error(
                node.line,
                format!("{key}: unknown key {k:?}; expected policy"),
            ));
        }
    }
    found.ok_or_else(|| {
        error(
            line,
            format!("{key} needs a policy: {key} {{ policy = \"read\" }}"),
        )
    })
}

// ---- matching ----

/// Whether `name` matches a glob `pattern` (`*` for any run of characters).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// How closely a rule's name matches: exact beats any glob; among globs, more literal
/// characters win (Nomad's rule for namespaces).
pub fn namespace_specificity(pattern: &str, namespace: &str) -> Option<usize> {
    if pattern == namespace {
        Some(usize::MAX)
    } else if glob_match(pattern, namespace) {
        Some(pattern.chars().filter(|c| *c != '*').count())
    } else {
        None
    }
}

/// How closely a `job` rule matches a job ID: the exact ID (or a child of it: `<id>/...`)
/// beats any prefix; a longer prefix beats a shorter one.
pub fn job_specificity(pattern: &str, job_id: &str) -> Option<usize> {
    match pattern.strip_suffix('*') {
        Some(prefix) => job_id.starts_with(prefix).then_some(prefix.len()),
        None => (job_id == pattern
            || job_id
                .strip_prefix(pattern)
                .is_some_and(|rest| rest.starts_with('/')))
        .then_some(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomad_shorthands_expand_as_nomad_does() {
        let r = parse(
            "namespace \"default\" {\n  policy = \"read\"\n  capabilities = [\"dispatch-job\"]\n}\nagent {\n  policy = \"read\"\n}\n",
        )
        .unwrap();
        assert_eq!(r.namespaces.len(), 1);
        let ns = &r.namespaces[0];
        assert_eq!(ns.policy, "read");
        assert!(ns.has("list-jobs") && ns.has("read-job") && ns.has("dispatch-job"));
        assert!(!ns.has("submit-job"));
        assert_eq!(
            r.agent,
            Some(LevelRule {
                policy: Level::Read
            })
        );
        let w = parse("namespace \"*\" { policy = \"write\" }").unwrap();
        let caps = &w.namespaces[0].capabilities;
        for c in [
            "submit-job",
            "dispatch-job",
            "read-logs",
            "read-fs",
            "alloc-lifecycle",
        ] {
            assert!(caps.iter().any(|x| x == c), "{c} in {caps:?}");
        }
        assert!(!caps.iter().any(|x| x == "alloc-node-exec"));
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["Namespaces"][0]["Name"], "*");
        assert_eq!(json["Agent"], serde_json::Value::Null);
    }

    #[test]
    fn job_blocks_grant_one_job_and_its_children() {
        let r = parse(
            "job \"transcode\" {\n  capabilities = [\"dispatch-job\", \"read-job\"]\n}\njob \"gif*\" {\n  policy = \"write\"\n}\n",
        )
        .unwrap();
        assert_eq!(r.jobs[0].capabilities, ["read-job", "dispatch-job"]);
        assert!(r.jobs[1].has("submit-job") && !r.jobs[1].has("alloc-exec"));
        assert_eq!(job_specificity("transcode", "transcode"), Some(usize::MAX));
        assert_eq!(
            job_specificity("transcode", "transcode/dispatch-1-abc"),
            Some(usize::MAX)
        );
        assert_eq!(job_specificity("transcode", "transcoder"), None);
        assert_eq!(job_specificity("gif*", "gif-fast"), Some(3));
        assert_eq!(job_specificity("*", "anything"), Some(0));
    }

    #[test]
    fn errors_name_the_line_and_the_cause() {
        let cases = [
            ("namespace \"default\" {\n  policy = \"admin\"\n}\n", "line 2: namespace \"default\": invalid policy \"admin\"; expected deny, read, write or scale"),
            ("namespace \"default\" {\n  capabilities = [\n    \"dispatch-jobs\"\n  ]\n}\n", "line 3: namespace \"default\": unknown capability \"dispatch-jobs\"; known capabilities: deny, list-jobs"),
            ("job \"t\" {\n  capabilities = [\"csi-mount-volume\"]\n}\n", "line 2: job \"t\": unknown capability \"csi-mount-volume\"; \"csi-mount-volume\" applies to a namespace, not a job"),
            ("agent {\n  policy = \"root\"\n}\n", "line 2: agent: invalid policy \"root\"; expected deny, read, write"),
            ("namespace \"default\" {\n  policy = \"read\"\n", "line 2: invalid HCL: invalid block body; expected `}`"),
            ("namespaces \"default\" {\n  policy = \"read\"\n}\n", "line 1: unknown block \"namespaces\"; a policy has: namespace, job"),
            ("namespace {\n  policy = \"read\"\n}\n", "line 1: namespace needs a name"),
            ("namespace \"default\" {\n  polcy = \"read\"\n}\n", "line 2: namespace \"default\": unknown key \"polcy\""),
            ("job \"a*b\" {\n  policy = \"read\"\n}\n", "line 1: invalid job pattern \"a*b\""),
            ("namespace \"default\" {\n}\n", "line 1: namespace \"default\" grants nothing"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn empty_rules_and_json_rules() {
        assert_eq!(parse("").unwrap(), Rules::default());
        let r = parse(r#"{"namespace": {"default": {"policy": "read", "capabilities": ["dispatch-job"]}}, "agent": {"policy": "write"}, "job": {"t*": {"capabilities": ["read-job"]}}}"#).unwrap();
        assert!(r.namespaces[0].has("dispatch-job"));
        assert_eq!(r.agent.unwrap().policy, Level::Write);
        assert_eq!(r.jobs[0].name, "t*");
        assert!(parse(r#"{"namespace": {"default": {"policy": "root"}}}"#)
            .unwrap_err()
            .to_string()
            .contains("invalid policy \"root\""));
        // Nomad's other blocks load (no effect here)
        parse("node_pool \"default\" {\n  policy = \"read\"\n}\nplugin {\n  policy = \"list\"\n}\nnamespace \"default\" {\n  policy = \"read\"\n  variables {\n    path \"*\" {\n      capabilities = [\"read\"]\n    }\n  }\n}\n").unwrap();
    }

    #[test]
    fn globs_and_specificity() {
        assert!(glob_match("*", "default"));
        assert!(glob_match("def*", "default"));
        assert!(glob_match("*ult", "default"));
        assert!(glob_match("d*a*t", "default"));
        assert!(!glob_match("prod-*", "default"));
        assert_eq!(
            namespace_specificity("default", "default"),
            Some(usize::MAX)
        );
        assert!(namespace_specificity("def*", "default") > namespace_specificity("*", "default"));
    }
}
