//! RESERVE / UNRESERVE / CREATE / DESTROY in an ACCEPT (mesos-scheduler-api.md §5),
//! applied in order against the accepted offers' pool.
//!
//! Without operation IDs the real master gives no feedback: a failing
//! operation is dropped silently (here it is recorded in
//! `rejected_operations`). Success shows in later offers of the agent. With an ID the
//! framework hears of it either way (`feedback`).

use serde_json::{Map, Value};

use crate::allocator::AcceptCtx;
use crate::state::St;
use crate::validate::Pool;

/// Applies one reservation/volume operation; `Err` is why it was dropped.
pub fn apply(s: &mut St, op: &Value, ctx: &AcceptCtx, pool: &mut Pool) -> Result<(), String> {
    let typ = op["type"].as_str().unwrap_or("");
    match typ {
        "RESERVE" => reserve(s, list(op, "reserve", "resources")?, ctx, pool),
        "UNRESERVE" => unreserve(s, list(op, "unreserve", "resources")?, ctx, pool),
        "CREATE" => create(s, list(op, "create", "volumes")?, ctx, pool),
        "DESTROY" => destroy(s, list(op, "destroy", "volumes")?, ctx, pool),
        other => Err(format!("{other} is not a reservation operation")),
    }
}

/// The resources an applied operation produced (`OperationStatus.converted_resources`):
/// the reserved resources of a RESERVE, the volumes of a CREATE, the unreserved resources of
/// an UNRESERVE, the plain reserved disk of a DESTROY.
pub fn converted(op: &Value) -> Vec<Value> {
    let typ = op["type"].as_str().unwrap_or("");
    let items = |payload: &str, field: &str| -> Vec<Value> {
        op[payload][field].as_array().cloned().unwrap_or_default()
    };
    match typ {
        "RESERVE" => items("reserve", "resources"),
        "UNRESERVE" => items("unreserve", "resources")
            .iter()
            .map(unreserved_form)
            .collect(),
        "CREATE" => items("create", "volumes"),
        "DESTROY" => items("destroy", "volumes")
            .iter()
            .map(volume_base_form)
            .collect(),
        _ => Vec::new(),
    }
}

fn list<'a>(op: &'a Value, payload: &str, field: &str) -> Result<&'a [Value], String> {
    op[payload][field]
        .as_array()
        .map(Vec::as_slice)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("Expecting '{payload}.{field}' to be present"))
}

fn parse(res: &[Value], ctx: &AcceptCtx) -> Result<Pool, String> {
    Pool::parse(res, ctx.default_role.as_deref())
}

/// The reservation role and principal of a reserved resource, in the format
/// the framework's capabilities call for.
fn reservation_of(r: &Value, refinement: bool) -> Result<(String, Option<String>), String> {
    let name = r["name"].as_str().unwrap_or("?");
    let stacked = r["reservations"].as_array().filter(|a| !a.is_empty());
    let old_role = r["role"].as_str().filter(|x| *x != "*");
    if refinement {
        if old_role.is_some() || !r["reservation"].is_null() {
            return Err(format!(
                "Resource {name} uses the pre-refinement 'role'/'reservation' format, \
                 but the framework has RESERVATION_REFINEMENT"
            ));
        }
        let top = stacked
            .and_then(|a| a.last())
            .ok_or_else(|| format!("Resource {name} is not reserved"))?;
        if top["type"] != "DYNAMIC" {
            return Err(format!("Resource {name}: reservation type must be DYNAMIC"));
        }
        let role = top["role"]
            .as_str()
            .ok_or_else(|| format!("Resource {name}: reservation without role"))?;
        return Ok((
            role.to_string(),
            top["principal"].as_str().map(String::from),
        ));
    }
    if stacked.is_some() {
        return Err(format!(
            "Resource {name} uses 'reservations', which needs the RESERVATION_REFINEMENT capability"
        ));
    }
    let role = old_role.ok_or_else(|| format!("Resource {name} is not reserved"))?;
    let principal = r["reservation"]["principal"].as_str().map(String::from);
    Ok((role.to_string(), principal))
}

fn remove_keys(r: &Value, keys: &[&str]) -> Value {
    let mut o: Map<String, Value> = r.as_object().cloned().unwrap_or_default();
    for k in keys {
        o.remove(*k);
    }
    Value::Object(o)
}

