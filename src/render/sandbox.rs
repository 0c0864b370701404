//! Files placed in the task sandbox (rendered templates, the dispatch payload) and artifacts
//! fetched into it.
//!
//! Sandbox files travel in `TaskInfo.data`: base64 (standard, padded) of the JSON
//! `{"files": [{"path": "local/s3cfg.ini", "content": "<base64>", "mode": "0644"}]}`. Paths are
//! relative to the sandbox (`local/`, `secrets/`, `alloc/` as in Nomad's task dir). A `source`
//! template cannot be rendered before its file is fetched, so it travels as
//! `{"path": <destination>, "mode": "0644", "source": "local/t.tpl", "render_after_fetch": true,
//! "left_delimiter": "{{", "right_delimiter": "}}"}` (no `content`): the backend renders it
//! after fetching, with `render::template::render_fetched` and the task environment.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::cluster::types::Uri;

/// One file of `TaskInfo.data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxFile {
    /// Relative to the sandbox, normalised (no `.`/`..`, no leading `/`).
    pub path: String,
    /// Base64 of the file contents (absent for `render_after_fetch` templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Octal permission bits, four digits (`0644`; empty when absent: 0644).
    #[serde(default)]
    pub mode: String,
    /// Template file to render after the fetch (sandbox-relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub render_after_fetch: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right_delimiter: Option<String>,
}

impl SandboxFile {
    pub fn new(path: String, content: &[u8], mode: String) -> SandboxFile {
        SandboxFile {
            path,
            content: Some(base64::engine::general_purpose::STANDARD.encode(content)),
            mode,
            source: None,
            render_after_fetch: false,
            left_delimiter: None,
            right_delimiter: None,
        }
    }

    /// The decoded contents (empty for a file rendered after the fetch).
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        let Some(content) = self.content.as_deref() else {
            return Ok(Vec::new());
        };
        base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| format!("data file {:?}: content is not base64: {e}", self.path))
    }

    /// The permission bits (`0644`, `644`, `0o755`; absent: 0644); `None` when not octal.
    pub fn mode_bits(&self) -> Option<u32> {
        let m = self.mode.trim();
        if m.is_empty() {
            return Some(0o644);
        }
        let digits = m.strip_prefix("0o").unwrap_or(m);
        u32::from_str_radix(digits, 8).ok().filter(|v| *v <= 0o7777)
    }
}

/// The JSON document inside `TaskInfo.data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxFiles {
    pub files: Vec<SandboxFile>,
}

impl SandboxFiles {
    /// `TaskInfo.data` for these files (None when there are none).
    pub fn encode(&self) -> Option<String> {
        if self.files.is_empty() {
            return None;
        }
        let json = serde_json::to_vec(self).expect("sandbox files serialise");
        Some(base64::engine::general_purpose::STANDARD.encode(json))
    }

    /// Read `TaskInfo.data` back (the backends, and the API serving sandbox files).
    pub fn decode(data: &str) -> Result<SandboxFiles, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("TaskInfo.data is not base64: {e}"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("TaskInfo.data is not a {{\"files\": [...]}} document: {e}"))
    }
}

/// Normalise a sandbox-relative path: `.` dropped, `..` resolved, not absolute, not empty.
///
/// The sandbox is Nomad's task dir, which sits in the allocation dir next to the shared
/// `alloc/` dir, so a path may climb one level to reach it: `local/../../alloc/x` (what
/// Nomad users write for a payload shared between tasks) becomes `alloc/x`. Anything else
/// above the sandbox is an escape.
pub fn normalize(path: &str) -> Result<String, String> {
    const TASK: &str = "\0task";
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(format!(
            "{path:?} is absolute; paths are relative to the task sandbox (local/, secrets/, alloc/)"
        ));
    }
    let mut parts: Vec<&str> = vec![TASK];
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("{path:?} escapes the task sandbox"));
                }
            }
            p => {
                if p.chars().any(|c| c.is_control()) {
                    return Err(format!("{path:?} contains control characters"));
                }
                parts.push(p)
            }
        }
    }
    let rest = match parts.first() {
        Some(&TASK) => &parts[1..],
        Some(&"alloc") => &parts[..],
        _ => return Err(format!("{path:?} escapes the task sandbox")),
    };
    if rest.is_empty() || rest == ["alloc"] && parts[0] != TASK {
        return Err(format!("{path:?} names a directory, not a file"));
    }
    Ok(rest.join("/"))
}

/// Like `normalize`, for a directory: the sandbox root itself is allowed (returned as "").
pub fn normalize_dir(path: &str) -> Result<String, String> {
    let probe = normalize(&format!("{path}/x")).map_err(|e| e.replace("/x\"", "\""))?;
    Ok(probe.strip_suffix("/x").unwrap_or_default().to_string())
}

/// Template `perms` (`"644"`, `"0600"`) as four octal digits; default `0644`.
pub fn mode(perms: &str) -> Result<String, String> {
    let p = perms.trim();
    if p.is_empty() {
        return Ok("0644".into());
    }
    if p.len() > 4 || !p.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!("perms {perms:?} is not an octal mode like \"644\""));
    }
    Ok(format!("{p:0>4}"))
}

