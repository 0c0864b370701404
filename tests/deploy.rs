//! Everything under deploy/ (and the Vagrantfile, scripts/install.sh, samples/), exercised
//! as far as this machine allows: install into a temporary tree and start the installed
//! server, `systemd-analyze verify` the unit, `vagrant validate`, `shellcheck` every shell
//! script, parse every Terraform and Packer file with hcl-rs, `terraform validate` offline
//! against a provider mirror, render the Terraform templates and feed them to the real
//! config loader and shellcheck, run the queue-metrics script against a real server, and
//! run `scripts/dispatch.sh samples/one.txt` on clips made offline.
//!
//! Not exercised here (no VMs, no AWS): `vagrant up`, `terraform apply`, `packer build`,
//! the Mesos build, the Datadog API. The README says so.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{repo_root, show, wait_until, TestServer};

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

#[track_caller]
fn ok(o: &Output) -> String {
    common::ok(o)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tool this test needs; missing = a loud failure naming how to get it.
#[track_caller]
fn need(tool: &str, how: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed: {how}");
}

fn install(args: &[&str]) -> Output {
    run(Command::new(repo_root().join("scripts/install.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_dispatch"))
        .args(args))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_into_a_destdir_keeps_changed_configs_unless_forced() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    let destdir = d.to_str().unwrap();
    let out = ok(&install(&["--destdir", destdir]));
    assert!(
        out.contains("installed /etc/dispatch/dispatch.hcl"),
        "{out}"
    );
    for (path, want) in [
        ("usr/local/bin/dispatch", 0o755),
        ("usr/local/libexec/dispatch/transcode.sh", 0o755),
        ("etc/systemd/system/dispatch.service", 0o644),
        ("etc/dispatch/dispatch.hcl", 0o640),
        ("etc/default/dispatch", 0o640),
        ("var/lib/dispatch", 0o750),
        ("usr/local/share/dispatch/jobs/transcode.hcl", 0o644),
        ("usr/local/share/dispatch/samples/one.txt", 0o644),
        (
            "usr/local/share/dispatch/deploy/grafana/dispatch.json",
            0o644,
        ),
        (
            "usr/local/share/dispatch/deploy/prometheus/rules.yml",
            0o644,
        ),
        (
            "usr/local/share/dispatch/deploy/acl/dispatch-transcode.hcl",
            0o644,
        ),
        ("usr/local/share/dispatch/make-samples.sh", 0o755),
        ("usr/local/share/doc/dispatch/README.md", 0o644),
    ] {
        assert_eq!(mode(&d.join(path)), want, "{path}");
    }
    // the installed files name the final paths, not the staging directory
    let unit = std::fs::read_to_string(d.join("etc/systemd/system/dispatch.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/dispatch server -config /etc/dispatch/dispatch.hcl -config /etc/dispatch/conf.d $DISPATCH_OPTS"),
        "{unit}"
    );
    assert!(!unit.contains(destdir));
    // the installed config is one the server accepts
    let config = dispatch::config::load(
        &[
            d.join("etc/dispatch/dispatch.hcl"),
            d.join("etc/dispatch/conf.d"),
        ],
        &dispatch::config::Flags::default(),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/dispatch"));
    assert_eq!(
        config.local.task_path,
        [PathBuf::from("/usr/local/libexec/dispatch")]
    );

    // again: nothing changed
    let out = ok(&install(&["--destdir", destdir]));
    assert!(
        out.contains("unchanged /etc/dispatch/dispatch.hcl"),
        "{out}"
    );

    // a changed config is kept; the new one lands next to it
    let conf = d.join("etc/dispatch/dispatch.hcl");
    std::fs::write(&conf, "# mine\ndata_dir = \"/srv/dispatch\"\n").unwrap();
    let o = install(&["--destdir", destdir]);
    ok(&o);
    assert!(
        stderr(&o).contains("kept      /etc/dispatch/dispatch.hcl: it has local changes; the new version is /etc/dispatch/dispatch.hcl.new"),
        "{}",
        show(&o)
    );
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .starts_with("# mine"));
    assert!(d.join("etc/dispatch/dispatch.hcl.new").exists());

    // --force replaces it and keeps the user's version as .old
    let out = ok(&install(&["--destdir", destdir, "--force"]));
    assert!(
        out.contains("replaced  /etc/dispatch/dispatch.hcl (--force"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(d.join("etc/dispatch/dispatch.hcl.old"))
            .unwrap()
            .starts_with("# mine")
    );
    assert!(!std::fs::read_to_string(&conf)
        .unwrap()
        .starts_with("# mine"));

    // bad arguments
    let o = install(&["--prefix", "relative"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("must be absolute paths"),
        "{}",
        show(&o)
    );
    let o = run(Command::new(repo_root().join("scripts/install.sh")).args([
        "--binary",
        "/no/such/dispatch",
        "--destdir",
        destdir,
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such executable"), "{}", show(&o));
}

/// The unit as installed into a tree whose paths exist (ExecStart names a real binary),
/// verified by systemd; then the installed binary and config really start.
#[test]
fn the_installed_unit_verifies_and_its_command_starts_the_server() {
    need(
        "systemd-analyze",
        "apt-get install systemd (scripts/test-deps.sh)",
    );
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let (prefix, etc, var) = (r.join("usr"), r.join("etc"), r.join("var"));
    ok(&install(&[
        "--prefix",
        prefix.to_str().unwrap(),
        "--sysconfdir",
        etc.to_str().unwrap(),
        "--localstatedir",
        var.to_str().unwrap(),
    ]));
    let unit = etc.join("systemd/system/dispatch.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let exec = format!(
        "ExecStart={}/bin/dispatch server -config {etc}/dispatch/dispatch.hcl -config {etc}/dispatch/conf.d $DISPATCH_OPTS",
        prefix.display(),
        etc = etc.display()
    );
    assert!(text.contains(&exec), "{text}");
    let o = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        stderr(&o).trim(),
        "",
        "systemd-analyze warnings:\n{}",
        show(&o)
    );

    // systemd-analyze does reject a broken unit (the check above can fail)
    let broken = r.join("broken.service");
    std::fs::write(
        &broken,
        text.replace(
            &format!("{}/bin/dispatch", prefix.display()),
            "/no/such/dispatch",
        ),
    )
    .unwrap();
    let o = run(Command::new("systemd-analyze").arg("verify").arg(&broken));
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));

    // The Mesos units (deploy/mesos): their binaries are not on this machine, so they are
    // verified with ExecStart pointing at an existing program instead.
    for name in ["mesos-master.service", "mesos-agent.service"] {
        let text = std::fs::read_to_string(repo_root().join("deploy/mesos").join(name)).unwrap();
        let copy = r.join(name);
        let stand_in = std::fs::canonicalize(env!("CARGO_BIN_EXE_dispatch")).unwrap();
        std::fs::write(
            &copy,
            text.replace(
                &format!("/opt/mesos/sbin/{}", name.trim_end_matches(".service")),
                stand_in.to_str().unwrap(),
            ),
        )
        .unwrap();
        let o = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", show(&o));
        assert_eq!(stderr(&o).trim(), "", "{name}: {}", show(&o));
    }

    // What ExecStart runs: the installed binary with the installed config directory
    // (any free port instead of 4646, which flags may override; everything else from the
    // files).
    let log = r.join("server.log");
    let mut child = Command::new(prefix.join("bin/dispatch"))
        .args(["server", "-config"])
        .arg(etc.join("dispatch/dispatch.hcl"))
        .arg("-config")
        .arg(etc.join("dispatch/conf.d"))
        .args(["-bind", "127.0.0.1:0"])
        .env_remove("DISPATCH_DATA_DIR")
        .env_remove("DISPATCH_LOG")
        .current_dir(var.join("lib/dispatch"))
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let answered = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let bound = common::listening_addr(&std::fs::read_to_string(&log).unwrap_or_default());
            if bound.is_some_and(|a| common::http_get_status(a, "/v1/status/leader") == Some(200)) {
                break true;
            }
            if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(answered, "the installed server did not start:\n{log}");
    assert!(var.join("lib/dispatch/dispatch.sqlite").exists(), "{log}");
    assert!(log.contains("configuration loaded from"), "{log}");
}

#[test]
fn vagrantfile_validates() {
    need("vagrant", "apt-get install vagrant (scripts/test-deps.sh)");
    // vagrant writes .vagrant/ next to the Vagrantfile: validate a copy
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("Vagrantfile"),
        dir.path().join("Vagrantfile"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("deploy/vagrant")).unwrap();
    std::fs::copy(
        repo_root().join("deploy/vagrant/provision.sh"),
        dir.path().join("deploy/vagrant/provision.sh"),
    )
    .unwrap();
    for mesos in ["0", "1"] {
        // --ignore-provider: no VirtualBox or libvirt here, so their blocks are not checked
        let o = run(Command::new("vagrant")
            .args(["validate", "--ignore-provider"])
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .env("DISPATCH_VAGRANT_MESOS", mesos)
            .current_dir(dir.path()));
        let out = ok(&o);
        assert!(
            out.contains("Vagrantfile validated successfully"),
            "{}",
            show(&o)
        );
    }
    // and a mistake is caught (the provisioning script must exist)
    std::fs::remove_file(dir.path().join("deploy/vagrant/provision.sh")).unwrap();
    let o = run(Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .current_dir(dir.path()));
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
}

/// Shell scripts of the repository: `*.sh`, and files whose first line is a sh/bash shebang.
fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if ![".git", "target", ".terraform", ".vagrant", "node_modules"]
                .contains(&name.as_str())
            {
                shell_scripts(&path, out);
            }
            continue;
        }
        let mut head = [0u8; 64];
        let n = std::fs::File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        let first = String::from_utf8_lossy(&head[..n]);
        let first = first.lines().next().unwrap_or_default();
        let shebang = first.starts_with("#!")
            && ["/sh", "/bash", "env sh", "env bash"]
                .iter()
                .any(|s| first.ends_with(s));
        if name.ends_with(".sh") || shebang {
            out.push(path);
        }
    }
}

