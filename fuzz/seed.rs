//! Writes the fuzz corpora from the repository's own fixtures (`scripts/fuzz` runs it
//! first): real job files, batch files and recorded Mesos traffic are the starting points
//! the fuzzers mutate. Usage: `seed REPO_ROOT CORPUS_DIR`.

use std::path::{Path, PathBuf};

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| {
        p.is_file()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n != "README.md" && keep(n))
    });
    out.sort();
    out
}

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(name), bytes).expect("corpus file");
        self.written += 1;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (repo, corpus) = match args.as_slice() {
        [_, repo, corpus] => (PathBuf::from(repo), PathBuf::from(corpus)),
        _ => {
            eprintln!("usage: seed REPO_ROOT CORPUS_DIR");
            std::process::exit(2);
        }
    };
    let fixtures = repo.join("tests/fixtures");
    let mut c = Corpus {
        root: corpus,
        written: 0,
    };
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();

    // job files: HCL2, HCL1, JSON
    let mut jobs = files(&fixtures.join("nomad-jobs"), |_| true);
    jobs.extend(files(&fixtures.join("hcl1"), |_| true));
    jobs.extend(files(&repo.join("jobs"), |n| n.ends_with(".hcl")));
    for path in &jobs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let n = name(path);
        if n.ends_with(".json") {
            c.put("job_json", &n, text.as_bytes());
        } else {
            c.put("job_hcl", &n, text.as_bytes());
            c.put("job_hcl1", &n, text.as_bytes());
        }
        if let Ok(parsed) = dispatch::spec::parse_job(&text, &n) {
            let json = serde_json::json!({ "Job": parsed.job }).to_string();
            c.put("job_json", &format!("{n}.json"), json.as_bytes());
        }
    }

    // dispatch run inputs
    let mut batch = files(&fixtures.join("batch"), |_| true);
    batch.extend(files(&repo.join("jobs"), |n| n.ends_with("Mesosfile")));
    for path in &batch {
        c.put("batch_file", &name(path), &std::fs::read(path).unwrap_or_default());
    }

    // dispatch bodies: the first byte picks the job (0 transcode, 1 gif; +0x80 adds a query)
    let bodies = [
        r#"{"Meta": {"input": "/tmp/clip.mp4", "profile": "large"}}"#,
        r#"{"Meta": {"input": "https://example.com/in.mov"}, "Payload": "eyJjcm9wIjogIjE2OjkifQ==", "Priority": 80, "IdPrefixTemplate": "nightly"}"#,
        r#"{"Meta": {"input": "{{ env \"HOME\" }}", "output_dir": "${NOMAD_META_input}/../x"}, "IdempotencyToken": "upload-42"}"#,
        r#"{"JobID": "transcode", "Meta": null, "Payload": null}"#,
    ];
    for (i, body) in bodies.iter().enumerate() {
        for job in [0u8, 1, 0x80, 0x81] {
            let mut seed = vec![job];
            seed.extend_from_slice(body.as_bytes());
            c.put("dispatch_body", &format!("body-{i}-{job}"), &seed);
        }
    }

    // ACL policies
    let mut policies = files(&fixtures.join("acl"), |_| true);
    policies.extend(files(&repo.join("deploy/acl"), |_| true));
    for path in &policies {
        c.put("acl_policy", &name(path), &std::fs::read(path).unwrap_or_default());
    }

    // recorded Mesos traffic: the whole stream for the decoder, each record for the codecs
    for (run, target) in [
        ("json", "mesos_event_json"),
        ("failover-json", "mesos_event_json"),
        ("protobuf", "mesos_event_proto"),
    ] {
        let stream = fixtures.join("mesos-captures").join(run).join("subscribe-stream.recordio");
        let Ok(bytes) = std::fs::read(&stream) else {
            continue;
        };
        for chunk in [1u8, 7, 64, 255] {
            let mut seed = vec![chunk];
            seed.extend_from_slice(&bytes);
            c.put("recordio", &format!("{run}-{chunk}.recordio"), &seed);
        }
        let records = dispatch::cluster::mesos::recordio::decode_all(&bytes).unwrap_or_default();
        for (i, record) in records.iter().enumerate() {
            c.put(target, &format!("{run}-{i:03}"), record);
        }
    }
    println!("seeded {} corpus files in {}", c.written, c.root.display());
}
