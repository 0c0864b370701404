//! Job files (HCL, JSON) -> validated `model::Job`.
//!
//! `parse_job` detects the format, `hcl` and `json` parse (`hcl1` translates the HCL1 files
//! Nomad accepted before HCL2, with warnings), `validate` applies Nomad's semantic rules after
//! `Job::canonicalize`, and `read_job_file` does all of it for a path.

mod body;
mod decode;
mod duration;
mod error;
mod eval;
mod extra;
mod funcs;
mod hcl;
mod hcl1;
mod json;
mod validate;

use std::path::Path;

use indexmap::IndexMap;

use crate::model::Job;

pub use duration::parse_go_duration;
pub use error::{multi_error, ErrorKind, SpecError};
pub use validate::escapes_alloc_dir;

/// A parsed job file and what the parser warns about (HCL1 constructs it accepted).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub job: Job,
    /// `file:line: HCL1: ...`, one per construct; empty for HCL2 and JSON.
    pub warnings: Vec<String>,
}

impl Parsed {
    fn clean(job: Job) -> Self {
        Parsed {
            job,
            warnings: Vec::new(),
        }
    }
}

/// Parse a job file: API JSON when the first non-space character is `{`, else HCL2; a file
/// HCL2 refuses that is valid HCL1 (quoted attribute names, commas after attributes, ...) is
/// read as Nomad's HCL1 parser read it, with a warning per HCL1 construct.
pub fn parse_job(src: &str, filename: &str) -> Result<Parsed, SpecError> {
    let trimmed = src.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        return parse_json(src, filename).map(Parsed::clean);
    }
    match parse_hcl(src, filename) {
        Ok(job) => Ok(Parsed::clean(job)),
        Err(e) if e.kind == ErrorKind::Syntax && !hcl1::uses_hcl2_features(src) => {
            match parse_translated(src, filename) {
                // HCL1 constructs made it fail; as HCL1 it holds
                Some(Ok(parsed)) if !parsed.warnings.is_empty() => Ok(parsed),
                // HCL1 syntax, but a field or value is wrong: that is the error to show
                Some(Err(shape)) if shape.kind != ErrorKind::Syntax => Err(shape),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Parse a file as HCL1 (Nomad's `-hcl1`, the parse API's `HCLv1`): strings are literal.
pub fn parse_hcl1(src: &str, filename: &str) -> Result<Parsed, SpecError> {
    parse_translated(src, filename).unwrap_or_else(|| {
        Err(SpecError::new(
            ErrorKind::Syntax,
            filename,
            "not a valid HCL1 job file (HCL1 has no functions, operators or variables; check quotes, braces and heredoc markers)",
        ))
    })
}

/// `None` when the file is not HCL1 either.
fn parse_translated(src: &str, filename: &str) -> Option<Result<Parsed, SpecError>> {
    let t = hcl1::translate(src)?;
    let result = hcl::parse(&t.text, filename, &IndexMap::new());
    Some(match result {
        Ok(job) => Ok(Parsed {
            job,
            warnings: t
                .constructs
                .iter()
                .map(|c| format!("{filename}:{}: HCL1: {}", c.line, c.what))
                .collect(),
        }),
        Err(mut e) => {
            e.pos = e.pos.map(|(line, col)| (t.original_line(line), col));
            Err(e)
        }
    })
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
pub fn read_job_file(path: &Path) -> Result<Parsed, SpecError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(ErrorKind::Io, &name, format!("cannot read job file: {e}")))?;
    let mut parsed = parse_job(&src, &name)?;
    parsed.job.canonicalize();
    validate(&parsed.job).map_err(|mut e| {
        e.file = name;
        e
    })?;
    Ok(parsed)
}
