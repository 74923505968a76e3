//! At build time: Rust types for the part of CRIU's RPC protocol that
//! checkpoint and restore speak (proto/criu_rpc.proto), by protobuf's
//! pure-Rust parser (no protoc needed). The lite runtime: no reflection,
//! only encoding and decoding.

fn main() {
    println!("cargo:rerun-if-changed=proto/criu_rpc.proto");
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .input("proto/criu_rpc.proto")
        .cargo_out_dir("criu_rpc")
        .customize(protobuf_codegen::Customize::default().lite_runtime(true))
        .run_from_script();
}