/// A reserved resource with its (top) reservation taken off.
fn unreserved_form(r: &Value) -> Value {
    if let Some(stack) = r["reservations"].as_array().filter(|a| a.len() > 1) {
        let mut out = r.clone();
        out["reservations"] = Value::Array(stack[..stack.len() - 1].to_vec());
        return out;
    }
    remove_keys(r, &["reservations", "reservation", "role"])
}

/// A volume without its persistence and mount (the reserved disk it was made of).
fn volume_base_form(v: &Value) -> Value {
    let disk = remove_keys(&v["disk"], &["persistence", "volume"]);
    if disk.as_object().is_some_and(Map::is_empty) {
        remove_keys(v, &["disk"])
    } else {
        let mut out = v.clone();
        out["disk"] = disk;
        out
    }
}

fn persistence_id(r: &Value) -> Option<&str> {
    r["disk"]["persistence"]["id"].as_str()
}

fn framework_principal(s: &St) -> Option<String> {
    s.framework
        .as_ref()
        .and_then(|f| f.info["principal"].as_str().map(String::from))
}

fn refinement(s: &St) -> bool {
    s.framework
        .as_ref()
        .is_some_and(|f| f.has_cap("RESERVATION_REFINEMENT"))
}

/// Moves `from` to `to` in the offer pool and the agent's reserved ledger.
fn swap(s: &mut St, ctx: &AcceptCtx, pool: &mut Pool, from: &Pool, to: &Pool, ledger_from: bool) {
    pool.subtract(from);
    pool.add(to);
    let ledger = s.reserved.entry(ctx.agent.clone()).or_default();
    if ledger_from {
        ledger.subtract(&from.unallocated());
    }
    ledger.add(&to.unallocated());
}

fn not_contained(what: &Pool, pool: &Pool) -> String {
    format!(
        "{} is not contained in the offered resources {}",
        what.describe(),
        pool.describe()
    )
}

fn reserve(s: &mut St, res: &[Value], ctx: &AcceptCtx, pool: &mut Pool) -> Result<(), String> {
    if ctx.role == "*" {
        return Err("Resources allocated to role '*' cannot be reserved".into());
    }
    let refine = refinement(s);
    let principal = framework_principal(s);
    for r in res {
        let (role, by) = reservation_of(r, refine)?;
        if role != ctx.role {
            return Err(format!(
                "Reservation role '{role}' differs from the offer's allocation role '{}'",
                ctx.role
            ));
        }
        if let Some(p) = principal.as_deref() {
            if by.as_deref() != Some(p) {
                return Err(format!(
                    "Reservation principal '{}' differs from the framework's principal '{p}'",
                    by.unwrap_or_default()
                ));
            }
        }
        if persistence_id(r).is_some() {
            return Err("RESERVE cannot carry a persistent volume".into());
        }
    }
    let reserved = parse(res, ctx)?;
    let base: Vec<Value> = res.iter().map(unreserved_form).collect();
    let unreserved = parse(&base, ctx)?;
    if !pool.contains(&unreserved) {
        return Err(not_contained(&unreserved, pool));
    }
    swap(s, ctx, pool, &unreserved, &reserved, false);
    Ok(())
}

