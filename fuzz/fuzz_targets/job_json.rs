//! A job as Nomad API JSON (`PUT /v1/jobs` bodies, `.json` job files): decoded, defaulted,
//! checked, templates compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut job) = dispatch::spec::parse_json(text, "fuzz.json") {
        job.canonicalize();
        if dispatch::spec::validate(&job).is_ok() {
            let _ = dispatch::render::check_job(&job);
        }
    }
});
