//! Compiles the Mesos v1 protos in `proto/` into a descriptor set (`OUT_DIR/mesos.bin`) with
//! protox (a protobuf compiler in Rust: no `protoc` needed), for `codec`'s dynamic messages.

use prost::Message;

fn main() {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(["mesos/v1/scheduler/scheduler.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("the Mesos protos do not compile: {e}"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("mesos.bin"), files.encode_to_vec()).expect("write the descriptor set");
}
