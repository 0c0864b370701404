//! ACL tokens and policies in the state: what the writer keeps (tokens by accessor and by
//! secret hash, policies by name, the bootstrap index) and how ACL commands apply. Each
//! token's rights (`Grants`) are computed when tokens or policies change, never per
//! request: resolving a request's token is one hash and one map lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::acl::token::{check_policy, hash_secret};
use crate::acl::{Grants, Policy, Token};
use crate::store::Change;

use super::error::StateError;

/// Setting key of the bootstrap's index (`ACL bootstrap already done (reset index: N)`).
pub const BOOTSTRAP_INDEX_SETTING: &str = "acl.bootstrap_index";

/// The name of the policy requests without a (known) token get.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, Default)]
pub struct AclState {
    tokens: BTreeMap<String, Token>,
    /// Secret hash -> accessor ID.
    by_hash: HashMap<String, String>,
    policies: BTreeMap<String, Policy>,
    /// Accessor ID -> the token's rights (its policies as they are now).
    grants: HashMap<String, Arc<Grants>>,
    anonymous: Arc<Grants>,
    bootstrap_index: Option<u64>,
}

/// Who a request is, once its token is resolved.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A known, unexpired token.
    Token { token: Token, grants: Arc<Grants> },
    /// No token, or one that matches none: what the `anonymous` policy allows.
    Anonymous(Arc<Grants>),
    /// A known token past its expiration time.
    Expired,
}

/// An ACL change someone asks for.
#[derive(Debug)]
pub enum AclCommand {
    /// `POST /v1/acl/bootstrap`: the first management token (refused once done).
    Bootstrap {
        secret: String,
    },
    /// `-acl-bootstrap-token-file`: make sure a management token with this secret exists
    /// (a token made from an earlier version of the file is replaced).
    BootstrapFromFile {
        secret: String,
    },
    UpsertPolicy {
        name: String,
        description: String,
        rules: String,
    },
    DeletePolicy {
        name: String,
    },
    CreateToken {
        name: String,
        management: bool,
        policies: Vec<String>,
        /// Nanoseconds, already within Nomad's bounds.
        ttl: Option<i64>,
    },
    DeleteToken {
        accessor: String,
    },
}

/// What an ACL command did.
#[derive(Debug, Clone, PartialEq)]
pub enum AclReply {
    /// A token made, with its secret (shown once).
    Token {
        token: Token,
        secret: String,
    },
    /// Nothing changed (the bootstrap file's token exists already).
    Unchanged,
    Written {
        index: u64,
    },
}

impl AclState {
    /// Resolve the secret a request carries (`None`: no token given).
    pub fn caller(&self, secret: Option<&str>, now: i64) -> Caller {
        let Some(secret) = secret.map(str::trim).filter(|s| !s.is_empty()) else {
            return Caller::Anonymous(self.anonymous.clone());
        };
        let hash = hash_secret(secret);
        let Some(token) = self.by_hash.get(&hash).and_then(|a| self.tokens.get(a)) else {
            return Caller::Anonymous(self.anonymous.clone());
        };
        if token.expired(now) {
            return Caller::Expired;
        }
        let grants = self
            .grants
            .get(&token.accessor_id)
            .cloned()
            .unwrap_or_default();
        Caller::Token {
            token: token.clone(),
            grants,
        }
    }

    pub fn token(&self, accessor: &str) -> Option<&Token> {
        self.tokens.get(accessor)
    }

