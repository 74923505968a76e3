//! The options of containerd's Checkpoint (runc's
//! `containerd.runc.v1.CheckpointOptions`), turned into the library's.

use std::path::Path;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::CheckpointOptions;
use containerd_shim_protos::ttrpc::Code;
use skiff_runtime::container::{CgroupsMode, CriuOptions};

use crate::error::ShimError;

fn invalid(message: String) -> ShimError {
    ShimError::status(Code::INVALID_ARGUMENT, message)
}

/// The request's options; none (ctr without flags) are runc's defaults.
pub fn parse(options: Option<&Any>) -> Result<CheckpointOptions, ShimError> {
    let Some(any) = options.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
        return Ok(CheckpointOptions::default());
    };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != "containerd.runc.v1.CheckpointOptions" {
        return Err(invalid(format!(
            "checkpoint options of type {:?}: the skiff shim takes runc's \
             (containerd.runc.v1.CheckpointOptions)",
            any.type_url
        )));
    }
    CheckpointOptions::parse_from_bytes(&any.value)
        .map_err(|e| invalid(format!("checkpoint options: {e}")))
}

/// CRIU's options for a checkpoint into (or a restore from) `images`.
pub fn criu_options<'a>(
    images: &'a Path,
    work: Option<&'a Path>,
    o: &CheckpointOptions,
) -> Result<CriuOptions<'a>, ShimError> {
    let mut empty_network_ns = false;
    for ns in &o.empty_namespaces {
        match ns.as_str() {
            "network" => empty_network_ns = true,
            other => {
                return Err(invalid(format!(
                    "checkpoint option EmptyNamespaces {other:?}: only \"network\" can be left out"
                )))
            }
        }
    }
    let cgroups_mode = match o.cgroups_mode.as_str() {
        "" => None,
        mode => Some(
            CgroupsMode::parse(mode)
                .map_err(|e| invalid(format!("checkpoint option CgroupsMode: {e}")))?,
        ),
    };
    Ok(CriuOptions {
        criu: None,
        image_path: images,
        work_path: work,
        tcp_established: o.open_tcp,
        ext_unix_sk: o.external_unix_sockets,
        shell_job: o.terminal,
        file_locks: o.file_locks,
        cgroups_mode,
        auto_dedup: false,
        empty_network_ns,
    })
}
