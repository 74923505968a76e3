#!/bin/sh
# Builds what a skiff VM boots, cached under target/vm/ and rebuilt only when
# an input changed (the agent binary, the kernel, the module list, this
# script). Prints four lines: the kernel, the initramfs, vhost-device-vsock,
# virtiofsd.
#
#   kernel      Debian's linux-image-cloud-amd64, fetched with apt-get download
#               and unpacked by scripts/vm-kernel.sh (never installed)
#   initramfs   skiff-agent (static, musl) as /init, the kernel modules the
#               guest needs (the cloud kernel has virtio, vsock and virtio-blk
#               as modules), /lib/modules/load-order, the order the agent
#               loads them in before it serves, and load-disk and load-share,
#               those it loads when a container's rootfs first needs them
#   vhost-device-vsock  the vsock device's backend (crates.io; the host kernel
#               here has no vhost-vsock), installed once into target/vm/tools
#
# usage: vm-image.sh [--agent PATH] [--install]
#   --agent PATH  the agent binary to use (default: build it, scripts/build-static.sh)
#   --install     also copy the four to /var/lib/skiff/vm/{vmlinuz,initramfs.gz,
#                 vhost-device-vsock,virtiofsd}, where containerd-shim-skiff-vm-v2 looks
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$repo/target/vm
mkdir -p "$work"
# One build at a time (tests run this in parallel): the others wait and
# then find the image up to date.
exec 9>"$work/.lock"
flock 9
agent=
install=
while [ $# -gt 0 ]; do
    case $1 in
        --agent) agent=${2:?--agent needs a path}; shift 2 ;;
        --install) install=/var/lib/skiff/vm; shift ;;
        *) echo "vm-image: unknown argument $1 (--agent PATH, --install)" >&2; exit 2 ;;
    esac
done

# The modules the agent loads, by name; their dependencies come first. Those
# of `want` before it serves (the vsock transport, in load-order); the
# rootfs's device only when a container first needs it: virtio-blk for a
# disk (load-disk), fuse and virtiofs for the share (load-share); virtio-net
# for a pod with a network, at its first UpdateInterface (load-net).
want="virtio_pci vmw_vsock_virtio_transport"
disk="virtio_blk"
share="virtiofs"
net="virtio_net"

kernel=$("$repo/scripts/vm-kernel.sh")
release=$(basename "$kernel" | sed 's/^vmlinuz-//')
moddir=$(dirname "$kernel")/../lib/modules/$release

if [ -z "$agent" ]; then
    "$repo/scripts/build-static.sh" skiff-agent >&2
    agent=$repo/target/musl/x86_64-unknown-linux-musl/release/skiff-agent
fi

tools=$work/tools
vsock=$tools/bin/vhost-device-vsock
if [ ! -x "$vsock" ]; then
    echo "vm-image: installing vhost-device-vsock (crates.io) into $tools" >&2
    cargo install --locked --root "$tools" vhost-device-vsock >&2
fi
virtiofsd=$tools/bin/virtiofsd
if [ ! -x "$virtiofsd" ]; then
    echo "vm-image: installing virtiofsd (crates.io) into $tools" >&2
    cargo install --locked --root "$tools" virtiofsd >&2
fi

# modules: NAME -> its .ko, with the ones it depends on listed first.
ko_of() { find "$moddir" -name "$1.ko" | head -1; }
order=
add_module() {
    case " $order " in *" $1 "*) return 0 ;; esac
    ko=$(ko_of "$1")
    if [ -z "$ko" ]; then
        # Built into the kernel (modules.builtin) or unknown.
        grep -q "/$1.ko\$" "$moddir/modules.builtin" && return 0
        echo "vm-image: module $1 is in neither $moddir nor modules.builtin" >&2
        exit 1
    fi
    deps=$(grep -a -o 'depends=[a-zA-Z0-9_,-]*' "$ko" | head -1 | sed 's/^depends=//' | tr ',' ' ')
    for d in $deps; do add_module "$d"; done
    order="$order $1"
}
for m in $want; do add_module "$m"; done
first=$order
for m in $disk; do add_module "$m"; done
disk_order=${order#"$first"}
# Each list holds all it needs past load-order (they may share modules).
order=$first
for m in $share; do add_module "$m"; done
share_order=${order#"$first"}
order=$first
for m in $net; do add_module "$m"; done
net_order=${order#"$first"}

# Copies a module without Debian's signature: checking it (RSA, SHA-256)
# took the guest ~60 ms of its ~100 ms of insmod under TCG, and the kernel
# does not insist (CONFIG_MODULE_SIG_FORCE is off; it only notes a taint).
# The signature is the file's tail: sig_len bytes, a 12-byte struct
# module_signature ending in sig_len (big-endian), then the marker.
strip_signature() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
marker = b"~Module signature appended~\n"
if data.endswith(marker):
    sig_len = struct.unpack(">I", data[-len(marker) - 4:-len(marker)])[0]
    data = data[: -len(marker) - 12 - sig_len]
open(sys.argv[2], "wb").write(data)
PY
}

stamp=$( { sha256sum "$agent" "$0"; echo "$release $first / $disk_order / $share_order / $net_order"; } | sha256sum | cut -d' ' -f1)
initramfs=$work/initramfs.gz
if [ ! -f "$initramfs" ] || [ "$(cat "$work/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
    root=$(mktemp -d "$work/initramfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/lib/modules" "$root/dev" "$root/proc" "$root/sys"
    cp "$agent" "$root/init"
    for list in "load-order:$first" "load-disk:$disk_order" "load-share:$share_order" \
        "load-net:$net_order"; do
        : >"$root/lib/modules/${list%%:*}"
        for m in ${list#*:}; do
            [ -f "$root/lib/modules/$m.ko" ] ||
                strip_signature "$(ko_of "$m")" "$root/lib/modules/$m.ko"
            echo "/lib/modules/$m.ko" >>"$root/lib/modules/${list%%:*}"
        done
    done
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initramfs.tmp"
    mv "$initramfs.tmp" "$initramfs"
    echo "$stamp" >"$work/initramfs.stamp"
    echo "vm-image: built $initramfs (modules:$first; disk:$disk_order; share:$share_order; net:$net_order)" >&2
fi
if [ -n "$install" ]; then
    mkdir -p "$install"
    install -m 0644 "$kernel" "$install/vmlinuz.tmp" && mv "$install/vmlinuz.tmp" "$install/vmlinuz"
    install -m 0644 "$initramfs" "$install/initramfs.gz.tmp" && mv "$install/initramfs.gz.tmp" "$install/initramfs.gz"
    install -m 0755 "$vsock" "$install/vhost-device-vsock.tmp" && mv "$install/vhost-device-vsock.tmp" "$install/vhost-device-vsock"
    install -m 0755 "$virtiofsd" "$install/virtiofsd.tmp" && mv "$install/virtiofsd.tmp" "$install/virtiofsd"
    kernel=$install/vmlinuz initramfs=$install/initramfs.gz vsock=$install/vhost-device-vsock
    virtiofsd=$install/virtiofsd
fi
echo "$kernel"
echo "$initramfs"
echo "$vsock"
echo "$virtiofsd"
