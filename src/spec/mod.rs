//! Job files (HCL, JSON) -> validated `model::Job`.
//!
//! `parse_job` detects the format, `hcl` and `json` parse, `validate` applies Nomad's
//! semantic rules after `Job::canonicalize`, and `read_job_file` does all of it for a path.

mod body;
mod decode;
mod duration;
mod error;
mod eval;
mod extra;
mod funcs;
mod hcl;
mod json;
mod validate;

use std::path::Path;

use indexmap::IndexMap;

use crate::model::Job;

pub use duration::parse_go_duration;
pub use error::{multi_error, ErrorKind, SpecError};
pub use validate::escapes_alloc_dir;

/// Parse a job file: API JSON when the first non-space character is `{`, else HCL2.
pub fn parse_job(src: &str, filename: &str) -> Result<Job, SpecError> {
    let trimmed = src.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        parse_json(src, filename)
    } else {
        parse_hcl(src, filename)
    }
}

/// Parse an HCL2 job file (variables take their defaults).
pub fn parse_hcl(src: &str, filename: &str) -> Result<Job, SpecError> {
    hcl::parse(src, filename, &IndexMap::new())
}

/// Parse an HCL2 job file with `-var name=value` overrides.
pub fn parse_hcl_with_vars(
    src: &str,
    filename: &str,
    vars: &IndexMap<String, String>,
) -> Result<Job, SpecError> {
    hcl::parse(src, filename, vars)
}

/// Parse Nomad API JSON, `{"Job": {...}}` or the bare job object.
pub fn parse_json(src: &str, filename: &str) -> Result<Job, SpecError> {
    json::parse(src.trim_start_matches('\u{feff}'), filename)
}

/// Nomad's semantic checks; call after `job.canonicalize()`.
pub fn validate(job: &Job) -> Result<(), SpecError> {
    validate::validate(job)
}

/// Read, parse, canonicalize and validate a job file.
pub fn read_job_file(path: &Path) -> Result<Job, SpecError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(ErrorKind::Io, &name, format!("cannot read job file: {e}")))?;
    let mut job = parse_job(&src, &name)?;
    job.canonicalize();
    validate(&job).map_err(|mut e| {
        e.file = name;
        e
    })?;
    Ok(job)
}