#[test]
fn every_shell_script_passes_shellcheck() {
    need(
        "shellcheck",
        "apt-get install shellcheck (scripts/test-deps.sh)",
    );
    let mut scripts = Vec::new();
    shell_scripts(repo_root(), &mut scripts);
    scripts.sort();
    let names: BTreeSet<String> = scripts
        .iter()
        .map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect();
    for expected in [
        "scripts/test",
        "scripts/test-deps.sh",
        "scripts/install.sh",
        "scripts/dispatch.sh",
        "scripts/transcode.sh",
        "scripts/make-samples.sh",
        "deploy/vagrant/provision.sh",
        "deploy/monitoring/setup.sh",
        "deploy/mesos/build-mesos.sh",
        "deploy/terraform/aws/files/node-setup.sh",
        "deploy/terraform/aws/files/agent-guard.sh",
        "deploy/terraform/aws/files/queue-metrics.sh",
        "deploy/terraform/aws/image/build-image.sh",
        "deploy/terraform/aws/templates/user-data.sh.tftpl",
        ".ci/run",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not found among {names:?}"
        );
    }
    let o = run(Command::new("shellcheck")
        .arg("--external-sources")
        .args(&scripts));
    assert_eq!(o.status.code(), Some(0), "shellcheck:\n{}", show(&o));
}

