//! Generates the agent API's messages and its ttrpc client and server from
//! proto/agent.proto (the same generator containerd-shim-protos uses).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=proto/agent.proto");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    ttrpc_codegen::Codegen::new()
        .out_dir(&out)
        .inputs(["proto/agent.proto"])
        .include("proto")
        .rust_protobuf()
        .run()
        .expect("generating the agent API from proto/agent.proto");
    // The generated files open with inner attributes and doc comments,
    // which `include!` inside a module refuses: lib.rs states its own.
    for name in ["agent.rs", "agent_ttrpc.rs"] {
        let path = out.join(name);
        let text = std::fs::read_to_string(&path).expect("reading the generated code");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("#![") && !l.starts_with("//!"))
            .collect();
        std::fs::write(&path, kept.join("\n")).expect("writing the generated code");
    }
}
