//! One Mesos scheduler event in protobuf, as the master sends it, converted to our types.
#![no_main]

use dispatch::cluster::mesos::codec::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Encoding::Protobuf.decode_event(data);
});