// ---- Terraform and Packer ----

fn terraform_dir() -> PathBuf {
    repo_root().join("deploy/terraform/aws")
}

fn tf_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(terraform_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    files
}

/// Declared variables (name -> (has a description, has a type)) and the text outside every
/// `variable` block, where uses are looked for.
fn variables_and_uses(files: &[PathBuf]) -> (BTreeMap<String, (bool, bool)>, String) {
    use hcl::edit::structure::Structure;
    use hcl::edit::Span;
    let mut declared = BTreeMap::new();
    let mut outside = String::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let body = hcl::edit::parser::parse_body(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut last = 0;
        for s in body.iter() {
            let Structure::Block(b) = s else { continue };
            if b.ident.as_str() != "variable" {
                continue;
            }
            let name = b.labels[0].as_str().to_string();
            let description = b.body.attributes().any(|a| {
                a.key.as_str() == "description"
                    && a.value.as_str().is_some_and(|d| d.trim().len() > 10)
            });
            let typed = b.body.attributes().any(|a| a.key.as_str() == "type");
            assert!(
                declared
                    .insert(name.clone(), (description, typed))
                    .is_none(),
                "variable {name} declared twice"
            );
            let span = b.span().expect("parsed blocks have spans");
            outside.push_str(&text[last..span.start]);
            last = span.end;
        }
        outside.push_str(&text[last..]);
    }
    (declared, outside)
}

fn references(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before_ok = i == 0
            || !rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        let after = &rest[i + prefix.len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if before_ok && !name.is_empty() {
            out.insert(name);
        }
        rest = &rest[i + prefix.len()..];
    }
    out
}

