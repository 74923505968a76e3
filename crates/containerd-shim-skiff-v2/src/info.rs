//! `-info`: containerd 2.x asks it of a shim before it uses one, and reads
//! from it whether idmapped mounts are supported. The answer is a
//! RuntimeInfo message (containerd's api/types/introspection.proto) on
//! stdout: the runtime's name and version, the runtime options containerd
//! gave on stdin (an Any, echoed as containerd's runc shim does), and the
//! runtime-spec features document (`skiff-oci features`), as an Any of the
//! type URL containerd registers for it.

use std::io::{Read, Write};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{CodedOutputStream, Message};

use crate::error::ShimError;

/// The runtime name containerd knows the shim by.
const NAME: &str = "io.containerd.skiff.v2";
/// containerd's type URL for the runtime-spec features document (JSON).
const FEATURES_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";
/// The most of stdin read (containerd sends a small Any).
const OPTIONS_MAX: u64 = 1 << 20;

pub fn run() -> Result<(), ShimError> {
    let mut options = Vec::new();
    std::io::stdin()
        .take(OPTIONS_MAX)
        .read_to_end(&mut options)
        .map_err(ShimError::io("-info: reading the runtime options"))?;
    let info = encode(&options).map_err(|e| ShimError::Usage(format!("-info: {e}")))?;
    std::io::stdout()
        .write_all(&info)
        .map_err(ShimError::io("-info: writing the runtime info"))
}

/// RuntimeInfo { name = 1, version = 2 { version = 1, revision = 2 },
/// options = 3, features = 4 }.
fn encode(options: &[u8]) -> Result<Vec<u8>, containerd_shim_protos::protobuf::Error> {
    let mut version = Vec::new();
    {
        let mut os = CodedOutputStream::vec(&mut version);
        os.write_string(1, env!("CARGO_PKG_VERSION"))?;
        os.write_string(2, "skiff")?;
        os.flush()?;
    }
    let mut features = Any::new();
    features.type_url = FEATURES_URL.into();
    features.value = skiff_runtime::features::json().to_string().into_bytes();
    let features = features.write_to_bytes()?;
    let mut out = Vec::new();
    {
        let mut os = CodedOutputStream::vec(&mut out);
        os.write_string(1, NAME)?;
        os.write_bytes(2, &version)?;
        if !options.is_empty() {
            os.write_bytes(3, options)?;
        }
        os.write_bytes(4, &features)?;
        os.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::CodedInputStream;

    /// The fields of a message: (number, bytes) for length-delimited ones.
    fn fields(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut is = CodedInputStream::from_bytes(bytes);
        let mut out = Vec::new();
        while !is.eof().unwrap() {
            let tag = is.read_raw_varint32().unwrap();
            assert_eq!(tag & 7, 2, "only length-delimited fields here");
            out.push((tag >> 3, is.read_bytes().unwrap()));
        }
        out
    }

    #[test]
    fn runtime_info_carries_name_version_options_and_features() {
        let mut opts = Any::new();
        opts.type_url = "containerd.runc.v1.Options".into();
        let opts = opts.write_to_bytes().unwrap();
        let info = fields(&encode(&opts).unwrap());
        assert_eq!(info[0], (1, NAME.as_bytes().to_vec()));
        let version = fields(&info[1].1);
        assert_eq!(version[0].1, env!("CARGO_PKG_VERSION").as_bytes());
        assert_eq!(info[2], (3, opts));
        let features = Any::parse_from_bytes(&info[3].1).unwrap();
        assert_eq!(features.type_url, FEATURES_URL);
        let doc: serde_json::Value = serde_json::from_slice(&features.value).unwrap();
        assert_eq!(doc["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    }
}