    pub fn tokens(&self) -> impl Iterator<Item = &Token> + '_ {
        self.tokens.values()
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    pub fn policies(&self) -> impl Iterator<Item = &Policy> + '_ {
        self.policies.values()
    }

    pub fn bootstrap_index(&self) -> Option<u64> {
        self.bootstrap_index
    }

    /// Rebuild after loading (start-up).
    pub fn load(
        tokens: Vec<Token>,
        policies: Vec<Policy>,
        bootstrap_index: Option<u64>,
    ) -> AclState {
        let mut acl = AclState {
            bootstrap_index,
            ..AclState::default()
        };
        for p in policies {
            acl.policies.insert(p.name.clone(), p.reparse());
        }
        for t in tokens {
            acl.by_hash
                .insert(t.secret_hash.clone(), t.accessor_id.clone());
            acl.tokens.insert(t.accessor_id.clone(), t);
        }
        acl.refresh_grants();
        acl
    }

    /// Follow an ACL change another server committed (a standby replaying the leader's
    /// batches), so that a token made through any server works against every server.
    /// Changes that are not about ACLs are ignored; a setting is the bootstrap index only
    /// when its key says so.
    pub fn follow(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::PutAclToken { json, .. } => {
                let token: Token =
                    serde_json::from_str(json).map_err(|e| format!("ACL token: {e}"))?;
                let mut ignored = Vec::new();
                if let Some(old) = self.tokens.get(&token.accessor_id) {
                    let old_hash = old.secret_hash.clone();
                    self.by_hash.remove(&old_hash);
                }
                self.put_token(token, &mut ignored);
            }
            Change::DeleteAclToken { accessor } => self.remove_token(accessor, &mut Vec::new()),
            Change::PutAclPolicy { name, json } => {
                let policy: Policy =
                    serde_json::from_str(json).map_err(|e| format!("ACL policy: {e}"))?;
                self.policies.insert(name.clone(), policy.reparse());
                self.refresh_grants();
            }
            Change::DeleteAclPolicy { name } if self.policies.remove(name).is_some() => {
                self.refresh_grants();
            }
            Change::PutSetting { key, value } if key == BOOTSTRAP_INDEX_SETTING => {
                self.bootstrap_index = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn grants_of(&self, token: &Token) -> Grants {
        if token.management {
            return Grants::management();
        }
        Grants::of(
            token
                .policies
                .iter()
                .filter_map(|p| self.policies.get(p))
                .map(|p| &p.parsed),
        )
    }

    fn refresh_grants(&mut self) {
        let grants: HashMap<String, Arc<Grants>> = self
            .tokens
            .values()
            .map(|t| (t.accessor_id.clone(), Arc::new(self.grants_of(t))))
            .collect();
        self.grants = grants;
        self.anonymous = Arc::new(match self.policies.get(ANONYMOUS) {
            Some(p) => Grants::of([&p.parsed]),
            None => Grants::default(),
        });
    }

    fn put_token(&mut self, token: Token, changes: &mut Vec<Change>) {
        changes.push(Change::PutAclToken {
            accessor: token.accessor_id.clone(),
            json: serde_json::to_string(&token).unwrap_or_default(),
        });
        self.grants
            .insert(token.accessor_id.clone(), Arc::new(self.grants_of(&token)));
        self.by_hash
            .insert(token.secret_hash.clone(), token.accessor_id.clone());
        self.tokens.insert(token.accessor_id.clone(), token);
    }

    fn remove_token(&mut self, accessor: &str, changes: &mut Vec<Change>) {
        if let Some(t) = self.tokens.remove(accessor) {
            self.by_hash.remove(&t.secret_hash);
            self.grants.remove(accessor);
            changes.push(Change::DeleteAclToken {
                accessor: accessor.to_string(),
            });
        }
    }
}

/// The pieces of the writer an ACL command needs.
pub struct Step<'a> {
    pub now: i64,
    pub next_index: &'a mut dyn FnMut() -> u64,
    pub uuid: &'a mut dyn FnMut() -> uuid::Uuid,
    pub changes: &'a mut Vec<Change>,
}

fn new_token(
    step: &mut Step<'_>,
    secret: &str,
    name: &str,
    management: bool,
    policies: Vec<String>,
    ttl: Option<i64>,
    index: u64,
) -> Token {
    Token {
        accessor_id: (step.uuid)().to_string(),
        secret_hash: hash_secret(secret),
        name: name.to_string(),
        management,
        policies,
        create_time: step.now,
        expiration_time: ttl.map(|t| step.now.saturating_add(t)),
        expiration_ttl: ttl,
        create_index: index,
        modify_index: index,
        from_file: false,
    }
}

