//! Identifiers derived from a dispatch: Mesos task IDs, allocation keys and Nomad-style
//! allocation IDs.
//!
//! Everything here is a pure function of its inputs so that a restarted scheduler derives the
//! same IDs again (reconciliation depends on it).

/// Longest Mesos ID (`NAME_MAX`).
pub const MAX_ID_BYTES: usize = 255;

/// Mesos task ID for one attempt of one task of one group instance of a dispatch:
/// `<dispatch id with / as .>.<group>.<instance>.<task>.<attempt>`.
///
/// Always a valid Mesos ID: non-empty, at most 255 bytes, no `/`, `\` or control characters,
/// never `.` or `..`. A component with characters outside `[A-Za-z0-9._:@+=,~-]` has them
/// replaced by `_` and gets a short hash of the original appended, so distinct names stay
/// distinct. IDs longer than 255 bytes keep a prefix plus a hash of the whole.
pub fn task_id(dispatch_id: &str, group: &str, instance: u32, task: &str, attempt: u32) -> String {
    let id = format!(
        "{}.{}.{}.{}.{}",
        component(&dispatch_id.replace('/', ".")),
        component(group),
        instance,
        component(task),
        attempt
    );
    fit(id)
}

/// Mesos executor ID of one group instance of a dispatch (the DEFAULT executor its tasks are
/// launched in as a task group): `<dispatch id with / as .>.<group>.<instance>.executor`.
pub fn executor_id(dispatch_id: &str, group: &str, instance: u32) -> String {
    fit(format!(
        "{}.{}.{}.executor",
        component(&dispatch_id.replace('/', ".")),
        component(group),
        instance
    ))
}

/// Persistence ID of the Mesos persistent volume holding a group's sticky disk: one per
/// job and group, shared by all its dispatches (`dispatch.<job>.<group>.volume`).
pub fn volume_id(job_id: &str, group: &str) -> String {
    fit(format!(
        "{VOLUME_PREFIX}{}.{}.volume",
        component(&job_id.replace('/', ".")),
        component(group)
    ))
}

/// Every persistence ID Dispatch creates starts with this.
pub const VOLUME_PREFIX: &str = "dispatch.";

/// Key of one group instance of a dispatch; also Nomad's allocation name
/// (`<job>.<group>[<index>]`, `NOMAD_ALLOC_NAME`).
pub fn alloc_key(dispatch_id: &str, group: &str, instance: u32) -> String {
    format!("{dispatch_id}.{group}[{instance}]")
}

/// A stable UUID-shaped allocation ID (`NOMAD_ALLOC_ID`) derived from the allocation key
/// (version nibble 8: "custom", RFC 9562).
pub fn alloc_id(alloc_key: &str) -> String {
    let mut h = fnv1a128(alloc_key.as_bytes());
    h &= !(0xF_u128 << 76);
    h |= 0x8_u128 << 76; // version 8
    h &= !(0x3_u128 << 62);
    h |= 0x2_u128 << 62; // RFC variant
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// First 8 characters of the allocation ID (`NOMAD_SHORT_ALLOC_ID`).
pub fn short_alloc_id(alloc_id: &str) -> String {
    alloc_id.chars().take(8).collect()
}

/// 128-bit FNV-1a: small, stable across releases and platforms (unlike `DefaultHasher`).
pub(crate) fn fnv1a128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for b in bytes {
        h ^= *b as u128;
        h = h.wrapping_mul(PRIME);
    }
    h
}

fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._:@+=,~-".contains(c)
}

/// One ID component with unsafe characters replaced (and a hash appended when any was).
fn component(s: &str) -> String {
    if !s.is_empty() && s.chars().all(safe_char) {
        return s.to_string();
    }
    let mut out: String = s
        .chars()
        .map(|c| if safe_char(c) { c } else { '_' })
        .collect();
    let h = fnv1a128(s.as_bytes());
    out.push_str(&format!("-{:06x}", (h >> 104) as u32));
    out
}

/// Cut an over-long ID to a prefix plus a hash of the full ID.
fn fit(id: String) -> String {
    if id.len() <= MAX_ID_BYTES {
        return id;
    }
    let hash = format!("{:016x}", (fnv1a128(id.as_bytes()) >> 64) as u64);
    let keep = MAX_ID_BYTES - hash.len() - 1;
    // Components are ASCII after `component`, so any byte index is a char boundary.
    format!("{}-{}", &id[..keep], hash)
}

/// Whether `id` is acceptable to Mesos as an ID.
pub fn is_valid_mesos_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id != "."
        && id != ".."
        && !id.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_readable_and_valid() {
        let id = task_id("transcode/dispatch-1700000000-1a2b3c4d", "tc", 0, "tc", 1);
        assert_eq!(id, "transcode.dispatch-1700000000-1a2b3c4d.tc.0.tc.1");
        assert!(is_valid_mesos_id(&id));
        assert_ne!(
            id,
            task_id("transcode/dispatch-1700000000-1a2b3c4d", "tc", 0, "tc", 2)
        );
    }

    #[test]
    fn unsafe_names_are_replaced_and_kept_distinct() {
        let a = task_id("j/dispatch-1-aaaaaaaa", "▶️", 0, "t x", 1);
        let b = task_id("j/dispatch-1-aaaaaaaa", "⏸️", 0, "t x", 1);
        assert!(is_valid_mesos_id(&a), "{a}");
        assert!(a.is_ascii());
        assert_ne!(a, b);
        let c = task_id("j/dispatch-1-aaaaaaaa", "g", 0, "back\\slash\n", 1);
        assert!(is_valid_mesos_id(&c), "{c}");
    }

    #[test]
    fn long_ids_are_cut_with_a_hash() {
        let long = "x".repeat(300);
        let a = task_id(&format!("{long}/dispatch-1-aaaaaaaa"), "g", 0, "t", 1);
        let b = task_id(&format!("{long}/dispatch-1-aaaaaaaa"), "g", 0, "t", 2);
        assert_eq!(a.len(), MAX_ID_BYTES);
        assert!(is_valid_mesos_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn alloc_ids_are_stable_uuids() {
        let key = alloc_key("transcode/dispatch-1700000000-1a2b3c4d", "tc", 0);
        assert_eq!(key, "transcode/dispatch-1700000000-1a2b3c4d.tc[0]");
        let id = alloc_id(&key);
        assert_eq!(id, alloc_id(&key));
        assert_ne!(
            id,
            alloc_id(&alloc_key(
                "transcode/dispatch-1700000000-1a2b3c4d",
                "tc",
                1
            ))
        );
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(short_alloc_id(&id), &id[..8]);
    }
}
