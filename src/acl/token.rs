//! ACL tokens and policies as stored: a token's secret only as its SHA-256 (the secret is a
//! random UUID, so a fast hash is enough and a lookup by hash reveals nothing), its
//! policies, its expiry. The checks Nomad makes when a token or policy is created, with
//! Nomad's messages.

use serde::{Deserialize, Serialize};

use super::policy::{self, PolicyError, Rules};

/// Nomad's bounds on `ExpirationTTL` (`acl.token_min_expiration_ttl`, `..._max_...`).
pub const MIN_TTL_NS: i64 = 60 * 1_000_000_000;
pub const MAX_TTL_NS: i64 = 24 * 3600 * 1_000_000_000;

/// A token as stored (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub accessor_id: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    pub name: String,
    pub management: bool,
    pub policies: Vec<String>,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub expiration_time: Option<i64>,
    /// Nanoseconds, as asked for.
    pub expiration_ttl: Option<i64>,
    pub create_index: u64,
    pub modify_index: u64,
    /// Made from `-acl-bootstrap-token-file` (replaced when the file changes).
    #[serde(default)]
    pub from_file: bool,
}

impl Token {
    pub fn kind(&self) -> &'static str {
        if self.management {
            "management"
        } else {
            "client"
        }
    }

    pub fn expired(&self, now_ns: i64) -> bool {
        self.expiration_time.is_some_and(|t| t <= now_ns)
    }

    /// Nomad's `Hash`: a digest of what the token is (never of its secret).
    pub fn content_hash(&self) -> Vec<u8> {
        let text = format!(
            "{}\n{}\n{}\n{}\n{:?}",
            self.name,
            self.kind(),
            self.policies.join(","),
            self.create_time,
            self.expiration_time
        );
        sha256(text.as_bytes()).to_vec()
    }
}

/// A policy as stored: its rules as written, and parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub rules: String,
    #[serde(skip)]
    pub parsed: Rules,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Policy {
    pub fn content_hash(&self) -> Vec<u8> {
        sha256(format!("{}\n{}\n{}", self.name, self.description, self.rules).as_bytes()).to_vec()
    }

    /// Parse the stored rules again after loading (they were checked when written).
    pub fn reparse(mut self) -> Policy {
        self.parsed = policy::parse(&self.rules).unwrap_or_else(|e| {
            tracing::error!(
                "ACL policy {:?} no longer parses ({e}); it grants nothing until it is fixed",
                self.name
            );
            Rules::default()
        });
        self
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// How a secret is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    sha256(secret.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random secret or accessor ID.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Nomad's policy name rule: `^[a-zA-Z0-9-]{1,128}$`.
pub fn check_policy_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!(
            "invalid name '{name}': a policy name is 1 to 128 letters, digits and dashes"
        ));
    }
    Ok(())
}

/// Check a policy about to be written; `Ok(parsed rules)`.
pub fn check_policy(name: &str, description: &str, rules: &str) -> Result<Rules, String> {
    check_policy_name(name)?;
    if description.chars().count() > 256 {
        return Err("description longer than 256".into());
    }
    policy::parse(rules).map_err(|e: PolicyError| format!("failed to parse rules: {e}"))
}

/// `ExpirationTTL` as JSON: a Go duration string (`"10h"`) or integer nanoseconds.
pub fn parse_ttl(value: &serde_json::Value) -> Result<Option<i64>, String> {
    let ns = match value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::String(s) if s.is_empty() => return Ok(None),
        serde_json::Value::String(s) => crate::spec::parse_go_duration(s).map_err(|e| {
            format!("ExpirationTTL {s:?} is not a duration ({e}); expected e.g. 1h or 24h")
        })?,
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("ExpirationTTL {n} is not a whole number of nanoseconds"))?,
        other => {
            return Err(format!(
                "ExpirationTTL must be a duration string, not {other}"
            ))
        }
    };
    if ns == 0 {
        return Ok(None);
    }
    if ns < 0 {
        return Err(format!(
            "token expiration TTL '{}' should not be negative",
            go_duration(ns)
        ));
    }
    if ns > MAX_TTL_NS {
        return Err(format!(
            "expiration time cannot be more than {} in the future (was {})",
            go_duration(MAX_TTL_NS),
            go_duration(ns)
        ));
    }
    if ns < MIN_TTL_NS {
        return Err(format!(
            "expiration time cannot be less than {} in the future (was {})",
            go_duration(MIN_TTL_NS),
            go_duration(ns)
        ));
    }
    Ok(Some(ns))
}

/// Go's `time.Duration.String()`: `10h0m0s`, `1m30s`, `1.5s`, `500ms`.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let n = ns.unsigned_abs();
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", trim_fraction(n as f64 / 1e3));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", trim_fraction(n as f64 / 1e6));
    }
    let total_secs = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let secs = if frac == 0 {
        s.to_string()
    } else {
        let f = format!("{frac:09}");
        format!("{s}.{}", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

fn trim_fraction(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations_print_as_go_does() {
        assert_eq!(go_duration(36_000 * 1_000_000_000), "10h0m0s");
        assert_eq!(go_duration(90 * 1_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(MAX_TTL_NS), "24h0m0s");
    }

    #[test]
    fn ttls_are_strings_or_nanoseconds_within_nomads_bounds() {
        assert_eq!(parse_ttl(&json!("1h")), Ok(Some(3_600_000_000_000)));
        assert_eq!(
            parse_ttl(&json!(600_000_000_000i64)),
            Ok(Some(600_000_000_000))
        );
        assert_eq!(parse_ttl(&json!("")), Ok(None));
        assert_eq!(parse_ttl(&json!(null)), Ok(None));
        assert_eq!(
            parse_ttl(&json!("48h")).unwrap_err(),
            "expiration time cannot be more than 24h0m0s in the future (was 48h0m0s)"
        );
        assert_eq!(
            parse_ttl(&json!("10s")).unwrap_err(),
            "expiration time cannot be less than 1m0s in the future (was 10s)"
        );
        assert_eq!(
            parse_ttl(&json!("-5m")).unwrap_err(),
            "token expiration TTL '-5m0s' should not be negative"
        );
    }

    #[test]
    fn secrets_are_stored_as_sha256() {
        let h = hash_secret("3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_secret(" 3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a\n"));
        assert_ne!(h, hash_secret("3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2b"));
    }

    #[test]
    fn policy_names_and_descriptions_follow_nomad() {
        assert!(check_policy("dispatch-only", "", "").is_ok());
        assert_eq!(
            check_policy("no spaces", "", "").unwrap_err(),
            "invalid name 'no spaces': a policy name is 1 to 128 letters, digits and dashes"
        );
        assert_eq!(
            check_policy("p", &"x".repeat(257), "").unwrap_err(),
            "description longer than 256"
        );
        assert!(check_policy(
            "p",
            "",
            "namespace \"default\" {\n  policy = \"admin\"\n}\n"
        )
        .unwrap_err()
        .starts_with("failed to parse rules: line 2: namespace"));
    }
}
