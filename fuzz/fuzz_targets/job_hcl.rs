//! A job file as `dispatch job run` and `PUT /v1/jobs/parse` read it: HCL2 (or JSON, or HCL1
//! when HCL2 refuses it), then what registration does with it: canonical defaults, Nomad's
//! checks, and compiling every template.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = dispatch::spec::parse_job(text, "fuzz.hcl") {
        let mut job = parsed.job;
        job.canonicalize();
        if dispatch::spec::validate(&job).is_ok() {
            let _ = dispatch::render::check_job(&job);
        }
    }
});
