//! What one token may do: its policies' rules merged (Nomad's rules: the union of the
//! policies, `deny` winning within a scope; for coarse rules the highest level, `deny`
//! winning), asked one question at a time by the API's edge.
//!
//! How a `job` rule and the namespace combine for a job: the most specific matching job
//! rule(s) decide first (a `deny` there denies the job whatever the namespace says; a
//! capability there grants it), otherwise the namespace's capabilities apply.

use std::collections::BTreeSet;

use super::policy::{job_specificity, namespace_specificity, Level, Rules};

/// The only namespace Dispatch has.
pub const NAMESPACE: &str = "default";

#[derive(Debug, Clone, Default)]
struct Scope {
    caps: BTreeSet<String>,
    deny: bool,
}

impl Scope {
    fn add(&mut self, caps: &[String]) {
        for c in caps {
            if c == "deny" {
                self.deny = true;
            } else {
                self.caps.insert(c.clone());
            }
        }
    }

    fn has(&self, cap: &str) -> bool {
        !self.deny && self.caps.contains(cap)
    }
}

/// A token's rights.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    management: bool,
    namespace: Scope,
    /// Job patterns and what each grants (rules with the same pattern merged).
    jobs: Vec<(String, Scope)>,
    agent: Option<Level>,
    operator: Option<Level>,
    node: Option<Level>,
}

fn merge_level(current: Option<Level>, new: Level) -> Option<Level> {
    Some(match current {
        Some(Level::Deny) => Level::Deny,
        _ if new == Level::Deny => Level::Deny,
        Some(old) => old.max(new),
        None => new,
    })
}

impl Grants {
    /// Everything (management tokens, and every request when ACLs are off).
    pub fn management() -> Grants {
        Grants {
            management: true,
            ..Grants::default()
        }
    }

    /// The union of `policies` (policies that no longer exist are left out by the caller).
    pub fn of<'a>(policies: impl IntoIterator<Item = &'a Rules>) -> Grants {
        let mut g = Grants::default();
        for rules in policies {
            // the namespace rule that fits "default" best, per policy
            if let Some(best) = rules
                .namespaces
                .iter()
                .filter_map(|r| namespace_specificity(&r.name, NAMESPACE).map(|s| (s, r)))
                .max_by_key(|(s, _)| *s)
                .map(|(_, r)| r)
            {
                g.namespace.add(&best.capabilities);
            }
            for rule in &rules.jobs {
                match g.jobs.iter_mut().find(|(p, _)| *p == rule.name) {
                    Some((_, scope)) => scope.add(&rule.capabilities),
                    None => {
                        let mut scope = Scope::default();
                        scope.add(&rule.capabilities);
                        g.jobs.push((rule.name.clone(), scope));
                    }
                }
            }
            if let Some(r) = rules.agent {
                g.agent = merge_level(g.agent, r.policy);
            }
            if let Some(r) = rules.operator {
                g.operator = merge_level(g.operator, r.policy);
            }
            if let Some(r) = rules.node {
                g.node = merge_level(g.node, r.policy);
            }
        }
        g
    }

    pub fn is_management(&self) -> bool {
        self.management
    }

    /// `cap` in the namespace as a whole (lists, parse, search).
    pub fn namespace(&self, cap: &str) -> bool {
        self.management || self.namespace.has(cap)
    }

    /// `cap` on job `job_id` (a parent or a dispatched child).
    pub fn job(&self, job_id: &str, cap: &str) -> bool {
        if self.management {
            return true;
        }
        let matching: Vec<(usize, &Scope)> = self
            .jobs
            .iter()
            .filter_map(|(p, s)| job_specificity(p, job_id).map(|n| (n, s)))
            .collect();
        if let Some(best) = matching.iter().map(|(n, _)| *n).max() {
            let top: Vec<&Scope> = matching
                .iter()
                .filter(|(n, _)| *n == best)
                .map(|(_, s)| *s)
                .collect();
            if top.iter().any(|s| s.deny) {
                return false;
            }
            if top.iter().any(|s| s.caps.contains(cap)) {
                return true;
            }
        }
        self.namespace.has(cap)
    }

    /// `cap` in the namespace, or on at least one job (a list then shows those jobs only).
    pub fn some_job(&self, cap: &str) -> bool {
        self.namespace(cap) || self.jobs.iter().any(|(_, s)| s.has(cap))
    }

    pub fn agent(&self, want: Level) -> bool {
        self.management || self.agent.is_some_and(|l| l.grants(want))
    }

    pub fn operator(&self, want: Level) -> bool {
        self.management || self.operator.is_some_and(|l| l.grants(want))
    }

    pub fn node(&self, want: Level) -> bool {
        self.management || self.node.is_some_and(|l| l.grants(want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::policy::parse;

    fn grants(policies: &[&str]) -> Grants {
        let rules: Vec<Rules> = policies.iter().map(|p| parse(p).unwrap()).collect();
        Grants::of(&rules)
    }

    #[test]
    fn a_dispatch_only_token_dispatches_one_job_and_reads_its_children() {
        let g = grants(&[
            "job \"transcode\" {\n  capabilities = [\"dispatch-job\", \"read-job\"]\n}\n",
        ]);
        assert!(g.job("transcode", "dispatch-job"));
        assert!(g.job("transcode/dispatch-1-abcd", "read-job"));
        assert!(!g.job("gif", "dispatch-job"));
        assert!(!g.job("transcode", "submit-job"));
        assert!(!g.namespace("list-jobs"));
        assert!(!g.agent(Level::Read));
        assert!(!g.is_management());
    }

    #[test]
    fn deny_wins_within_a_scope_and_job_rules_come_before_the_namespace() {
        let g = grants(&[
            "namespace \"default\" {\n  policy = \"write\"\n}\n",
            "job \"secret*\" {\n  policy = \"deny\"\n}\n",
        ]);
        assert!(g.job("transcode", "submit-job"));
        assert!(!g.job("secret-x", "read-job"));
        let g = grants(&[
            "namespace \"*\" {\n  policy = \"read\"\n}\nnamespace \"default\" {\n  policy = \"deny\"\n}\n",
            "job \"transcode\" {\n  capabilities = [\"dispatch-job\"]\n}\n",
        ]);
        assert!(
            !g.namespace("read-job"),
            "exact namespace rule wins over the glob"
        );
        assert!(g.job("transcode", "dispatch-job"));
        let g = grants(&[
            "namespace \"default\" {\n  policy = \"read\"\n}\n",
            "namespace \"default\" {\n  policy = \"deny\"\n}\n",
        ]);
        assert!(!g.namespace("read-job"), "deny in another policy wins");
        // the most specific job rule decides
        let g = grants(&["job \"t*\" {\n  policy = \"deny\"\n}\njob \"transcode\" {\n  capabilities = [\"read-job\"]\n}\n"]);
        assert!(g.job("transcode", "read-job"));
        assert!(!g.job("tiles", "read-job"));
    }

    #[test]
    fn coarse_levels_take_the_highest_and_deny_wins() {
        let g = grants(&[
            "agent {\n  policy = \"read\"\n}\n",
            "agent {\n  policy = \"write\"\n}\n",
        ]);
        assert!(g.agent(Level::Write));
        let g = grants(&[
            "agent {\n  policy = \"write\"\n}\n",
            "agent {\n  policy = \"deny\"\n}\n",
        ]);
        assert!(!g.agent(Level::Read));
        let g = grants(&["operator {\n  policy = \"read\"\n}\n"]);
        assert!(g.operator(Level::Read) && !g.operator(Level::Write));
        assert!(Grants::management().job("anything", "submit-job"));
    }
}
