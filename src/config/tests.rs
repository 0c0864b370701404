use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn load_one(path: &Path) -> Result<Config, ConfigError> {
    load(&[path.to_path_buf()], &Flags::default(), false)
}

fn err_text(path: &Path) -> String {
    load_one(path).expect_err("should be refused").to_string()
}

#[test]
fn every_block_of_an_hcl_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "secret", "s3cr3t\n");
    let hcl = format!(
        r#"
# comments are fine
data_dir  = "/var/lib/dispatch"
bind_addr = "0.0.0.0"
ports {{
  http = 5646
}}
advertise {{
  http = "dispatch.internal"
}}
log_level = "WARN"
acl {{
  enabled = false
}}
mesos {{
  master           = ["10.0.0.5:5050", "http://10.0.0.6:5050"]
  role             = ["batch", "gpu"]
  principal        = "dispatch"
  secret_file      = "{secret}"
  content_type     = "json"
  framework_name   = "dispatch-prod"
  user             = "nobody"
  failover_timeout = "24h"
  capabilities     = "GPU_RESOURCES"
  alloc_dir        = "/srv/allocs"
  max_backoff      = "30s"
}}
local_runner {{
  cpus      = 3.5
  memory_mb = 2048
  disk_mb   = 10000
  gpus      = 0
  task_path = ["/usr/local/libexec/dispatch"]
}}
telemetry {{
  statsd_address = "127.0.0.1:8125"
}}
gc {{
  threshold = "off"
  interval  = "1m"
}}
"#,
        secret = secret.display()
    );
    let path = write(dir.path(), "dispatch.hcl", &hcl);
    let c = load_one(&path).expect("loads");
    assert_eq!(c.files, vec![path]);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/dispatch"));
    assert_eq!(c.bind.to_string(), "0.0.0.0:5646");
    assert_eq!(
        c.advertise.as_deref(),
        Some("http://dispatch.internal:5646")
    );
    assert_eq!(c.log_level.filter, "warn");
    let m = c.mesos.expect("mesos");
    assert_eq!(
        m.masters.describe(),
        ["http://10.0.0.5:5050", "http://10.0.0.6:5050"]
    );
    assert_eq!(m.roles, ["batch", "gpu"]);
    assert_eq!(m.secret.as_deref(), Some("s3cr3t"));
    assert_eq!(m.principal.as_deref(), Some("dispatch"));
    assert_eq!(m.encoding, crate::cluster::mesos::codec::Encoding::Json);
    assert_eq!(m.framework_name, "dispatch-prod");
    assert_eq!(m.user, "nobody");
    assert_eq!(m.failover_timeout, Duration::from_secs(24 * 3600));
    assert!(m.capabilities.contains(&"GPU_RESOURCES".to_string()));
    assert_eq!(m.alloc_dir, "/srv/allocs");
    assert_eq!(m.max_backoff, Duration::from_secs(30));
    assert_eq!(m.advertise_url, "http://dispatch.internal:5646");
    assert_eq!(c.local.cpus, Some(3.5));
    assert_eq!(c.local.mem_mb, Some(2048.0));
    assert_eq!(c.local.disk_mb, Some(10000.0));
    assert_eq!(c.local.gpus, Some(0.0));
    assert_eq!(
        c.local.task_path,
        [PathBuf::from("/usr/local/libexec/dispatch")]
    );
    assert_eq!(c.statsd_addr.as_deref(), Some("127.0.0.1:8125"));
    assert_eq!(c.gc.threshold, None);
    assert_eq!(c.gc.interval, Duration::from_secs(60));
}

#[test]
fn defaults_without_files_or_flags() {
    let c = load(&[], &Flags::default(), false).expect("defaults");
    assert_eq!(c.bind.to_string(), "127.0.0.1:4646");
    assert_eq!(c.data_dir, PathBuf::from("dispatch-data"));
    assert_eq!(c.log_level.filter, "info");
    assert!(c.mesos.is_none());
    assert_eq!(c.gc.threshold, Some(crate::gc::DEFAULT_THRESHOLD));
    let dev = load(&[], &Flags::default(), true).expect("dev");
    assert_eq!(dev.log_level.filter, "debug,hyper=info");
}

