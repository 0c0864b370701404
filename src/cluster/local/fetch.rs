//! The fetcher (Mesos `CommandInfo.uris` semantics): http(s) downloads, `file://` and plain
//! paths copied, `output_file` renames, `executable` makes a file executable (no extraction),
//! `extract` (default true) unpacks archives into the sandbox. Fetched in order; the first
//! failure stops the launch.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::cluster::types::Uri;

use super::sandbox::Sandbox;

/// Fetch every URI into the sandbox; errors name the URI. Progress goes to `log`.
pub async fn fetch_all(
    http: &reqwest::Client,
    sandbox: &Sandbox,
    uris: &[Uri],
    log: &mut std::fs::File,
) -> Result<(), String> {
    for uri in uris {
        fetch_one(http, sandbox, uri, log)
            .await
            .map_err(|e| format!("Failed to fetch '{}': {e}", uri.value))?;
    }
    Ok(())
}

async fn fetch_one(
    http: &reqwest::Client,
    sandbox: &Sandbox,
    uri: &Uri,
    log: &mut std::fs::File,
) -> Result<(), String> {
    let value = uri.value.trim();
    let remote = is_http(value);
    let name = match uri.output_file.as_deref().filter(|s| !s.is_empty()) {
        Some(out) => out.to_string(),
        None => default_name(value, remote)?,
    };
    let dest = sandbox.resolve(&name)?;
    sandbox.prepare_parent(&dest)?;
    let _ = writeln!(log, "Fetching '{value}' to '{}'", dest.display());
    if remote {
        download(http, value, &dest).await?;
    } else {
        copy_local(value, &dest).await?;
    }
    if uri.executable.unwrap_or(false) {
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", dest.display()))?;
    } else if uri.extract.unwrap_or(true) {
        if let Some(kind) = archive_kind(&name) {
            let _ = writeln!(log, "Extracting '{}'", dest.display());
            // Unpacked next to the archive: the sandbox, or output_file's subdirectory.
            let into = dest
                .parent()
                .map_or_else(|| sandbox.dir.clone(), Path::to_path_buf);
            let archive = dest.clone();
            tokio::task::spawn_blocking(move || extract(kind, &archive, &into))
                .await
                .map_err(|e| format!("extraction aborted: {e}"))??;
        }
    }
    Ok(())
}

fn is_http(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The local path behind `file://...` or a plain path; other schemes are refused.
fn local_path(value: &str) -> Result<PathBuf, String> {
    if let Some(rest) = value.strip_prefix("file://") {
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return Err(format!(
            "unsupported URI scheme '{scheme}' (the local runner fetches http, https, file and plain paths)"
        ));
    }
    Ok(PathBuf::from(value))
}

/// The file name a URI is saved under when no `output_file` is given.
fn default_name(value: &str, remote: bool) -> Result<String, String> {
    let path = if remote {
        let url = reqwest::Url::parse(value).map_err(|e| format!("invalid URL: {e}"))?;
        url.path().to_string()
    } else {
        local_path(value)?.to_string_lossy().into_owned()
    };
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .filter(|s| *s != "." && *s != "..")
        .map(str::to_string)
        .ok_or_else(|| "cannot derive a file name from the URI; set output_file".to_string())
}

async fn download(http: &reqwest::Client, url: &str, dest: &Path) -> Result<(), String> {
    let mut resp = http.get(url).send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    Ok(())
}

/// reqwest's top-level messages are terse ("error sending request"); add the causes.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

async fn copy_local(value: &str, dest: &Path) -> Result<(), String> {
    let src = local_path(value)?;
    let meta = tokio::fs::metadata(&src)
        .await
        .map_err(|e| format!("{}: {e}", src.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", src.display()));
    }
    tokio::fs::copy(&src, dest)
        .await
        .map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), dest.display()))?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Tar,
    TarGz,
    TarBz2,
    TarXz,
    Gz,
    Zip,
}

fn archive_kind(name: &str) -> Option<Archive> {
    let n = name.to_ascii_lowercase();
    let kinds = [
        (".tar.gz", Archive::TarGz),
        (".tgz", Archive::TarGz),
        (".tar.bz2", Archive::TarBz2),
        (".tbz2", Archive::TarBz2),
        (".tar.xz", Archive::TarXz),
        (".txz", Archive::TarXz),
        (".tar", Archive::Tar),
        (".gz", Archive::Gz),
        (".zip", Archive::Zip),
    ];
    kinds
        .iter()
        .find(|(ext, _)| n.ends_with(ext))
        .map(|(_, k)| *k)
}

fn extract(kind: Archive, archive: &Path, into: &Path) -> Result<(), String> {
    let open = || {
        std::fs::File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))
    };
    let fail = |e: std::io::Error| format!("cannot extract {}: {e}", archive.display());
    match kind {
        Archive::Tar => untar(open()?, into).map_err(fail),
        Archive::TarGz => untar(flate2::read::GzDecoder::new(open()?), into).map_err(fail),
        Archive::TarBz2 => untar(bzip2::read::BzDecoder::new(open()?), into).map_err(fail),
        Archive::TarXz => untar(xz2::read::XzDecoder::new(open()?), into).map_err(fail),
        Archive::Gz => {
            let out = archive.with_extension("");
            let mut dec = flate2::read::GzDecoder::new(open()?);
            let mut file = std::fs::File::create(&out).map_err(fail)?;
            std::io::copy(&mut dec, &mut file).map_err(fail)?;
            Ok(())
        }
        Archive::Zip => {
            let mut zip = zip::ZipArchive::new(open()?)
                .map_err(|e| format!("cannot read {}: {e}", archive.display()))?;
            zip.extract(into)
                .map_err(|e| format!("cannot extract {}: {e}", archive.display()))
        }
    }
}

/// Unpack a tar stream; the tar crate refuses entries that would land outside `into`.
fn untar(reader: impl std::io::Read, into: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_overwrite(true);
    archive.unpack(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(
            default_name("http://h/a/b/tool.tar.gz?x=1", true).as_deref(),
            Ok("tool.tar.gz")
        );
        assert_eq!(default_name("/tmp/x.sh", false).as_deref(), Ok("x.sh"));
        assert!(default_name("http://h/", true).is_err());
        assert!(local_path("s3://bucket/x").is_err());
        assert_eq!(local_path("file:///tmp/a"), Ok(PathBuf::from("/tmp/a")));
        assert_eq!(archive_kind("a.TGZ"), Some(Archive::TarGz));
        assert_eq!(archive_kind("a.tar.xz"), Some(Archive::TarXz));
        assert_eq!(archive_kind("a.gz"), Some(Archive::Gz));
        assert_eq!(archive_kind("a.sh"), None);
    }
}
