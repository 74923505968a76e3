#!/bin/sh
# The test command: unit and integration tests (as root, against the real
# kernel and the real clients), then the leak check.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
# The integration tests drive the skiff-oci that is installed and benchmarked:
# the static musl build. Unit tests and the rest build as usual.
scripts/build-static.sh
export SKIFF_OCI="$(pwd)/target/musl/x86_64-unknown-linux-musl/release/skiff-oci"
cargo build --workspace --all-targets
status=0
# The VM tier's guest image (the static agent in an initramfs): its tests
# skip without qemu, but an image that fails to build must fail the run,
# not turn into their skips.
if command -v qemu-system-x86_64 >/dev/null; then
    scripts/vm-image.sh >/dev/null || { echo "FAILED: scripts/vm-image.sh (the VM tier's tests would skip)"; status=1; }
fi
cargo test --workspace --no-fail-fast -- --test-threads=4 || status=$?
# The shim's ctr tests again, against containerd 2.3.4 (scripts/deps.sh
# builds it where ../shared/containerd is; said and skipped where not).
if [ -x /opt/containerd-2/bin/containerd ]; then
    SKIFF_CONTAINERD=/opt/containerd-2/bin \
        cargo test -p containerd-shim-skiff-v2 --test ctr --test ctr_vm -- --test-threads=4 || status=$?
else
    echo "skipped: the shim against containerd 2.x (no /opt/containerd-2/bin/containerd)"
fi
# The engine's default bridge (skiff0) is shared by every store and stays,
# as Podman's does: gone before the leak check, which then finds any veth,
# lease or rule a test container left.
scripts/network-reset.sh
scripts/leak-check.sh || status=1
exit $status