#[test]
fn a_directory_loads_hcl_and_json_in_name_order_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    std::fs::create_dir(&conf).unwrap();
    write(
        &conf,
        "10-base.hcl",
        "data_dir = \"/a\"\nports { http = 1111 }\nlog_level = \"debug\"\ngc { interval = \"1m\" }\n",
    );
    write(
        &conf,
        "20-site.json",
        "{\n  \"ports\": {\"http\": 2222},\n  \"local_runner\": {\"cpus\": 2}\n}\n",
    );
    // not loaded: other extensions and editor leftovers
    write(&conf, "30-notes.txt", "this is not a config file");
    write(&conf, "40-x.hcl~", "bogus = 1");
    write(&conf, ".#50-y.hcl", "bogus = 1");
    let extra = write(dir.path(), "extra.hcl", "gc { interval = \"2m\" }\n");
    let flags = Flags {
        log_level: Some("error".into()),
        local_cpus: Some(1.0),
        ..Flags::default()
    };
    let c = load(&[conf.clone(), extra.clone()], &flags, false).expect("loads");
    assert_eq!(
        c.files,
        [conf.join("10-base.hcl"), conf.join("20-site.json"), extra]
    );
    assert_eq!(c.data_dir, PathBuf::from("/a"));
    assert_eq!(c.bind.port(), 2222, "the later file wins");
    assert_eq!(
        c.gc.interval,
        Duration::from_secs(120),
        "later -config wins"
    );
    assert_eq!(c.log_level.filter, "error", "a flag wins over every file");
    assert_eq!(c.local.cpus, Some(1.0), "a flag wins over every file");
    // -bind sets both address and port over the files
    let flags = Flags {
        bind: Some("127.0.0.2:3333".parse().unwrap()),
        ..Flags::default()
    };
    let c = load(&[conf], &flags, false).expect("loads");
    assert_eq!(c.bind.to_string(), "127.0.0.2:3333");
}

#[test]
fn unknown_keys_name_file_line_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "d.hcl",
        "data_dir = \"/x\"\nmesos {\n  master = \"m:5050\"\n  rolee = \"batch\"\n}\n",
    );
    let e = err_text(&p);
    assert!(
        e.starts_with(&format!(
            "{}:4: mesos.rolee: unknown key; the mesos block allows: master,",
            p.display()
        )),
        "{e}"
    );
    let p = write(dir.path(), "t.hcl", "\n\ndatacenter = \"dc1\"\n");
    let e = err_text(&p);
    assert!(
        e.starts_with(&format!(
            "{}:3: datacenter: unknown key; the top level allows: data_dir",
            p.display()
        )),
        "{e}"
    );
    let p = write(
        dir.path(),
        "j.json",
        "{\n  \"data_dir\": \"/x\",\n  \"local_runner\": {\n    \"cpu\": 2\n  }\n}\n",
    );
    let e = err_text(&p);
    assert!(
        e.starts_with(&format!(
            "{}:4: local_runner.cpu: unknown key;",
            p.display()
        )),
        "{e}"
    );
}

