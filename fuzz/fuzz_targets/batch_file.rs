//! What `dispatch run FILE` reads: Mesosfiles (YAML/JSON), mesos-batch task lists and Org
//! documents, each format forced and auto-detected, then converted into a job.
#![no_main]

use dispatch::batch::{self, Format, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let detected = batch::detect(None, text).ok();
    for format in [Format::Mesosfile, Format::TaskList, Format::Org]
        .into_iter()
        .chain(detected.filter(|f| *f != Format::Hcl))
    {
        if let Ok(b) = batch::parse(format, text, "fuzz") {
            let _ = batch::to_job(b, &Options::default());
        }
    }
});
