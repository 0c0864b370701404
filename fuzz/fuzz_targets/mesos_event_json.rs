//! One Mesos scheduler event in JSON, as the master sends it.
#![no_main]

use dispatch::cluster::mesos::codec::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Encoding::Json.decode_event(data);
});