#[test]
fn wrong_types_and_bad_values_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "ports { http = \"4646\" }\n",
            ":1: ports.http: must be a port number, not a string",
        ),
        (
            "ports {\n  http = 70000\n}\n",
            ":2: ports.http: 70000 is not a port; expected 0 to 65535",
        ),
        (
            "local_runner {\n  cpus = -1\n}\n",
            ":2: local_runner.cpus: -1 must be a number of at least 0",
        ),
        (
            "gc {\n  interval = \"5 minutes\"\n}\n",
            ":2: gc.interval: \"5 minutes\" is not a duration",
        ),
        (
            "gc {\n  interval = \"0s\"\n}\n",
            ":2: gc.interval: must be more than 0",
        ),
        (
            "log_level = \"loud\"\n",
            ":1: log_level: \"loud\" is not a log level",
        ),
        (
            "bind_addr = \"localhost\"\n",
            ":1: bind_addr: \"localhost\" is not an IP address",
        ),
        (
            "data_dir = \"relative/dir\"\n",
            ":1: data_dir: \"relative/dir\" must be an absolute path",
        ),
        (
            "mesos {\n  master = \"zk://z:2181\"\n}\n",
            ":2: mesos.master: \"zk://z:2181\" is not a ZooKeeper URL",
        ),
        (
            "mesos {\n  master = \"m\"\n  content_type = \"xml\"\n}\n",
            ":3: mesos.content_type: \"xml\" is not an encoding",
        ),
        (
            "mesos {\n  master = \"m\"\n  capabilities = [\"FLY\"]\n}\n",
            ":3: mesos.capabilities: unknown capability \"FLY\"",
        ),
        (
            "mesos {\n  master = \"m\"\n  role = \"-bad\"\n}\n",
            ":3: mesos.role: \"-bad\" is not a valid role name",
        ),
        (
            "acl = true\n",
            ":1: acl: must be a block (acl { ... }), not a bool",
        ),
        (
            "acl {\n  enabled = \"yes\"\n}\n",
            ":2: acl.enabled: must be true or false, not a string",
        ),
        (
            "telemetry {\n  statsd_address = \"8125\"\n}\n",
            ":2: telemetry.statsd_address: \"8125\" is not an address",
        ),
        (
            "log_level = \"info-${x}\"\n",
            ":1: log_level: only literal values are allowed",
        ),
        ("mesos \"x\" {\n}\n", ":1: mesos: blocks take no label here"),
        (
            "gc {\n}\ngc {\n}\n",
            ":3: gc is given twice in this file (first on line 1)",
        ),
        ("data_dir = \n", ":1: invalid HCL"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = write(dir.path(), &format!("c{i}.hcl"), text);
        let e = err_text(&p);
        let prefix = p.display().to_string();
        assert!(
            e.starts_with(&prefix) && e[prefix.len()..].starts_with(want),
            "{text:?}: {e}"
        );
    }
    let p = write(
        dir.path(),
        "bad.json",
        "{\n  \"data_dir\": \"/x\",\n  \"ports\": {\"http\": 1,}\n}\n",
    );
    let e = err_text(&p);
    assert!(
        e.starts_with(&format!("{}:3: invalid JSON", p.display())),
        "{e}"
    );
    let p = write(dir.path(), "list.json", "[1]");
    assert!(err_text(&p).contains("holds one object"));
}

#[test]
fn files_that_must_be_readable_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let p = write(
        dir.path(),
        "tls.hcl",
        &format!(
            "tls {{\n  http = false\n  cert_file = \"{}\"\n}}\n",
            missing.display()
        ),
    );
    let e = err_text(&p);
    assert!(
        e.starts_with(&format!(
            "{}:3: tls.cert_file: cannot read {}",
            p.display(),
            missing.display()
        )),
        "{e}"
    );
    let p = write(
        dir.path(),
        "secret.hcl",
        &format!(
            "mesos {{\n  master = \"m\"\n  principal = \"p\"\n  secret_file = \"{}\"\n}}\n",
            missing.display()
        ),
    );
    let e = err_text(&p);
    assert!(
        e.starts_with(&format!(
            "{}:4: mesos.secret_file: cannot read",
            p.display()
        )),
        "{e}"
    );
    let flags = Flags {
        mesos_master: Some("m".into()),
        mesos_principal: Some("p".into()),
        mesos_secret_file: Some(missing.clone()),
        ..Flags::default()
    };
    let e = load(&[], &flags, false)
        .expect_err("unreadable")
        .to_string();
    assert!(e.starts_with("-mesos-secret-file: cannot read"), "{e}");
    let e = load(std::slice::from_ref(&missing), &Flags::default(), false)
        .expect_err("no such config")
        .to_string();
    assert!(
        e.starts_with(&format!("{}: cannot read", missing.display())),
        "{e}"
    );
}

