//! Integration tests for `scripts/transcode.sh`, run against the real ffmpeg.
//!
//! Needs ffmpeg, ffprobe, md5sum, curl (or wget) and python3 on PATH. A missing
//! tool fails the test with a pointer to `scripts/test-deps.sh`; nothing is skipped.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Fails (never skips) when a tool the tests need is not installed.
fn require_tool(tool: &str, probe_arg: &str) {
    let found = Command::new(tool)
        .arg(probe_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` not found on PATH: run `scripts/test-deps.sh` (as root) to install the test dependencies"
    );
}

fn require_ffmpeg() {
    require_tool("ffmpeg", "-version");
    require_tool("ffprobe", "-version");
    require_tool("md5sum", "--version");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A 2 s, 320x240, 10 fps H.264 + AAC clip.
fn make_clip(dir: &Path) -> PathBuf {
    require_ffmpeg();
    let clip = dir.join("in.mp4");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=320x240:rate=10",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"])
        .args(["-c:v", "libx264", "-c:a", "aac", "-shortest"])
        .arg(&clip)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "generating the test clip failed\n{}",
        describe(&out)
    );
    clip
}

fn md5(path: &Path) -> String {
    let out = Command::new("md5sum")
        .arg(path)
        .output()
        .expect("run md5sum");
    assert!(out.status.success(), "md5sum failed\n{}", describe(&out));
    let s = text(&out.stdout);
    let sum = s
        .split_whitespace()
        .next()
        .expect("md5sum output")
        .to_string();
    assert_eq!(sum.len(), 32, "unexpected md5sum output: {s}");
    sum
}

/// One stream property via ffprobe, e.g. (`v:0`, `width`).
fn probe(file: &Path, stream: &str, entry: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream])
        .args([
            "-show_entries",
            &format!("stream={entry}"),
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {file:?} failed\n{}",
        describe(&out)
    );
    text(&out.stdout).trim().to_string()
}

/// Runs transcode.sh with a hermetic environment: output into `output_dir`,
/// temp files under `tmp`, no S3 upload.
fn transcode(args: &[&str], output_dir: &Path, tmp: &Path) -> Output {
    fs::create_dir_all(tmp).unwrap();
    Command::new(repo_path("scripts/transcode.sh"))
        .args(args)
        .env("OUTPUT_DIR", output_dir)
        .env("TMPDIR", tmp)
        .env_remove("S3_BUCKET")
        .env_remove("S3CFG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("NOMAD_ALLOC_DIR")
        .env_remove("NOMAD_TASK_DIR")
        .current_dir(tmp)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/transcode.sh")
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn assert_video(file: &Path, width: u32, height: u32) {
    assert!(file.is_file(), "expected output {file:?}");
    assert_eq!(
        probe(file, "v:0", "width"),
        width.to_string(),
        "width of {file:?}"
    );
    assert_eq!(
        probe(file, "v:0", "height"),
        height.to_string(),
        "height of {file:?}"
    );
    assert_eq!(
        probe(file, "v:0", "codec_name"),
        "h264",
        "video codec of {file:?}"
    );
    assert_eq!(
        probe(file, "a:0", "codec_name"),
        "aac",
        "audio codec of {file:?}"
    );
}

#[test]
fn small_and_large_profiles_then_skip_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = make_clip(tmp.path());
    let sum = md5(&clip);
    let outdir = tmp.path().join("output");
    let work = tmp.path().join("work");
    let clip_arg = clip.to_str().unwrap();

    let mut outputs = Vec::new();
    for (profile, width, height) in [("small", 640, 480), ("large", 1280, 960)] {
        let out = transcode(&[clip_arg, profile], &outdir, &work);
        assert!(
            out.status.success(),
            "transcode {profile}\n{}",
            describe(&out)
        );
        let file = outdir.join(format!("out-{sum}-{profile}.mp4"));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!(
                "Transcoding {clip_arg} with profile {profile} -> {}",
                file.display()
            )),
            "{}",
            describe(&out)
        );
        assert!(
            stdout.contains(&format!("Output: {}", file.display())),
            "{}",
            describe(&out)
        );
        assert_video(&file, width, height);
        outputs.push((profile, file));
    }
    // Exactly the two outputs, no leftover partial files; temp dir cleaned up.
    assert_eq!(
        dir_entries(&outdir),
        vec![
            format!("out-{sum}-large.mp4"),
            format!("out-{sum}-small.mp4")
        ]
    );
    assert_eq!(
        dir_entries(&work),
        Vec::<String>::new(),
        "temp dir not cleaned up"
    );

    // Second run: nothing is re-encoded, files are untouched.
    for (profile, file) in &outputs {
        let before = fs::metadata(file).unwrap().modified().unwrap();
        let out = transcode(&[clip_arg, profile], &outdir, &work);
        assert!(out.status.success(), "rerun {profile}\n{}", describe(&out));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("Skipping: {} exists", file.display())),
            "{}",
            describe(&out)
        );
        assert!(!stdout.contains("Transcoding"), "{}", describe(&out));
        let after = fs::metadata(file).unwrap().modified().unwrap();
        assert_eq!(before, after, "{file:?} was rewritten");
    }
}

#[test]
fn default_and_unknown_profile_mean_small() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = make_clip(tmp.path());
    let sum = md5(&clip);
    let clip_arg = clip.to_str().unwrap();
    let work = tmp.path().join("work");

    for (case, args) in [
        ("no profile", vec![clip_arg]),
        ("unknown profile", vec![clip_arg, "huge"]),
        ("empty profile", vec![clip_arg, ""]),
    ] {
        let outdir = tmp.path().join(case.replace(' ', "-"));
        let out = transcode(&args, &outdir, &work);
        assert!(out.status.success(), "{case}\n{}", describe(&out));
        assert!(
            text(&out.stdout).contains("with profile small"),
            "{case}\n{}",
            describe(&out)
        );
        assert_eq!(
            dir_entries(&outdir),
            vec![format!("out-{sum}-small.mp4")],
            "{case}"
        );
        assert_video(&outdir.join(format!("out-{sum}-small.mp4")), 640, 480);
    }
}

#[test]
fn missing_input_fails_clearly() {
    require_ffmpeg();
    let tmp = tempfile::tempdir().unwrap();
    let outdir = tmp.path().join("output");
    let missing = tmp.path().join("no-such-video.mp4");
    let out = transcode(
        &[missing.to_str().unwrap(), "small"],
        &outdir,
        &tmp.path().join("work"),
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains(&format!("input not found: {}", missing.display())),
        "{}",
        describe(&out)
    );
    assert_eq!(dir_entries(&outdir), Vec::<String>::new());
}

#[test]
fn no_arguments_prints_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let out = transcode(&[], &tmp.path().join("output"), &tmp.path().join("work"));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("usage: transcode.sh INPUT [PROFILE]"),
        "{}",
        describe(&out)
    );
}

#[test]
fn ffmpeg_failure_fails_clearly_and_leaves_no_output() {
    require_ffmpeg();
    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("not-a-video.mp4");
    fs::write(&bogus, "this is not a video\n").unwrap();
    let outdir = tmp.path().join("output");
    let out = transcode(
        &[bogus.to_str().unwrap(), "large"],
        &outdir,
        &tmp.path().join("work"),
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("ffmpeg failed"),
        "{}",
        describe(&out)
    );
    // No finished or partial file that a rerun would mistake for a result.
    assert_eq!(dir_entries(&outdir), Vec::<String>::new());
}

/// `python3 -m http.server` serving a directory; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(root: &Path) -> HttpServer {
        require_tool("python3", "--version");
        // Port 0: the server prints the port it got ("Serving HTTP on 127.0.0.1 port N ...").
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("python3 -m http.server did not print its port ({read:?}): {line:?}");
        };
        HttpServer { child, port }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_input_is_downloaded_and_transcoded() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    fs::create_dir(&served).unwrap();
    let clip = make_clip(&served);
    let sum = md5(&clip);
    let server = HttpServer::start(&served);
    let outdir = tmp.path().join("output");
    let work = tmp.path().join("work");

    let url = server.url("in.mp4");
    let out = transcode(&[&url, "large"], &outdir, &work);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let file = outdir.join(format!("out-{sum}-large.mp4"));
    assert!(
        stdout.contains(&format!("Downloading {url}")),
        "{}",
        describe(&out)
    );
    assert!(
        stdout.contains(&format!(
            "Transcoding {url} with profile large -> {}",
            file.display()
        )),
        "{}",
        describe(&out)
    );
    assert_video(&file, 1280, 960);
    assert_eq!(
        dir_entries(&work),
        Vec::<String>::new(),
        "download not cleaned up"
    );

    // A 404 is a failed download, not an empty or garbage video.
    let missing = server.url("missing.mp4");
    let out = transcode(&[&missing, "small"], &outdir, &work);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains(&format!("download failed: {missing}")),
        "{}",
        describe(&out)
    );
    assert_eq!(dir_entries(&outdir), vec![format!("out-{sum}-large.mp4")]);
}
