//! A job as Nomad API JSON (`PUT /v1/jobs` bodies through the API's decoder, `.json` job
//! files through the spec's): decoded, defaulted, checked, templates compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the register API's own decoder (bytes, any encoding)
    if let Ok(mut job) = dispatch::api::decode_register(data) {
        job.canonicalize();
        if dispatch::spec::validate(&job).is_ok() {
            let _ = dispatch::render::check_job(&job);
        }
    }
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