#[test]
fn acl_settings_and_tls_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(
        dir.path(),
        "boot.token",
        "3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a\n",
    );
    let p = write(
        dir.path(),
        "acl.hcl",
        &format!(
            "bind_addr = \"0.0.0.0\"\nacl {{\n  enabled = true\n  bootstrap_token_file = \"{}\"\n}}\n",
            token.display()
        ),
    );
    let c = load_one(&p).expect("ACLs on: may listen beyond loopback");
    assert!(c.acl.enabled && !c.acl.open);
    assert_eq!(
        c.acl.bootstrap_token.as_ref().map(|s| s.value()),
        Some("3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a")
    );
    let bad = write(dir.path(), "bad.token", "hunter2\n");
    let p = write(
        dir.path(),
        "acl2.hcl",
        &format!(
            "acl {{\n  bootstrap_token_file = \"{}\"\n}}\n",
            bad.display()
        ),
    );
    assert!(
        err_text(&p).contains(":2: acl.bootstrap_token_file: ")
            && err_text(&p).contains("must hold a token secret (a UUID"),
        "{}",
        err_text(&p)
    );
    let cert = write(dir.path(), "cert.pem", "x");
    let key = write(dir.path(), "key.pem", "x");
    let p = write(
        dir.path(),
        "tls.hcl",
        &format!(
            "tls {{\n  http = true\n  cert_file = \"{}\"\n  key_file = \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    );
    let e = err_text(&p);
    assert_eq!(
        e,
        format!(
            "{}:3: tls: {}: no certificate in the file (expected PEM \"-----BEGIN CERTIFICATE-----\")",
            p.display(),
            cert.display()
        )
    );
    let p = write(dir.path(), "tls2.hcl", "tls {\n  http = true\n}\n");
    assert!(err_text(&p).contains(
        ":2: tls.http: HTTPS needs a certificate and its key: tls.cert_file and tls.key_file (-tls-cert-file, -tls-key-file)"
    ));
    let p = write(
        dir.path(),
        "tls4.hcl",
        &format!(
            "tls {{\n  http = true\n  cert_file = \"{}\"\n  key_file = \"{}\"\n  verify_clients = true\n}}\n",
            cert.display(),
            key.display()
        ),
    );
    assert!(err_text(&p).contains(
        ":5: tls.verify_https_client: verifying client certificates needs the CA that signs them"
    ));
    // certificates without http = true: accepted, with a warning that they do nothing
    let p = write(
        dir.path(),
        "tls3.hcl",
        &format!("tls {{\n  cert_file = \"{}\"\n  key_file = \"{}\"\n  verify_https_client = false\n}}\n", cert.display(), key.display()),
    );
    let c = load_one(&p).expect("accepted");
    assert_eq!(c.tls.cert_file.as_deref(), Some(cert.as_path()));
    assert!(c.tls.files().is_none());
    assert!(c.warnings[0].contains("plain HTTP"), "{:?}", c.warnings);
}

#[test]
fn limits_drivers_and_the_open_api_rule() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "l.hcl",
        "driver_allowlist = [\"exec\", \"raw_exec\"]\nlimits {\n  http_max_conns = 50\n  http_max_conns_per_client = 0\n  http_header_timeout = \"5s\"\n  https_handshake_timeout = \"2s\"\n  max_pending = 1000\n  dispatch_rate = \"10/20\"\n}\n",
    );
    let c = load_one(&p).expect("loads");
    assert_eq!(c.drivers.allowed(), ["exec", "raw_exec"]);
    assert_eq!(c.conn_limits.max_conns, 50);
    assert_eq!(c.conn_limits.max_conns_per_client, 0);
    assert_eq!(c.conn_limits.header_timeout, Duration::from_secs(5));
    assert_eq!(c.conn_limits.handshake_timeout, Duration::from_secs(2));
    assert_eq!(c.backpressure.max_pending, Some(1000));
    assert_eq!(c.backpressure.dispatch_rate.map(|r| r.burst), Some(20));
    // defaults: raw_exec only with -dev, 100 connections per client, no caps
    let none = write(dir.path(), "none.hcl", "log_level = \"info\"\n");
    let c = load_one(&none).unwrap();
    assert_eq!(c.drivers.allowed(), ["exec", "docker", "mesos_executor"]);
    assert_eq!(c.conn_limits.max_conns_per_client, 100);
    assert_eq!(c.backpressure, Default::default());
    let dev = load(std::slice::from_ref(&none), &Flags::default(), true).unwrap();
    assert!(dev.drivers.allows("raw_exec"));
    // flags win
    let flags = Flags {
        driver_allowlist: Some("docker".into()),
        max_pending: Some(5),
        dispatch_rate: Some("off".into()),
        ..Flags::default()
    };
    let c = load(std::slice::from_ref(&p), &flags, false).unwrap();
    assert_eq!(c.drivers.allowed(), ["docker"]);
    assert_eq!(c.backpressure.max_pending, Some(5));
    assert_eq!(c.backpressure.dispatch_rate, None);
    // bad values name the key
    for (text, want) in [
        (
            "driver_allowlist = \"exec,lxc\"\n",
            ":1: driver_allowlist: unknown driver \"lxc\"",
        ),
        (
            "limits {\n  dispatch_rate = \"fast\"\n}\n",
            ":2: limits.dispatch_rate: \"fast\": \"fast\" is not a rate above 0",
        ),
        (
            "limits {\n  http_max_conns = 0\n}\n",
            ":2: limits.http_max_conns: must be at least 1",
        ),
        (
            "limits {\n  max_pending = -1\n}\n",
            ":2: limits.max_pending: -1 is not a whole number of at least 0",
        ),
    ] {
        let f = write(dir.path(), "bad.hcl", text);
        let e = err_text(&f);
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // beyond loopback: ACLs on, or explicitly off (then the API is open, and says so)
    let open = write(dir.path(), "open.hcl", "bind_addr = \"0.0.0.0\"\n");
    let e = err_text(&open);
    assert!(
        e.starts_with(&format!(
            "{}:1: bind_addr: 0.0.0.0 lets other machines reach the API, and ACLs are off",
            open.display()
        )),
        "{e}"
    );
    let flags = Flags {
        acl_enabled: Some(false),
        ..Flags::default()
    };
    let c = load(&[open], &flags, false).unwrap();
    assert!(c.acl.open && !c.acl.enabled);
    assert!(c.server_config().open);
    let e = load(
        &[],
        &Flags {
            bind: Some("10.1.2.3:4646".parse().unwrap()),
            ..Flags::default()
        },
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("-bind: 10.1.2.3 lets other machines reach the API"),
        "{e}"
    );
}