#[test]
fn every_terraform_variable_is_declared_described_and_used() {
    let files = tf_files();
    assert!(files.len() >= 8, "{files:?}");
    let (declared, outside) = variables_and_uses(&files);
    let used = references(&outside, "var.");
    for (name, (described, typed)) in &declared {
        assert!(described, "variable {name:?} has no description");
        assert!(typed, "variable {name:?} has no type");
        assert!(
            used.contains(name),
            "variable {name:?} is declared but never used"
        );
    }
    for name in &used {
        assert!(
            declared.contains_key(name),
            "var.{name} is used but not declared"
        );
    }
    for expected in [
        "datadog_api_key",
        "datadog_app_key",
        "client_count",
        "agent_min",
        "agent_max",
        "admin_cidrs",
        "client_cidrs",
        "dispatch_acl_enabled",
        "dispatch_tls",
    ] {
        assert!(declared.contains_key(expected), "{expected}");
    }
    // every output says what it is
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let body: hcl::Body = hcl::from_str(&text).unwrap();
        for block in body.blocks().filter(|b| b.identifier() == "output") {
            assert!(
                block.body().attributes().any(|a| a.key() == "description"),
                "output {:?} in {} has no description",
                block.labels(),
                file.display()
            );
        }
    }
    let outputs = std::fs::read_to_string(terraform_dir().join("outputs.tf")).unwrap();
    for name in ["dispatch_addr", "grafana_url", "datadog_dashboard_url"] {
        assert!(outputs.contains(&format!("output \"{name}\"")), "{name}");
    }
    // the example sets only declared variables
    let example =
        std::fs::read_to_string(terraform_dir().join("terraform.tfvars.example")).unwrap();
    let example: hcl::Body = hcl::from_str(&example).unwrap();
    for attr in example.attributes() {
        assert!(
            declared.contains_key(attr.key()),
            "tfvars example sets unknown {}",
            attr.key()
        );
    }
    // The Packer template parses too, and its variables are described and used.
    let packer = terraform_dir().join("image/dispatch-mesos.pkr.hcl");
    let (declared, outside) = variables_and_uses(std::slice::from_ref(&packer));
    let used = references(&outside, "var.");
    assert!(!declared.is_empty());
    for (name, (described, _)) in &declared {
        assert!(
            *described && used.contains(name),
            "packer variable {name:?}"
        );
    }
}

/// A copy of deploy/ and a CLI config that installs providers from the offline mirror.
struct TerraformCopy {
    _dir: tempfile::TempDir,
    module: PathBuf,
    cli_config: PathBuf,
}

const MIRROR: &str = "/opt/tf-plugins";

