#!/bin/sh
# Prints the path of the kernel the test VMs boot (Debian's cloud kernel,
# downloaded once into target/vm-kernel/ with its modules); used by
# scripts/v2-vm/run.sh and scripts/systemd-vm/run.sh.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$repo/target/vm-kernel
mkdir -p "$work"
kernel=$(ls "$work"/kernel/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$kernel" ]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    (cd "$work" && { apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$pkg" >/dev/null; }; })
    dpkg-deb -x "$work"/"$pkg"_*.deb "$work/kernel"
    rm -f "$work"/"$pkg"_*.deb
    kernel=$(ls "$work"/kernel/boot/vmlinuz-* | head -1)
fi
echo "$kernel"