#[test]
fn rules_across_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "s.hcl",
        "mesos {\n  master = \"m\"\n  secret = \"x\"\n}\n",
    );
    assert!(err_text(&p).contains(":3: mesos.secret: needs a principal"));
    let p = write(
        dir.path(),
        "both.hcl",
        "mesos {\n  master = \"m\"\n  secret = \"x\"\n  secret_file = \"/etc/hostname\"\n}\n",
    );
    assert!(err_text(&p).contains(
        ":4: mesos.secret_file: mesos.secret and mesos.secret_file are mutually exclusive"
    ));
    // a flag secret replaces a file's secret_file (flags win), no conflict
    let flags = Flags {
        mesos_secret: Some("from-flag".into()),
        ..Flags::default()
    };
    let p = write(
        dir.path(),
        "f.hcl",
        "mesos {\n  master = \"m\"\n  principal = \"p\"\n  secret_file = \"/etc/hostname\"\n}\n",
    );
    let c = load(&[p], &flags, false).expect("loads");
    assert_eq!(c.mesos.unwrap().secret.as_deref(), Some("from-flag"));
    // mesos settings without a master do nothing: said in a warning
    let p = write(dir.path(), "r.hcl", "mesos {\n  role = \"batch\"\n}\n");
    let c = load_one(&p).expect("loads");
    assert!(c.mesos.is_none());
    assert!(
        c.warnings[0].contains("without a master"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn reload_applies_the_log_level_and_keeps_the_old_config_when_the_new_one_is_bad() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "d.hcl", "log_level = \"info\"\n");
    let config = load_one(&p).unwrap();
    let applied = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = applied.clone();
    let mut reloader = reload::Reloader::new(vec![p.clone()], Flags::default(), false, config);
    reloader.add(reload::LogLevelTarget::new(move |f| {
        seen.lock().unwrap().push(f.to_string());
        Ok(())
    }));
    write(
        dir.path(),
        "d.hcl",
        "log_level = \"DEBUG\"\nports { http = 9999 }\n",
    );
    assert_eq!(
        reloader.reload(),
        reload::Outcome::Applied {
            changed: vec!["log_level info -> debug".into()],
            needs_restart: vec!["bind_addr / ports.http"],
        }
    );
    assert_eq!(*applied.lock().unwrap(), ["debug"]);
    write(dir.path(), "d.hcl", "log_level = \"trace\"\nbogus = 1\n");
    match reloader.reload() {
        reload::Outcome::Refused(why) => {
            assert!(why.contains(":2: bogus: unknown key"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reloader.current().log_level.filter, "debug", "kept");
    assert_eq!(applied.lock().unwrap().len(), 1, "nothing applied");
    // nothing changed: nothing applied
    write(
        dir.path(),
        "d.hcl",
        "log_level = \"DEBUG\"\nports { http = 9999 }\n",
    );
    assert_eq!(
        reloader.reload(),
        reload::Outcome::Applied {
            changed: vec![],
            needs_restart: vec![],
        }
    );
}

#[test]
fn the_shipped_production_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/dispatch.hcl");
    let layer = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(layer.data_dir.is_some());
    let c = load_one(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/dispatch"));
    assert!(!c.acl.enabled && !c.tls.http);
}

#[test]
fn a_postgres_store_from_a_file_or_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let password = write(dir.path(), "pgpass", "from-the-file\n");
    let conf = write(
        dir.path(),
        "store.hcl",
        &format!(
            "store {{\n  postgres = \"postgres://app@db.internal:6432/dispatch\"\n  password_file = \"{}\"\n  lease = \"4s\"\n}}\n",
            password.display()
        ),
    );
    let c = load_one(&conf).unwrap();
    let store = c.store.expect("a shared store");
    assert_eq!(
        store.target.shown(),
        "postgres://app@db.internal:6432/dispatch"
    );
    assert_eq!(
        store.target.config().get_password(),
        Some(&b"from-the-file"[..])
    );
    assert_eq!(store.lease, Duration::from_secs(4));
    assert!(defaults_store().is_none(), "SQLite by default");

    // the flag wins, with the password in its URL
    let flags = Flags {
        store: Some("postgres://other:pw@10.0.0.9/ha".into()),
        ..Flags::default()
    };
    let c = load(std::slice::from_ref(&conf), &flags, false).unwrap();
    let store = c.store.clone().unwrap();
    assert_eq!(store.target.shown(), "postgres://other@10.0.0.9:5432/ha");
    assert_eq!(store.target.config().get_password(), Some(&b"pw"[..]));
    assert!(
        !format!("{:?}", c.restart_only()).contains("pw@"),
        "the password is never shown"
    );

    let bad = write(
        dir.path(),
        "bad.hcl",
        "store {\n  postgres = \"mysql://a:secret@b/c\"\n}\n",
    );
    let e = err_text(&bad);
    assert!(e.contains("bad.hcl:2: store.postgres:"), "{e}");
    assert!(e.contains("expected postgres://"), "{e}");
    assert!(!e.contains("secret"), "{e}");
    let lease = write(
        dir.path(),
        "lease.hcl",
        "store {\n  postgres = \"postgres://a@b/c\"\n  lease = \"0s\"\n}\n",
    );
    assert!(
        err_text(&lease).contains("expected 1s to 5m"),
        "{}",
        err_text(&lease)
    );
    let alone = write(dir.path(), "alone.hcl", "store {\n  lease = \"5s\"\n}\n");
    assert!(
        err_text(&alone).contains("needs a PostgreSQL store"),
        "{}",
        err_text(&alone)
    );
}

fn defaults_store() -> Option<crate::server::SharedStore> {
    load(&[], &Flags::default(), false).unwrap().store
}
