//! `checkpoint` and `restore`: runc's flags turned into the library's
//! options; the flags skiff cannot honour are refused by name.

use nix::unistd::Pid;
use skiff_runtime::container::{self, CgroupsMode, CheckpointOptions, CriuOptions, RestoreOptions};
use skiff_runtime::state::StateRoot;

use crate::cli::{CheckpointArgs, Cli, CriuArgs, RestoreArgs};
use crate::Result;

pub fn checkpoint(cli: &Cli, root: &StateRoot, args: &CheckpointArgs) -> Result<i32> {
    if args.page_server.is_some() {
        return Err("--page-server: CRIU's page server is not supported by skiff-oci".into());
    }
    if args.status_fd.is_some() {
        return Err("--status-fd: only with --lazy-pages, which skiff-oci does not support".into());
    }
    let image_path = image_path(&args.criu);
    let opts = CheckpointOptions {
        criu: criu_options(cli, &args.criu, &image_path)?,
        leave_running: args.leave_running,
        pre_dump: args.pre_dump,
        parent_path: args.parent_path.as_deref(),
        link_remap: args.link_remap,
        tcp_skip_in_flight: args.tcp_skip_in_flight,
    };
    container::checkpoint(root, &args.id, &opts)?;
    Ok(0)
}

/// Restores, then (unless detached) waits as `run` does and deletes the
/// container once it exits; the exit code is the container's.
pub fn restore(cli: &Cli, root: &StateRoot, args: &RestoreArgs) -> Result<i32> {
    // runc's restore has no --preserve-fds: the container's descriptors
    // are CRIU's to restore. --no-pivot is taken and changes nothing, as
    // with runc: CRIU builds the restored mount namespace itself.
    if args.create.preserve_fds > 0 {
        return Err(
            "restore --preserve-fds: not supported (runc's restore has no such flag; \
                    CRIU restores the descriptors the container had)"
                .into(),
        );
    }
    if !args.detach {
        container::block_forwarded_signals();
    }
    let image_path = image_path(&args.criu);
    // In the foreground without a console socket, a terminal is relayed
    // here, as `run` relays one (and runc's restore).
    let relay = !args.detach && args.create.console_socket.is_none();
    let opts = RestoreOptions {
        create: crate::options::create_options(cli, &args.create, relay),
        criu: criu_options(cli, &args.criu, &image_path)?,
        lsm_profile: args.lsm_profile.as_deref(),
        lsm_mount_context: args.lsm_mount_context.as_deref(),
    };
    let restored = container::restore(root, &opts)?;
    if args.detach {
        return Ok(0);
    }
    let pid = Pid::from_raw(restored.record.pid);
    let code = match restored.console_master {
        Some(master) => container::relay_and_wait(pid, master),
        None => container::wait_forwarding(pid),
    };
    container::delete(root, &restored.record.id, true)?;
    Ok(code)
}

/// runc's default: ./checkpoint.
fn image_path(args: &CriuArgs) -> std::path::PathBuf {
    args.image_path
        .clone()
        .unwrap_or_else(|| "checkpoint".into())
}

fn criu_options<'a>(
    cli: &'a Cli,
    args: &'a CriuArgs,
    image_path: &'a std::path::Path,
) -> Result<CriuOptions<'a>> {
    if args.lazy_pages {
        return Err("--lazy-pages: lazy migration is not supported by skiff-oci".into());
    }
    let empty_network_ns = match args.empty_ns.as_deref() {
        None => false,
        Some("network") => true,
        Some(other) => {
            return Err(format!("--empty-ns {other:?}: only \"network\" can be left out").into())
        }
    };
    Ok(CriuOptions {
        criu: cli.criu.as_deref(),
        image_path,
        work_path: args.work_path.as_deref(),
        tcp_established: args.tcp_established,
        ext_unix_sk: args.ext_unix_sk,
        shell_job: args.shell_job,
        file_locks: args.file_locks,
        cgroups_mode: args
            .manage_cgroups_mode
            .as_deref()
            .map(CgroupsMode::parse)
            .transpose()?,
        auto_dedup: args.auto_dedup,
        empty_network_ns,
    })
}