/// Apply one ACL command. Everything is checked before anything changes.
pub fn apply(
    acl: &mut AclState,
    command: AclCommand,
    step: &mut Step<'_>,
) -> Result<AclReply, StateError> {
    match command {
        AclCommand::Bootstrap { secret } => {
            if let Some(index) = acl.bootstrap_index {
                return Err(StateError::AclBootstrapDone(index));
            }
            let index = (step.next_index)();
            let token = new_token(
                step,
                &secret,
                "Bootstrap Token",
                true,
                Vec::new(),
                None,
                index,
            );
            acl.bootstrap_index = Some(index);
            step.changes.push(Change::PutSetting {
                key: BOOTSTRAP_INDEX_SETTING.into(),
                value: index.to_string(),
            });
            acl.put_token(token.clone(), step.changes);
            Ok(AclReply::Token { token, secret })
        }
        AclCommand::BootstrapFromFile { secret } => {
            let hash = hash_secret(&secret);
            let current = acl
                .by_hash
                .get(&hash)
                .and_then(|a| acl.tokens.get(a))
                .is_some_and(|t| t.management && t.from_file && !t.expired(step.now));
            if current {
                return Ok(AclReply::Unchanged);
            }
            let index = (step.next_index)();
            let old: Vec<String> = acl
                .tokens
                .values()
                .filter(|t| t.from_file || t.secret_hash == hash)
                .map(|t| t.accessor_id.clone())
                .collect();
            for accessor in old {
                acl.remove_token(&accessor, step.changes);
            }
            let mut token = new_token(
                step,
                &secret,
                "Bootstrap Token",
                true,
                Vec::new(),
                None,
                index,
            );
            token.from_file = true;
            if acl.bootstrap_index.is_none() {
                acl.bootstrap_index = Some(index);
                step.changes.push(Change::PutSetting {
                    key: BOOTSTRAP_INDEX_SETTING.into(),
                    value: index.to_string(),
                });
            }
            acl.put_token(token.clone(), step.changes);
            Ok(AclReply::Token { token, secret })
        }
        AclCommand::UpsertPolicy {
            name,
            description,
            rules,
        } => {
            let parsed = check_policy(&name, &description, &rules).map_err(StateError::Acl)?;
            let index = (step.next_index)();
            let create_index = acl.policies.get(&name).map_or(index, |p| p.create_index);
            let policy = Policy {
                name: name.clone(),
                description,
                rules,
                parsed,
                create_index,
                modify_index: index,
            };
            step.changes.push(Change::PutAclPolicy {
                name: name.clone(),
                json: serde_json::to_string(&policy).unwrap_or_default(),
            });
            acl.policies.insert(name, policy);
            acl.refresh_grants();
            Ok(AclReply::Written { index })
        }
        AclCommand::DeletePolicy { name } => {
            let index = (step.next_index)();
            if acl.policies.remove(&name).is_some() {
                step.changes.push(Change::DeleteAclPolicy { name });
                acl.refresh_grants();
            }
            Ok(AclReply::Written { index })
        }
        AclCommand::CreateToken {
            name,
            management,
            policies,
            ttl,
        } => {
            if name.chars().count() > 256 {
                return Err(StateError::Acl(
                    "token 0 invalid: token name too long".into(),
                ));
            }
            if management && !policies.is_empty() {
                return Err(StateError::Acl(
                    "token 0 invalid: management token cannot be associated with policies or roles"
                        .into(),
                ));
            }
            if !management && policies.is_empty() {
                return Err(StateError::Acl(
                    "token 0 invalid: client token missing policies or roles".into(),
                ));
            }
            if let Some(missing) = policies.iter().find(|p| !acl.policies.contains_key(*p)) {
                return Err(StateError::Acl(format!(
                    "token 0 invalid: policy {missing:?} does not exist; create it first \
                     (dispatch acl policy apply {missing} FILE)"
                )));
            }
            let secret = (step.uuid)().to_string();
            let index = (step.next_index)();
            let token = new_token(step, &secret, &name, management, policies, ttl, index);
            acl.put_token(token.clone(), step.changes);
            Ok(AclReply::Token { token, secret })
        }
        AclCommand::DeleteToken { accessor } => {
            if !acl.tokens.contains_key(&accessor) {
                return Err(StateError::Acl(format!(
                    "Cannot delete nonexistent tokens: {accessor}"
                )));
            }
            let index = (step.next_index)();
            acl.remove_token(&accessor, step.changes);
            Ok(AclReply::Written { index })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Harness {
        acl: AclState,
        index: u64,
        changes: Vec<Change>,
        now: i64,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                acl: AclState::default(),
                index: 0,
                changes: Vec::new(),
                now: 1_000,
            }
        }

        fn run(&mut self, command: AclCommand) -> Result<AclReply, StateError> {
            let mut index = self.index;
            let mut next = || {
                index += 1;
                index
            };
            let mut uuid = uuid::Uuid::new_v4;
            let mut step = Step {
                now: self.now,
                next_index: &mut next,
                uuid: &mut uuid,
                changes: &mut self.changes,
            };
            let r = apply(&mut self.acl, command, &mut step);
            self.index = index;
            r
        }
    }

    #[test]
    fn bootstrap_once_then_tokens_resolve_by_secret_with_their_policies() {
        let mut h = Harness::new();
        let AclReply::Token { token, secret } = h
            .run(AclCommand::Bootstrap {
                secret: "s-boot".into(),
            })
            .unwrap()
        else {
            panic!()
        };
        assert!(token.management);
        assert_eq!(token.secret_hash, hash_secret("s-boot"));
        let again = h
            .run(AclCommand::Bootstrap { secret: "x".into() })
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            format!(
                "ACL bootstrap already done (reset index: {})",
                token.create_index
            )
        );
        assert!(
            matches!(h.acl.caller(Some(&secret), h.now), Caller::Token { grants, .. } if grants.is_management())
        );

        h.run(AclCommand::UpsertPolicy {
            name: "dispatch-transcode".into(),
            description: "".into(),
            rules: "job \"transcode\" {\n  capabilities = [\"dispatch-job\"]\n}\n".into(),
        })
        .unwrap();
        let AclReply::Token { secret, token } = h
            .run(AclCommand::CreateToken {
                name: "app".into(),
                management: false,
                policies: vec!["dispatch-transcode".into()],
                ttl: Some(5_000),
            })
            .unwrap()
        else {
            panic!()
        };
        let Caller::Token { grants, .. } = h.acl.caller(Some(&secret), h.now) else {
            panic!()
        };
        assert!(grants.job("transcode", "dispatch-job") && !grants.job("gif", "dispatch-job"));
        // a policy change applies to existing tokens at once
        h.run(AclCommand::DeletePolicy {
            name: "dispatch-transcode".into(),
        })
        .unwrap();
        let Caller::Token { grants, .. } = h.acl.caller(Some(&secret), h.now) else {
            panic!()
        };
        assert!(!grants.job("transcode", "dispatch-job"));
        // expiry
        h.now += 5_000;
        assert!(matches!(
            h.acl.caller(Some(&secret), h.now),
            Caller::Expired
        ));
        // unknown and missing secrets are anonymous
        assert!(matches!(
            h.acl.caller(Some("nope"), h.now),
            Caller::Anonymous(_)
        ));
        assert!(matches!(h.acl.caller(None, h.now), Caller::Anonymous(_)));
        // the secret itself is stored nowhere
        let stored = format!("{:?}", h.changes);
        assert!(!stored.contains(&secret) && !stored.contains("s-boot"));
        h.run(AclCommand::DeleteToken {
            accessor: token.accessor_id.clone(),
        })
        .unwrap();
        assert!(h.acl.token(&token.accessor_id).is_none());
    }

    #[test]
    fn bad_tokens_are_refused_with_nomads_messages_and_nothing_changes() {
        let mut h = Harness::new();
        let cases = [
            (
                vec![],
                false,
                "token 0 invalid: client token missing policies or roles",
            ),
            (
                vec!["p".to_string()],
                true,
                "token 0 invalid: management token cannot be associated with policies or roles",
            ),
            (
                vec!["missing".to_string()],
                false,
                "token 0 invalid: policy \"missing\" does not exist",
            ),
        ];
        for (policies, management, want) in cases {
            let e = h
                .run(AclCommand::CreateToken {
                    name: "t".into(),
                    management,
                    policies,
                    ttl: None,
                })
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{e}");
        }
        let e = h
            .run(AclCommand::UpsertPolicy {
                name: "p".into(),
                description: "".into(),
                rules: "namespace \"default\" {\n  capabilities = [\"fly\"]\n}\n".into(),
            })
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("failed to parse rules: line 2:"), "{e}");
        assert!(h.changes.is_empty());
        assert_eq!(h.index, 0);
    }

    #[test]
    fn the_bootstrap_file_token_is_made_once_and_replaced_when_the_file_changes() {
        let mut h = Harness::new();
        assert!(matches!(
            h.run(AclCommand::BootstrapFromFile {
                secret: "one".into()
            })
            .unwrap(),
            AclReply::Token { .. }
        ));
        assert_eq!(
            h.run(AclCommand::BootstrapFromFile {
                secret: "one".into()
            })
            .unwrap(),
            AclReply::Unchanged
        );
        h.run(AclCommand::BootstrapFromFile {
            secret: "two".into(),
        })
        .unwrap();
        assert!(matches!(
            h.acl.caller(Some("one"), h.now),
            Caller::Anonymous(_)
        ));
        assert!(matches!(
            h.acl.caller(Some("two"), h.now),
            Caller::Token { .. }
        ));
        assert_eq!(h.acl.tokens().count(), 1);
        // the bootstrap is done: the API's bootstrap is refused
        assert!(h.run(AclCommand::Bootstrap { secret: "x".into() }).is_err());
    }
}
