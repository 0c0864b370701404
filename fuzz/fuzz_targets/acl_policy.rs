//! ACL policy rules as `POST /v1/acl/policy/:name` receives them (HCL or JSON), checked as a
//! policy write is, then merged into a token's rights and asked questions.
#![no_main]

use dispatch::acl::{token, Grants, Level};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rules) = token::check_policy("fuzz", "", text) {
        let g = Grants::of([&rules]);
        let _ = g.job("transcode/dispatch-1-abcd", "dispatch-job");
        let _ = g.some_job("list-jobs");
        let _ = g.agent(Level::Read);
        let _ = serde_json::to_string(&rules);
    }
});
