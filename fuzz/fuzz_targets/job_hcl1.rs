//! An HCL1 job file (`PUT /v1/jobs/parse` with `"HCLv1": true`): the token-by-token
//! translation to HCL2, then the HCL2 decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = dispatch::spec::parse_hcl1(text, "fuzz.nomad") {
        let mut job = parsed.job;
        job.canonicalize();
        let _ = dispatch::spec::validate(&job);
    }
});
