//! The UI's templates and assets: compiled into the binary from `templates/`, or read from a
//! directory on every request (`-ui-dir`, for working on them without rebuilding).
//!
//! Templates are tera 2 with autoescaping (every name ends in `.html`): whatever a page
//! shows from jobs, meta or payloads is escaped. An undefined variable is an error, so every
//! page's context names every variable its template reads.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use tera::{Context, Tera};

/// Every template, as compiled in.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("chart.html", include_str!("../../templates/chart.html")),
    ("jobs.html", include_str!("../../templates/jobs.html")),
    ("job.html", include_str!("../../templates/job.html")),
    ("child.html", include_str!("../../templates/child.html")),
    ("cluster.html", include_str!("../../templates/cluster.html")),
    ("denied.html", include_str!("../../templates/denied.html")),
    (
        "not_found.html",
        include_str!("../../templates/not_found.html"),
    ),
    (
        "disabled.html",
        include_str!("../../templates/disabled.html"),
    ),
];

/// Every asset (name, content type, compiled-in bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "ui.css",
        "text/css; charset=utf-8",
        include_str!("../../templates/ui.css"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../../templates/ui.js"),
    ),
];

/// Templates and assets, compiled in or from a directory.
pub struct Templates {
    /// The compiled-in set (`None` when they come from `dir`).
    embedded: Option<Tera>,
    dir: Option<PathBuf>,
    /// Changes when the assets change (cache busting in their URLs).
    pub asset_version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("UI template {name}: {message}")]
    Template { name: String, message: String },
    #[error("UI directory {}: cannot read {file}: {source}", dir.display())]
    Read {
        dir: PathBuf,
        file: String,
        source: std::io::Error,
    },
}

/// A tera error with its causes (tera puts the useful part in the source chain).
fn message(e: &tera::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn build(sources: &[(String, String)]) -> Result<Tera, TemplateError> {
    let mut tera = Tera::new();
    for (name, text) in sources {
        tera.add_raw_template(name, text)
            .map_err(|e| TemplateError::Template {
                name: name.clone(),
                message: message(&e),
            })?;
    }
    Ok(tera)
}

fn read_dir_sources(dir: &Path) -> Result<Vec<(String, String)>, TemplateError> {
    TEMPLATES
        .iter()
        .map(|(name, _)| {
            std::fs::read_to_string(dir.join(name))
                .map(|text| (name.to_string(), text))
                .map_err(|source| TemplateError::Read {
                    dir: dir.to_path_buf(),
                    file: name.to_string(),
                    source,
                })
        })
        .collect()
}

impl Templates {
    /// The compiled-in templates, or those of `dir` (checked now, then read again on every
    /// render so edits show at once).
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut hash = std::collections::hash_map::DefaultHasher::new();
        let embedded = match dir {
            Some(dir) => {
                build(&read_dir_sources(dir)?)?;
                std::hash::Hash::hash(&dir, &mut hash);
                None
            }
            None => {
                let sources: Vec<(String, String)> = TEMPLATES
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string()))
                    .collect();
                for (_, _, body) in ASSETS {
                    std::hash::Hash::hash(body, &mut hash);
                }
                Some(build(&sources)?)
            }
        };
        Ok(Templates {
            embedded,
            dir: dir.map(Path::to_path_buf),
            asset_version: format!("{:x}", std::hash::Hasher::finish(&hash) & 0xffff_ffff),
        })
    }

    pub fn render(&self, name: &str, context: &Context) -> Result<String, TemplateError> {
        let fresh;
        let tera = match (&self.embedded, &self.dir) {
            (Some(tera), _) => tera,
            (None, Some(dir)) => {
                fresh = build(&read_dir_sources(dir)?)?;
                &fresh
            }
            (None, None) => unreachable!("Templates::load sets one of them"),
        };
        tera.render(name, context)
            .map_err(|e| TemplateError::Template {
                name: name.to_string(),
                message: message(&e),
            })
    }

    /// An asset's content type and bytes.
    pub fn asset(&self, name: &str) -> Option<(&'static str, Cow<'static, [u8]>)> {
        let (_, content_type, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
        match &self.dir {
            Some(dir) => std::fs::read(dir.join(name))
                .ok()
                .map(|b| (*content_type, Cow::Owned(b))),
            None => Some((*content_type, Cow::Borrowed(body.as_bytes()))),
        }
    }
}