fn terraform_copy() -> TerraformCopy {
    need(
        "terraform",
        "install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)",
    );
    assert!(
        Path::new(MIRROR)
            .join("registry.terraform.io/hashicorp/aws")
            .is_dir(),
        "no provider mirror at {MIRROR}: create one with `terraform providers mirror {MIRROR}` in deploy/terraform/aws (needs registry access once)"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("deploy"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let module = dir.path().join("deploy/terraform/aws");
    let _ = std::fs::remove_dir_all(module.join(".terraform"));
    let _ = std::fs::remove_file(module.join(".terraform.lock.hcl"));
    let cli_config = dir.path().join("terraform.rc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{MIRROR}\"\n    include = [\"registry.terraform.io/*/*\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/*/*\"]\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let t = TerraformCopy {
        _dir: dir,
        module,
        cli_config,
    };
    let o = run(t
        .terraform()
        .args(["init", "-backend=false", "-input=false", "-no-color"]));
    ok(&o);
    t
}

impl TerraformCopy {
    fn terraform(&self) -> Command {
        let mut cmd = Command::new("terraform");
        cmd.current_dir(&self.module)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            // no credentials: nothing here may talk to AWS
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    }

    /// Evaluate an expression with `terraform console`; JSON-encode it to read it back.
    fn eval_json(&self, vars: &[&str], expr: &str) -> serde_json::Value {
        let mut cmd = self.terraform();
        cmd.args(["console", "-no-color"]);
        for v in vars {
            cmd.args(["-var", v]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("jsonencode({expr})\n").as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let text = ok(&o);
        // console prints the JSON document as an HCL string literal
        let literal: String =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
        serde_json::from_str(&literal).unwrap()
    }
}

#[test]
fn terraform_is_formatted_and_validates_offline() {
    let t = terraform_copy();
    let o = run(t.terraform().args(["fmt", "-check", "-diff", "-no-color"]));
    assert_eq!(o.status.code(), Some(0), "terraform fmt:\n{}", show(&o));
    let o = run(t.terraform().args(["validate", "-no-color"]));
    assert!(
        ok(&o).contains("The configuration is valid"),
        "{}",
        show(&o)
    );
    // the variables' own checks hold: the API is never opened to the whole internet
    for (var, want) in [
        (
            "client_cidrs=[\"0.0.0.0/0\"]",
            "would expose the API to the whole internet",
        ),
        ("master_count=2", "master_count: 1, 3 or 5"),
    ] {
        let o = run(t.terraform().args([
            "console",
            "-no-color",
            "-var",
            "image_id=ami-0123456789abcdef0",
            "-var",
            var,
        ]));
        // (console itself exits 0 on stdin's end; the refusal is on stderr)
        assert!(
            stderr(&o).contains("Invalid value for variable"),
            "{var}: {}",
            show(&o)
        );
        assert!(stderr(&o).contains(want), "{var}: {}", show(&o));
    }
}

/// The config Terraform writes for the server (templates/dispatch-cluster.hcl.tftpl),
/// rendered by Terraform itself, over the installed dispatch.hcl, read by Dispatch's own
/// config loader; and the user data, rendered the same way, passes shellcheck.
#[test]
fn terraform_renders_a_config_the_server_accepts_and_user_data_that_passes_shellcheck() {
    let t = terraform_copy();
    for (masters, want) in [
        ("1", vec!["http://10.42.0.10:5050"]),
        (
            "3",
            vec![
                "http://10.42.0.10:5050",
                "http://10.42.1.10:5050",
                "http://10.42.0.11:5050",
            ],
        ),
    ] {
        let rendered = t.eval_json(
            &[
                "image_id=ami-0123456789abcdef0",
                &format!("master_count={masters}"),
            ],
            "local.dispatch_config",
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            repo_root().join("deploy/dispatch.hcl"),
            dir.path().join("dispatch.hcl"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        // the bootstrap token the server makes at first boot, here in the temp dir
        let token = dir.path().join("bootstrap.token");
        std::fs::write(&token, "3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a\n").unwrap();
        let text = rendered.as_str().unwrap();
        assert!(
            text.contains("bootstrap_token_file = \"/etc/dispatch/bootstrap.token\""),
            "{text}"
        );
        std::fs::write(
            dir.path().join("conf.d/50-cluster.hcl"),
            text.replace("/etc/dispatch/bootstrap.token", token.to_str().unwrap()),
        )
        .unwrap();
        // as the unit reads them: dispatch.hcl, then the drop-ins
        let config = dispatch::config::load(
            &[dir.path().join("dispatch.hcl"), dir.path().join("conf.d")],
            &dispatch::config::Flags::default(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
        let mesos = config.mesos.expect("mesos");
        assert_eq!(mesos.masters.describe(), want);
        assert_eq!(mesos.roles, ["dispatch"]);
        assert_eq!(config.bind.to_string(), "0.0.0.0:4646");
        assert_eq!(config.advertise.as_deref(), Some("http://10.42.0.5:4646"));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/dispatch"));
        assert!(config.acl.enabled && !config.acl.open, "ACLs on by default");
        assert!(config.acl.bootstrap_token.is_some());
        assert!(config.drivers.allows("raw_exec"));
    }

    let user_data = t.eval_json(
        &["image_id=ami-0123456789abcdef0"],
        // one line: console reads an expression per line
        concat!(
            r#"templatefile("templates/user-data.sh.tftpl", { "#,
            r#"settings = "NODE_ROLE='agent'\nCLUSTER_NAME='dispatch'", "#,
            r#"node_setup = file("files/node-setup.sh"), "#,
            r#"agent_guard = file("files/agent-guard.sh"), "#,
            r#"queue_metrics = file("files/queue-metrics.sh") })"#,
        ),
    );
    let script = user_data.as_str().unwrap();
    assert!(script.contains("NODE_ROLE='agent'"), "{script}");
    assert!(script.contains("setup_agent()"), "{script}");
    need(
        "shellcheck",
        "apt-get install shellcheck (scripts/test-deps.sh)",
    );
    let mut child = Command::new("shellcheck")
        .args(["--shell=bash", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "rendered user data:\n{}",
        show(&o)
    );
}

// ---- the queue metric the agents scale on ----

fn queue_metrics(server_url: &str, masters: &str) -> BTreeMap<String, String> {
    let o = run(Command::new(terraform_dir().join("files/queue-metrics.sh"))
        .arg("--print")
        .env("DISPATCH_ADDR", server_url)
        .env("AGENT_CPUS", "2")
        .env("AGENT_MEMORY_MB", "1024")
        .env("MASTER_IPS", masters));
    ok(&o)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn queue_metrics_come_from_a_real_servers_metrics() {
    need("jq", "apt-get install jq (scripts/test-deps.sh)");
    // nothing runs (no cpus to offer): every dispatch stays pending
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    let transcode = repo_root().join("jobs/transcode.hcl");
    ok(&common::dispatch(
        &server,
        &["job", "run", transcode.to_str().unwrap()],
    ));
    for i in 0..5 {
        ok(&common::dispatch(
            &server,
            &[
                "job",
                "dispatch",
                "-detach",
                "-meta",
                &format!("input=/in/{i}.mp4"),
                "transcode",
            ],
        ));
    }
    // 5 x (1000 MHz = 1 cpu, 256 MB): 5 cpus and 1280 MB wait; 2-cpu / 1 GB agents
    let m = queue_metrics(&server.url(), "");
    assert_eq!(m["PendingCpus"], "5.000", "{m:?}");
    assert_eq!(m["PendingMemoryMB"], "1280", "{m:?}");
    assert_eq!(m["AgentsWanted"], "3", "{m:?}");
    assert_eq!(m["AgentsIdle"], "0", "something is pending: {m:?}");

    // Nothing pending: idle agents from the leading master's /metrics/snapshot (a real
    // HTTP server serving a snapshot in the master's shape; the first master listed is
    // not the leader).
    let idle = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let serve = |elected: f64, total: f64, used: f64| {
        let root = tempfile::tempdir_in(dir.path()).unwrap();
        std::fs::create_dir_all(root.path().join("metrics")).unwrap();
        std::fs::write(
            root.path().join("metrics/snapshot"),
            format!("{{\"master\\/elected\":{elected},\"master\\/cpus_total\":{total},\"master\\/cpus_used\":{used}}}"),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_until(10, "the master stand-in", || {
            common::http_get_status(addr, "/metrics/snapshot") == Some(200)
        });
        (child, root, port)
    };
    let (mut standby, _r1, p1) = serve(0.0, 0.0, 0.0);
    let (mut leader, _r2, p2) = serve(1.0, 8.0, 1.5);
    let m = queue_metrics(&idle.url(), &format!("127.0.0.1:{p1},127.0.0.1:{p2}"));
    let _ = standby.kill();
    let _ = leader.kill();
    let _ = standby.wait();
    let _ = leader.wait();
    assert_eq!(m["PendingCpus"], "0.000", "{m:?}");
    assert_eq!(m["AgentsWanted"], "0", "{m:?}");
    assert_eq!(
        m["AgentsIdle"], "3",
        "6.5 idle cpus = 3 whole 2-cpu agents: {m:?}"
    );
}

// ---- the demo's path: samples and scripts/dispatch.sh, offline ----

#[test]
fn dispatch_script_runs_the_samples_offline() {
    need("ffmpeg", "apt-get install ffmpeg (scripts/test-deps.sh)");
    let o = run(&mut Command::new(
        repo_root().join("scripts/make-samples.sh"),
    ));
    ok(&o);
    let one = std::fs::read_to_string(repo_root().join("samples/one.txt")).unwrap();
    let many = std::fs::read_to_string(repo_root().join("samples/many.txt")).unwrap();
    assert_eq!(one.lines().count(), 1);
    assert_eq!(many.lines().count(), 9);
    for line in one.lines().chain(many.lines()) {
        assert!(Path::new(line).is_file(), "{line} was not made");
    }

    let server = TestServer::start();
    let transcode = repo_root().join("jobs/transcode.hcl");
    ok(&common::dispatch(
        &server,
        &["job", "run", transcode.to_str().unwrap()],
    ));
    let o = run(Command::new(repo_root().join("scripts/dispatch.sh"))
        .arg(repo_root().join("samples/one.txt"))
        .env("DISPATCH_BIN", env!("CARGO_BIN_EXE_dispatch"))
        .env("DISPATCH_ADDR", server.url())
        .env_remove("NOMAD_ADDR"));
    let out = ok(&o);
    assert!(
        out.starts_with(&format!("Input file: {}\n", one.trim())),
        "{out}"
    );
    let children: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Dispatched Job ID = "))
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(children.len(), 2, "small and large: {out}");
    for child in &children {
        wait_until(120, &format!("{child} to finish"), || {
            common::status_of(&server, child) == "dead"
        });
        let runs = common::task_runs(&server, child);
        assert!(
            runs.iter().any(|r| r["State"] == "TASK_FINISHED"),
            "{child}: {runs:?}"
        );
    }
}
