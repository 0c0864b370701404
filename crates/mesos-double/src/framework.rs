//! The framework's `FrameworkInfo` and suppressed roles over its life: checked at SUBSCRIBE,
//! changed by UPDATE_FRAMEWORK (mesos-scheduler-api.md §1.6, §2.1, §4.7; Mesos
//! `docs/scheduler-http-api.md` "UPDATE_FRAMEWORK"):
//!
//! * `framework_info.id` must equal the call's `framework_id`; `user`, `principal` and
//!   `checkpoint` cannot change (400 "Updating 'FrameworkInfo.<field>' is unsupported");
//!   `suppressed_roles` must be a subset of the new roles (400; for SUBSCRIBE an ERROR
//!   event). No partial update: either all of it applies or none.
//! * applied at once, answered 200 with an empty body, on the same stream (no new
//!   SUBSCRIBED, no re-registration): offers to roles removed by the call are rescinded,
//!   offers to suppressed roles are kept, roles leaving the suppressed set have their
//!   filters cleared, tasks are not affected; name, capabilities, failover timeout, ... are
//!   simply taken.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::state::St;

/// The suppressed roles a SUBSCRIBE or UPDATE_FRAMEWORK asks for, checked against `info`'s
/// roles; `Err` says why they are refused.
pub(crate) fn suppressed_roles(info: &Value, call: &Value) -> Result<BTreeSet<String>, String> {
    let roles = roles_of(info);
    let suppressed: BTreeSet<String> = call["suppressed_roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let unknown: Vec<&String> = suppressed.iter().filter(|r| !roles.contains(r)).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Suppressed roles {unknown:?} are not contained in the set of roles {roles:?}"
        ));
    }
    Ok(suppressed)
}

fn roles_of(info: &Value) -> Vec<String> {
    let roles: Vec<String> = info["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        vec![info["role"].as_str().unwrap_or("*").to_string()]
    } else {
        roles
    }
}

/// UPDATE_FRAMEWORK; `Err` is the 400's message.
pub(crate) fn update(s: &mut St, fid: &str, call: &Value) -> Result<(), String> {
    let v = |m: &str| format!("Failed to validate scheduler::Call: {m}");
    let info = call["framework_info"].clone();
    if info["id"]["value"].as_str() != Some(fid) {
        return Err(v(
            "'framework_id' differs from 'update_framework.framework_info.id'",
        ));
    }
    let Some(fw) = s.framework.as_ref() else {
        return Err("Framework cannot be found".into());
    };
    for field in ["user", "principal", "checkpoint"] {
        let old = &fw.info[field];
        let new = &info[field];
        // `checkpoint` defaults to false.
        let same = old == new
            || (field == "checkpoint"
                && old.as_bool().unwrap_or(false) == new.as_bool().unwrap_or(false));
        if !same {
            return Err(format!(
                "Updating 'FrameworkInfo.{field}' is unsupported; attempted to update from {old} to {new}"
            ));
        }
    }
    let suppressed = suppressed_roles(&info, call)?;
    let old_roles = fw.roles();
    let old_suppressed = fw.suppressed.clone();
    let new_roles = roles_of(&info);
    if let Some(fw) = s.framework.as_mut() {
        fw.info = info;
        fw.suppressed = suppressed.clone();
    }
    let removed: Vec<String> = old_roles
        .into_iter()
        .filter(|r| !new_roles.contains(r))
        .collect();
    s.rescind_where(|o| removed.contains(&o.role));
    // Filters of removed roles go, and so do those of roles no longer suppressed.
    let revived = |role: &String| old_suppressed.contains(role) && !suppressed.contains(role);
    s.filters
        .retain(|(_, role), _| !removed.contains(role) && !revived(role));
    s.framework_updates += 1;
    s.allocate_all();
    Ok(())
}
