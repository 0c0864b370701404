//! `SpecError`: every way a job file can be rejected, rendered as one user-facing message
//! (file, `line:col`, field path, what is allowed).

use std::fmt::Write;

/// What went wrong, so callers can map it to an HTTP status or exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not valid HCL2 / JSON syntax.
    Syntax,
    /// Valid syntax, but a field is unknown, has the wrong type, or an expression failed.
    Shape,
    /// The job parsed but breaks a semantic rule (Nomad's `Job.Validate`).
    Validation,
}

/// A rejected job file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SpecError {
    pub kind: ErrorKind,
    /// File name as given by the caller ("" when unknown).
    pub file: String,
    /// 1-based line and column, when known.
    pub pos: Option<(usize, usize)>,
    /// Where in the job: `job "x" > group "g" > task "t"` (may be empty).
    pub path: String,
    /// What is wrong (for validation: the individual Nomad messages).
    pub messages: Vec<String>,
}

impl SpecError {
    pub fn new(kind: ErrorKind, file: &str, message: impl Into<String>) -> Self {
        SpecError {
            kind,
            file: file.to_string(),
            pos: None,
            path: String::new(),
            messages: vec![message.into()],
        }
    }

    pub fn at(mut self, pos: Option<(usize, usize)>) -> Self {
        self.pos = pos;
        self
    }

    pub fn in_path(mut self, path: &str) -> Self {
        self.path = path.to_string();
        self
    }

    /// Nomad-style multi-error for semantic validation.
    pub fn validation(messages: Vec<String>) -> Self {
        SpecError {
            kind: ErrorKind::Validation,
            file: String::new(),
            pos: None,
            path: String::new(),
            messages,
        }
    }

    /// True for syntax and shape errors (the request is malformed: HTTP 400).
    pub fn is_parse(&self) -> bool {
        matches!(self.kind, ErrorKind::Syntax | ErrorKind::Shape)
    }

    /// True for semantic validation failures (Nomad answers these with 500).
    pub fn is_validation(&self) -> bool {
        self.kind == ErrorKind::Validation
    }

    /// The message without the file prefix.
    pub fn message(&self) -> String {
        if self.kind == ErrorKind::Validation {
            return multi_error(&self.messages);
        }
        let msg = self.messages.join("; ");
        if self.path.is_empty() {
            msg
        } else {
            format!("{}: {}", self.path, msg)
        }
    }
}

/// hashicorp/go-multierror's list format, which Nomad returns for invalid jobs.
pub fn multi_error(messages: &[String]) -> String {
    let items: Vec<String> = messages.iter().map(|m| format!("* {m}")).collect();
    if messages.len() == 1 {
        format!("1 error occurred:\n\t{}\n\n", items.join("\n\t"))
    } else {
        format!(
            "{} errors occurred:\n\t{}\n\n",
            messages.len(),
            items.join("\n\t")
        )
    }
}

impl SpecError {
    /// `file:line:col: path: message`, leaving out the parts that are unknown.
    fn render(&self) -> String {
        let mut out = String::new();
        if !self.file.is_empty() {
            let _ = write!(out, "{}:", self.file);
            if let Some((line, col)) = self.pos {
                let _ = write!(out, "{line}:{col}:");
            }
            out.push(' ');
        } else if let Some((line, col)) = self.pos {
            let _ = write!(out, "{line}:{col}: ");
        }
        out.push_str(&self.message());
        out
    }
}

/// 1-based (line, column) of a byte offset; the column counts characters.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_position_and_path() {
        let e = SpecError::new(ErrorKind::Shape, "t.hcl", "resources.cpu must be a number")
            .at(Some((12, 5)))
            .in_path("job \"t\" > group \"g\"");
        assert_eq!(
            e.to_string(),
            "t.hcl:12:5: job \"t\" > group \"g\": resources.cpu must be a number"
        );
        assert!(e.is_parse());
    }

    #[test]
    fn validation_uses_multierror_format() {
        let e = SpecError::validation(vec!["Missing job ID".into(), "Missing job type".into()]);
        assert_eq!(
            e.to_string(),
            "2 errors occurred:\n\t* Missing job ID\n\t* Missing job type\n\n"
        );
        assert!(!e.is_parse());
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
