//! The RecordIO decoder of the Mesos event stream, fed in arbitrary chunks (the first byte
//! picks the chunk size) with a small record bound, as a stream arrives from the network.
#![no_main]

use dispatch::cluster::mesos::recordio::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::with_max_record(4096);
    for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => assert!(record.len() <= 4096),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.finish();
    let _ = dispatch::cluster::mesos::recordio::decode_all(rest);
});
