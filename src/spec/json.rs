//! Nomad API JSON jobs (`{"Job": {...}}` or the bare job object) -> `model::Job`, with
//! shape errors naming the JSON path and line:col.

use serde::Deserialize;

use super::error::{ErrorKind, SpecError};
use crate::model::Job;

#[derive(Deserialize)]
struct Wrapped {
    #[serde(rename = "Job")]
    job: Job,
}

/// Parse API JSON; the `Job` wrapper is optional.
pub fn parse(src: &str, file: &str) -> Result<Job, SpecError> {
    let value: serde_json::Value = serde_json::from_str(src).map_err(|e| syntax(file, &e))?;
    let obj = value.as_object().ok_or_else(|| {
        SpecError::new(
            ErrorKind::Shape,
            file,
            "a JSON job must be an object ({\"Job\": {...}} or the job itself)",
        )
    })?;
    // `{"Job": {...}}`, possibly with register-request siblings (EnforceIndex, Submission, ...)
    let wrapped = obj.get("Job").is_some_and(|j| j.is_object()) && !obj.contains_key("ID");
    let mut de = serde_json::Deserializer::from_str(src);
    let result = if wrapped {
        serde_path_to_error::deserialize::<_, Wrapped>(&mut de).map(|w| w.job)
    } else {
        serde_path_to_error::deserialize::<_, Job>(&mut de)
    };
    result.map_err(|e| {
        let inner = e.inner();
        let pos = (inner.line() > 0).then(|| (inner.line(), inner.column()));
        let path = e.path().to_string();
        let msg = strip_position(&inner.to_string());
        SpecError::new(ErrorKind::Shape, file, format!("{path}: {msg}")).at(pos)
    })
}

fn syntax(file: &str, e: &serde_json::Error) -> SpecError {
    let pos = (e.line() > 0).then(|| (e.line(), e.column()));
    SpecError::new(
        ErrorKind::Syntax,
        file,
        format!("invalid JSON: {}", strip_position(&e.to_string())),
    )
    .at(pos)
}

/// serde_json appends " at line L column C"; we print the position up front instead.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_path_and_position() {
        let src = "{\"Job\": {\"ID\": \"t\",\n \"TaskGroups\": [{\"Tasks\": [{\"Resources\": {\"CPU\": \"abc\"}}]}]}}";
        let err = parse(src, "t.json").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t.json:2:"), "{text}");
        assert!(
            text.contains("Job.TaskGroups[0].Tasks[0].Resources.CPU: invalid type: string \"abc\""),
            "{text}"
        );
        assert!(err.is_parse());
    }

    #[test]
    fn unwrapped_and_nulls() {
        let job = parse(
            r#"{"ID": "x", "Type": null, "TaskGroups": null, "Meta": null}"#,
            "x.json",
        );
        assert_eq!(job.map(|j| j.id), Ok("x".to_string()));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("{\"Job\": {\n  \"ID\": }", "bad.json").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Syntax);
        assert_eq!(err.pos.map(|p| p.0), Some(2));
    }
}