/// A fetcher URI for an artifact (all inputs already interpolated).
///
/// `dest` is the artifact `destination` (default `local/`); with `mode = "file"` it is the
/// file's path, otherwise the directory the file lands in, named after the last segment of
/// the URL path (query and fragment dropped). go-getter unpacks archives by default, so
/// `extract` is true unless `options.archive` is `"false"`. `options.cache = "true"` uses the
/// Mesos agent's fetcher cache; `options.executable = "true"` makes the file executable.
pub fn artifact_uri(
    source: &str,
    dest: &str,
    mode: &str,
    options: &indexmap::IndexMap<String, String>,
) -> Result<Uri, String> {
    if source.trim().is_empty() {
        return Err("source is empty".into());
    }
    let dest = if dest.trim().is_empty() {
        "local/"
    } else {
        dest
    };
    let output_file = match mode {
        "file" => normalize(dest)?,
        "" | "any" | "dir" => {
            let dir = normalize_dir(dest)?;
            let name = url_basename(source).ok_or_else(|| {
                format!(
                    "cannot derive a file name from {source:?}: set mode = \"file\" and a \
                     destination file path"
                )
            })?;
            if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            }
        }
        other => {
            return Err(format!(
                "mode {other:?} is not supported (allowed: any, file, dir)"
            ))
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match options.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) if v == "true" => Ok(Some(true)),
            Some(v) if v == "false" => Ok(Some(false)),
            Some(v) => Err(format!(
                "options.{key} {v:?}: expected \"true\" or \"false\""
            )),
        }
    };
    let extract = options.get("archive").map(|a| a != "false").unwrap_or(true);
    // Dispatch extensions for the Mesos fetcher: `cache` (the agent's fetcher cache) and
    // `executable` (chmod +x; archives are then not unpacked, as in Mesos).
    let executable = flag("executable")?.unwrap_or(false);
    Ok(Uri {
        value: source.to_string(),
        executable: Some(executable),
        extract: Some(extract && !executable),
        cache: flag("cache")?,
        output_file: Some(output_file),
    })
}

/// Last segment of the URL path, without query or fragment.
fn url_basename(url: &str) -> Option<String> {
    let no_frag = url.split('#').next().unwrap_or(url);
    let path = no_frag.split('?').next().unwrap_or(no_frag);
    let path = path.split_once("://").map_or(path, |(_, rest)| {
        rest.split_once('/').map_or("", |(_, p)| p)
    });
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_and_cannot_escape() {
        assert_eq!(normalize("local/x").unwrap(), "local/x");
        assert_eq!(normalize("./local//x").unwrap(), "local/x");
        assert_eq!(normalize("local/../../alloc/x").unwrap(), "alloc/x");
        assert_eq!(normalize("local/a/../../alloc/x").unwrap(), "alloc/x");
        assert!(normalize("local/../../other/x")
            .unwrap_err()
            .contains("escapes"));
        assert!(normalize("../../../x").unwrap_err().contains("escapes"));
        assert!(normalize("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(normalize("local/..").is_err());
        assert_eq!(normalize_dir("local").unwrap(), "local");
        assert_eq!(normalize_dir(".").unwrap(), "");
        assert!(normalize_dir("..").is_err());
        assert_eq!(normalize_dir("../alloc").unwrap(), "alloc");
    }

    #[test]
    fn modes() {
        assert_eq!(mode("").unwrap(), "0644");
        assert_eq!(mode("600").unwrap(), "0600");
        assert_eq!(mode("0755").unwrap(), "0755");
        assert!(mode("rw").is_err());
        assert!(mode("999").is_err());
    }

    #[test]
    fn decoded_modes() {
        let file = |mode: &str| SandboxFile {
            mode: mode.into(),
            ..SandboxFile::new("local/a".into(), b"", String::new())
        };
        assert_eq!(file("").mode_bits(), Some(0o644));
        assert_eq!(file("0755").mode_bits(), Some(0o755));
        assert_eq!(file("600").mode_bits(), Some(0o600));
        assert_eq!(file("0o700").mode_bits(), Some(0o700));
        assert_eq!(file("rw").mode_bits(), None);
    }

    #[test]
    fn artifact_output_files() {
        let none = indexmap::IndexMap::new();
        let u = artifact_uri("https://h/p/tool.tar.gz?x=1#f", "", "", &none).unwrap();
        assert_eq!(u.output_file.as_deref(), Some("local/tool.tar.gz"));
        assert_eq!(u.extract, Some(true));
        let u = artifact_uri("https://h/raw?x=1", "local/t.tpl", "file", &none).unwrap();
        assert_eq!(u.output_file.as_deref(), Some("local/t.tpl"));
        assert!(artifact_uri("https://h/", "local", "any", &none).is_err());
        assert!(artifact_uri("https://h/a", "/abs", "any", &none).is_err());
        let mut opts = indexmap::IndexMap::new();
        opts.insert("archive".to_string(), "false".to_string());
        assert_eq!(
            artifact_uri("https://h/a.zip", ".", "", &opts)
                .unwrap()
                .extract,
            Some(false)
        );
        assert_eq!(
            artifact_uri("https://h/a.zip", ".", "", &opts)
                .unwrap()
                .output_file
                .as_deref(),
            Some("a.zip")
        );
        let mut opts = indexmap::IndexMap::new();
        opts.insert("cache".to_string(), "true".to_string());
        opts.insert("executable".to_string(), "true".to_string());
        let u = artifact_uri("https://h/tool", "", "", &opts).unwrap();
        assert_eq!(
            (u.cache, u.executable, u.extract),
            (Some(true), Some(true), Some(false))
        );
        opts.insert("cache".to_string(), "yes".to_string());
        let e = artifact_uri("https://h/tool", "", "", &opts).unwrap_err();
        assert!(e.contains("options.cache \"yes\""), "{e}");
    }

    #[test]
    fn files_round_trip() {
        let files = SandboxFiles {
            files: vec![SandboxFile::new("local/a".into(), b"hi", "0644".into())],
        };
        let data = files.encode().unwrap();
        let back = SandboxFiles::decode(&data).unwrap();
        assert_eq!(back, files);
        assert_eq!(back.files[0].bytes().unwrap(), b"hi");
        assert_eq!(back.files[0].mode_bits(), Some(0o644));
        assert_eq!(SandboxFiles::default().encode(), None);
    }
}
