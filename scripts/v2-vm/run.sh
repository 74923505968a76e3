#!/bin/sh
# Boots a throwaway VM with a pure cgroup v2 tree and runs init.sh there.
# usage: run.sh SKIFF_OCI_BINARY   (exit 0 only if every check passed)
# The kernel is Debian's cloud kernel (scripts/vm-kernel.sh, downloaded once);
# qemu runs with software emulation (TCG); a boot that hangs is retried once.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
skiff=${1:?usage: run.sh SKIFF_OCI_BINARY}
work=$repo/target/v2-vm
mkdir -p "$work"

kernel=$("$repo/scripts/vm-kernel.sh")
modules=$(dirname "$kernel")/../lib/modules

root=$(mktemp -d "$work/initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/bundle"
cp "$(readlink -f "$(command -v busybox)")" "$root/bin/busybox"
"$root/bin/busybox" --install -s "$root/bin" 2>/dev/null || true
for l in "$root"/bin/*; do [ -L "$l" ] && ln -sf busybox "$l"; done
strip -o "$root/bin/skiff-oci" "$skiff" 2>/dev/null || cp "$skiff" "$root/bin/skiff-oci"
"$repo/scripts/mkrootfs.sh" "$root/bundle/rootfs"
# The loop driver (a module in this kernel), for the block I/O checks.
mkdir -p "$root/lib/modules"
find "$modules" -name loop.ko -exec cp {} "$root/lib/modules/" \;
cp "$here/init.sh" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

boot() {
    timeout 300 qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3" >"$work/console.log" 2>&1 || true
    grep -q "SKIFF-V2-RESULT" "$work/console.log"
}
boot || { echo "v2 VM: no result, retrying once"; boot; } || { cat "$work/console.log"; exit 1; }
grep -E "^(PASS|FAIL|  expected|controllers:|SKIFF-V2-RESULT)" "$work/console.log" | tr -d '\r'
grep -q "SKIFF-V2-RESULT: [0-9]* passed, 0 failed" "$work/console.log"
