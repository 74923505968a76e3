#!/bin/sh
# Boots a Debian 12 VM with systemd as PID 1 (pure cgroup v2, dbus, runc,
# crun, containerd and podman from Debian) and runs test.sh there as a systemd service: skiff-oci's
# --systemd-cgroup driver against the real systemd, and against runc's.
# usage: run.sh SKIFF_OCI SKIFF_SYSTEMD [SHIM]   (the binaries under test;
# exit 0 only if every check passed; 77: skipped, no mirror to build the
# image from). With the shim, containerd (Debian's) runs tasks with it.
# The root filesystem is debootstrap'ed once into target/systemd-vm/ (about
# a minute, from Debian's mirror) and booted read-only (qemu's snapshot);
# the binary, the script and a busybox bundle come on a second disk. qemu
# runs with software emulation (TCG); a boot that hangs is retried once.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
skiff=${1:?usage: run.sh SKIFF_OCI SKIFF_SYSTEMD}
helper=${2:?usage: run.sh SKIFF_OCI SKIFF_SYSTEMD [SHIM]}
shim=${3:-}
work=$repo/target/systemd-vm
mkdir -p "$work"
kernel=$("$repo/scripts/vm-kernel.sh")
modules=$(ls -d "$(dirname "$kernel")"/../lib/modules/*)

# The root filesystem image, made once (a stamp names what it holds).
stamp="bookworm minbase systemd dbus dbus-user-session runc crun procps containerd podman cni grpc iproute2 v6"
if [ "$(cat "$work/root.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$work/rootfs" "$work/root.img"
    # (A finished debootstrap of an interrupted earlier run is kept.)
    if ! grep -qs "Base system installed successfully" "$work/debootstrap.log" ||
        [ ! -e "$work/rootfs.tmp/usr/lib/systemd/user/dbus.socket" ]; then
        rm -rf "$work/rootfs.tmp"
        debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,dbus-user-session,runc,crun,procps,containerd,podman,containernetworking-plugins,python3-grpcio,python3-grpc-tools,iproute2 \
            bookworm "$work/rootfs.tmp" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || {
            tail -20 "$work/debootstrap.log"
            # No mirror to fetch from is a missing host feature, not a failure.
            if grep -qE "Failed getting release file|Couldn't download|Failure trying to run" \
                "$work/debootstrap.log"; then
                echo "skipped: the systemd VM (Debian's mirror is out of reach for debootstrap)"
                exit 77
            fi
            exit 1
        }
    fi
    r=$work/rootfs.tmp
    echo skiff-vm >"$r/etc/hostname"
    # A user for the rootless checks, whose systemd runs without a login.
    chroot "$r" useradd -m -u 1000 u1
    mkdir -p "$r/var/lib/systemd/linger" && touch "$r/var/lib/systemd/linger/u1"
    # Nothing waits for a login or a network: the test service runs, then
    # the VM powers off.
    for u in getty@tty1 serial-getty@ttyS0 systemd-networkd-wait-online apt-daily.timer \
        apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
        ln -sf /dev/null "$r/etc/systemd/system/$u.service" 2>/dev/null || true
        ln -sf /dev/null "$r/etc/systemd/system/$u" 2>/dev/null || true
    done
    cat >"$r/etc/systemd/system/skiff-test.service" <<'UNIT'
[Unit]
Description=skiff's systemd cgroup driver tests
Wants=dbus.service
After=dbus.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /payload && mount /dev/vdb /payload && exec /payload/test.sh'
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=multi-user.target
UNIT
    mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
    ln -sf /etc/systemd/system/skiff-test.service "$r/etc/systemd/system/multi-user.target.wants/"
    mv "$r" "$work/rootfs"
    mkfs.ext4 -q -F -L root -d "$work/rootfs" "$work/root.img" 1G
    echo "$stamp" >"$work/root.stamp"
fi

# The initramfs: virtio's modules, then /dev/vda as the root, and systemd.
init=$(mktemp -d "$work/initramfs.XXXXXX")
payload=$(mktemp -d "$work/payload.XXXXXX")
vm=
# (set -e: a kill of a qemu already gone must not fail the run.)
trap 'if [ -n "$vm" ]; then kill -KILL "$vm" 2>/dev/null || true; fi; rm -rf "$init" "$payload" "$work/payload.img"' EXIT
trap 'exit 1' INT TERM
mkdir -p "$init/bin" "$init/proc" "$init/sys" "$init/dev" "$init/newroot" "$init/modules"
cp "$(readlink -f "$(command -v busybox)")" "$init/bin/busybox"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    find "$modules" -name "$m.ko" -exec cp {} "$init/modules/" \;
done
cat >"$init/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
    /bin/busybox insmod /modules/$m.ko 2>/dev/null
done
for i in $(/bin/busybox seq 100); do [ -b /dev/vda ] && break; /bin/busybox sleep 0.1; done
/bin/busybox mount -t ext4 /dev/vda /newroot || { echo "no root disk"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc
/bin/busybox umount /dev
exec /bin/busybox switch_root /newroot /lib/systemd/systemd
INIT
chmod +x "$init/init"
(cd "$init" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# The payload: the binaries under test (the helper beside skiff-oci, where
# it looks first), the script, a busybox bundle.
strip -o "$payload/skiff-oci" "$skiff" 2>/dev/null || cp "$skiff" "$payload/skiff-oci"
strip -o "$payload/skiff-systemd" "$helper" 2>/dev/null || cp "$helper" "$payload/skiff-systemd"
if [ -n "$shim" ]; then
    strip -o "$payload/containerd-shim-skiff-v2" "$shim" 2>/dev/null ||
        cp "$shim" "$payload/containerd-shim-skiff-v2"
fi
cp "$here/test.sh" "$payload/test.sh"
# With the shim: the CRI run (a pod under a kubelet-style slice), its
# images made here (the VM has no compiler), and the modules its network
# and containerd's overlayfs snapshotter load.
if [ -n "$shim" ]; then
    cri=$repo/crates/containerd-shim-skiff-v2/tests/cri
    mkdir -p "$payload/cri" "$payload/modules"
    cp "$cri/run.sh" "$cri/cri_client.py" "$cri/cri.proto" "$payload/cri/"
    "$cri/mkimages.sh" "$payload/cri/images" >/dev/null
    # The client's gRPC stubs, made here (the VM's grpc_tools lacks pkg_resources).
    CRI_GEN_DIR="$payload/cri/gen" /usr/bin/python3 -c "import sys; sys.argv = ['x']; sys.path.insert(0, '$payload/cri'); import cri_client" --help >/dev/null
    for m in llc stp bridge veth overlay; do
        find "$modules" -name "$m.ko" -exec cp {} "$payload/modules/" \;
    done
fi
# The benchmark against runc and crun, only when asked (it adds ~30 s).
if [ "${SKIFF_VM_BENCH:-0}" = 1 ]; then touch "$payload/bench"; fi
chmod +x "$payload/test.sh"
"$repo/scripts/mkrootfs.sh" "$payload/rootfs" >/dev/null
mkfs.ext4 -q -F -d "$payload" "$work/payload.img" 96M

# SKIFF_VM_CGROUP=v1: systemd mounts the v1 (hybrid) tree instead.
tree=""
if [ "${SKIFF_VM_CGROUP:-v2}" = v1 ]; then tree="systemd.unified_cgroup_hierarchy=0"; fi
# A boot that hangs under TCG goes silent: one whose console has not grown
# for SILENT seconds is stopped (a run takes 1-3 minutes and prints as it
# goes), so a hang costs that instead of the whole 600 s bound.
SILENT=${SKIFF_VM_SILENT:-240}
boot() {
    qemu-system-x86_64 -accel tcg -m 1536 -smp 2 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$work/initrd.gz" \
        -drive file="$work/root.img",if=virtio,format=raw,snapshot=on \
        -drive file="$work/payload.img",if=virtio,format=raw \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=0 $tree" \
        >"$work/console.log" 2>&1 </dev/null &
    vm=$!
    size=-1 quiet=0 waited=0
    # Checked each second: a poll's sleep is time the run waits past the
    # VM's poweroff.
    while kill -0 "$vm" 2>/dev/null; do
        sleep 1
        waited=$((waited + 1))
        now=$(stat -c %s "$work/console.log" 2>/dev/null || echo 0)
        if [ "$now" = "$size" ]; then quiet=$((quiet + 1)); else quiet=0 size=$now; fi
        if [ "$quiet" -ge "$SILENT" ] || [ "$waited" -ge 600 ]; then
            echo "systemd VM: stopped after ${waited} s, its console silent for ${quiet} s"
            kill -KILL "$vm" 2>/dev/null
            break
        fi
    done
    wait "$vm" 2>/dev/null || true
    grep -q "SKIFF-SYSTEMD-RESULT" "$work/console.log"
}
boot || { echo "systemd VM: no result, retrying once"; boot; } ||
    { tail -60 "$work/console.log"; exit 1; }
grep -E "^(PASS|FAIL|  |BENCH|SKIFF-SYSTEMD-RESULT)" "$work/console.log" | tr -d '\r'
grep -q "SKIFF-SYSTEMD-RESULT: [0-9]* passed, 0 failed" "$work/console.log"
