//! Job files (HCL, JSON) -> validated `model::Job`. (Placeholder until the parser lands.)
use crate::model::Job;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

pub fn validate(_job: &Job) -> Result<(), SpecError> {
    Ok(())
}
pub fn parse_job(src: &str, _filename: &str) -> Result<Job, SpecError> {
    let v: serde_json::Value = serde_json::from_str(src).map_err(|e| SpecError(e.to_string()))?;
    let v = v.get("Job").cloned().unwrap_or(v);
    serde_json::from_value(v).map_err(|e| SpecError(e.to_string()))
}
pub fn read_job_file(path: &std::path::Path) -> Result<Job, SpecError> {
    let s = std::fs::read_to_string(path).map_err(|e| SpecError(e.to_string()))?;
    parse_job(&s, &path.display().to_string())
}
pub mod duration;
