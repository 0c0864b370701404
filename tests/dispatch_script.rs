//! Integration tests for `scripts/dispatch.sh`, with a fake `dispatch` binary
//! (`DISPATCH_BIN`) that records its argv.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

struct Fake {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
    log: PathBuf,
}

/// A fake dispatch client: appends one line per invocation to `argv.log`, the
/// arguments separated by tabs. It also drains its stdin, so a dispatch.sh that
/// let the client inherit the input file would lose lines. `exit_code` is what
/// it exits with.
fn fake_dispatch(exit_code: i32) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let bin = root.join("fake-dispatch");
    let log = root.join("argv.log");
    let script = format!(
        "#!/bin/sh\n\
         for a in \"$@\"; do printf '%s\\t' \"$a\"; done >> '{log}'\n\
         printf '\\n' >> '{log}'\n\
         cat > /dev/null\n\
         exit {exit_code}\n",
        log = log.display()
    );
    fs::write(&bin, script).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    Fake {
        _dir: dir,
        root,
        bin,
        log,
    }
}

fn run_dispatch(args: &[&Path], fake: &Fake) -> Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dispatch.sh"))
        .args(args)
        .env("DISPATCH_BIN", &fake.bin)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/dispatch.sh")
}

/// The recorded invocations, each as its argv.
fn invocations(fake: &Fake) -> Vec<Vec<String>> {
    let log = fs::read_to_string(&fake.log).unwrap_or_default();
    log.lines()
        .map(|l| {
            l.strip_suffix('\t')
                .unwrap_or(l)
                .split('\t')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn expected(input: &str, profile: &str) -> Vec<String> {
    [
        "job",
        "dispatch",
        "-detach",
        "-meta",
        &format!("input={input}"),
        "-meta",
        &format!("profile={profile}"),
        "transcode",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn dispatches_every_line_twice_including_last_without_newline() {
    let fake = fake_dispatch(0);
    let lines = [
        "/videos/a.mp4",
        "/videos/my clip (1).mp4",
        "https://example.com/c.mp4?x=1&y=2",
    ];
    let list = fake.root.join("inputs.txt");
    // No trailing newline after the last line.
    fs::write(&list, lines.join("\n")).unwrap();

    let out = run_dispatch(&[&list], &fake);
    assert!(out.status.success(), "{}", describe(&out));

    let want_stdout: String = lines.iter().map(|l| format!("Input file: {l}\n")).collect();
    assert_eq!(text(&out.stdout), want_stdout, "{}", describe(&out));

    let want: Vec<Vec<String>> = lines
        .iter()
        .flat_map(|l| [expected(l, "small"), expected(l, "large")])
        .collect();
    assert_eq!(invocations(&fake), want);
}

#[test]
fn blank_lines_are_skipped() {
    let fake = fake_dispatch(0);
    let list = fake.root.join("inputs.txt");
    fs::write(&list, "a.mp4\n\n   \nb.mp4\n").unwrap();

    let out = run_dispatch(&[&list], &fake);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "Input file: a.mp4\nInput file: b.mp4\n");
    assert_eq!(
        invocations(&fake),
        vec![
            expected("a.mp4", "small"),
            expected("a.mp4", "large"),
            expected("b.mp4", "small"),
            expected("b.mp4", "large"),
        ]
    );
}

#[test]
fn no_argument_prints_usage_and_exits_1() {
    let fake = fake_dispatch(0);
    let out = run_dispatch(&[], &fake);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("usage: dispatch.sh FILE"),
        "{}",
        describe(&out)
    );
    assert_eq!(text(&out.stdout), "");
    assert!(invocations(&fake).is_empty());
}

#[test]
fn unreadable_file_exits_1() {
    let fake = fake_dispatch(0);
    let missing = fake.root.join("missing.txt");
    let out = run_dispatch(&[&missing], &fake);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        describe(&out)
    );
    assert!(invocations(&fake).is_empty());
}

#[test]
fn failed_dispatch_stops_with_non_zero_exit() {
    let fake = fake_dispatch(3);
    let list = fake.root.join("inputs.txt");
    fs::write(&list, "a.mp4\nb.mp4\n").unwrap();
    let out = run_dispatch(&[&list], &fake);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(invocations(&fake), vec![expected("a.mp4", "small")]);
}