fn unreserve(s: &mut St, res: &[Value], ctx: &AcceptCtx, pool: &mut Pool) -> Result<(), String> {
    let refine = refinement(s);
    for r in res {
        reservation_of(r, refine)?;
        if let Some(id) = persistence_id(r) {
            return Err(format!(
                "Persistent volume '{id}' cannot be unreserved: DESTROY it first"
            ));
        }
        let volume = s.volumes.get(&ctx.agent).and_then(|vols| {
            vols.iter()
                .find(|(_, v)| {
                    v["name"] == r["name"]
                        && v["reservations"] == r["reservations"]
                        && v["role"] == r["role"]
                        && v["reservation"] == r["reservation"]
                })
                .map(|(id, _)| id.clone())
        });
        if let Some(id) = volume {
            return Err(format!(
                "Reserved resources are used by persistent volume '{id}': DESTROY it first"
            ));
        }
    }
    let reserved = parse(res, ctx)?;
    if !pool.contains(&reserved) {
        return Err(not_contained(&reserved, pool));
    }
    let base: Vec<Value> = res.iter().map(unreserved_form).collect();
    let unreserved = parse(&base, ctx)?;
    pool.subtract(&reserved);
    pool.add(&unreserved);
    let ledger = s.reserved.entry(ctx.agent.clone()).or_default();
    ledger.subtract(&reserved.unallocated());
    // A refined reservation popped off leaves the parent reservation.
    let still_reserved: Vec<Value> = base
        .into_iter()
        .filter(|r| r["reservations"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    ledger.add(&parse(&still_reserved, ctx)?.unallocated());
    Ok(())
}

fn check_volume(v: &Value, refine: bool) -> Result<String, String> {
    let id = persistence_id(v).ok_or("Persistent volume has no 'disk.persistence.id'")?;
    if let Some(e) = crate::validate::validate_id(id) {
        return Err(format!("Invalid persistence ID '{id}': {e}"));
    }
    if v["name"] != "disk" {
        return Err(format!("Persistent volume '{id}' is not a disk resource"));
    }
    let path = v["disk"]["volume"]["container_path"]
        .as_str()
        .ok_or_else(|| format!("Persistent volume '{id}' has no 'disk.volume.container_path'"))?;
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(format!(
            "Persistent volume '{id}': container path '{path}' must be relative"
        ));
    }
    if v["disk"]["volume"]["mode"] != "RW" {
        return Err(format!("Persistent volume '{id}' must have mode RW"));
    }
    reservation_of(v, refine)
        .map_err(|e| format!("Persistent volume '{id}' needs reserved disk: {e}"))?;
    Ok(id.to_string())
}

fn create(s: &mut St, vols: &[Value], ctx: &AcceptCtx, pool: &mut Pool) -> Result<(), String> {
    let refine = refinement(s);
    let mut ids = Vec::new();
    for v in vols {
        let id = check_volume(v, refine)?;
        let taken = s
            .volumes
            .get(&ctx.agent)
            .is_some_and(|m| m.contains_key(&id));
        if taken || ids.contains(&id) {
            return Err(format!(
                "Persistence ID '{id}' is already in use on agent {}",
                ctx.agent
            ));
        }
        ids.push(id);
    }
    let volumes = parse(vols, ctx)?;
    let base: Vec<Value> = vols.iter().map(volume_base_form).collect();
    let disk = parse(&base, ctx)?;
    if !pool.contains(&disk) {
        return Err(not_contained(&disk, pool));
    }
    swap(s, ctx, pool, &disk, &volumes, true);
    let on_agent = s.volumes.entry(ctx.agent.clone()).or_default();
    for (id, v) in ids.into_iter().zip(vols) {
        on_agent.insert(id, v.clone());
    }
    Ok(())
}

/// A live task on the agent mounting the volume, if any.
fn volume_user(s: &St, agent: &str, id: &str) -> Option<String> {
    s.tasks
        .iter()
        .filter(|(_, t)| t.agent_id == agent && !t.released)
        .find(|(_, t)| {
            t.resources
                .to_json(None)
                .iter()
                .any(|r| persistence_id(r) == Some(id))
        })
        .map(|(tid, _)| tid.clone())
}

fn destroy(s: &mut St, vols: &[Value], ctx: &AcceptCtx, pool: &mut Pool) -> Result<(), String> {
    let mut ids = Vec::new();
    for v in vols {
        let id = persistence_id(v).ok_or("DESTROY of a resource that is not a volume")?;
        let exists = s
            .volumes
            .get(&ctx.agent)
            .is_some_and(|m| m.contains_key(id));
        if !exists {
            return Err(format!("Persistent volume '{id}' does not exist"));
        }
        if let Some(task) = volume_user(s, &ctx.agent, id) {
            return Err(format!(
                "Persistent volume '{id}' is in use by task '{task}'"
            ));
        }
        ids.push(id.to_string());
    }
    let volumes = parse(vols, ctx)?;
    if !pool.contains(&volumes) {
        return Err(not_contained(&volumes, pool));
    }
    let base: Vec<Value> = vols.iter().map(volume_base_form).collect();
    let disk = parse(&base, ctx)?;
    swap(s, ctx, pool, &volumes, &disk, true);
    if let Some(m) = s.volumes.get_mut(&ctx.agent) {
        for id in ids {
            m.remove(&id);
        }
    }
    Ok(())
}
