#!/bin/sh
# Builds the skiff-oci that is installed, tested and benchmarked: a static PIE
# on musl instead of glibc (docs/building.md: glibc's start-up
# costs every invocation ~0.4 ms on this kind of VM); and so the systemd
# driver's helper, which skiff-oci runs per call. Output:
#   target/musl/x86_64-unknown-linux-musl/release/skiff-oci (and skiff-systemd)
# With package names as arguments, those instead (scripts/vm-image.sh builds
# skiff-agent, the VM guest's PID 1, so).
#
# Rust's standard library for musl is built from source (-Zbuild-std) with
# Debian's Rust, whose source it ships (rustc-web, cargo-web, rust-web-src;
# rustup's toolchain has neither a musl target nor its source here).
# RUSTC_BOOTSTRAP=1 lets that stable compiler take -Zbuild-std.
set -eu
cd "$(dirname "$0")/.."
packages="-p skiff-oci -p skiff-systemd"
if [ $# -gt 0 ]; then
    packages=""
    for p in "$@"; do packages="$packages -p $p"; done
fi
top=$(pwd)
out="$top/target/musl"
for need in /usr/bin/rustc /usr/bin/cargo /usr/lib/rustlib/src/rust/library/Cargo.lock \
    /usr/lib/x86_64-linux-musl/rcrt1.o /usr/lib/llvm-14/lib/libunwind.a \
    /usr/lib/x86_64-linux-gnu/libseccomp.a; do
    if [ ! -e "$need" ]; then
        echo "build-static: $need is missing; scripts/deps.sh installs it" >&2
        echo "  (rustc-web, cargo-web, rust-web-src from bookworm-security, musl-tools," >&2
        echo "  libunwind-14-dev, libseccomp-dev)" >&2
        exit 1
    fi
done
# libseccomp's static library in a directory of its own: the one Debian puts
# it in also holds glibc's libc.a, which must not reach this link.
mkdir -p "$out/seccomp"
cp /usr/lib/x86_64-linux-gnu/libseccomp.a "$out/seccomp/"
# gcc with a specs file of ours (musl's crt files and headers, static PIE, no
# dynamic linker); LLVM's libunwind for std's unwinder symbols. The flags are
# separated by 0x1f (CARGO_ENCODED_RUSTFLAGS), so paths may hold spaces.
sep=$(printf '\037')
flags="-Ctarget-feature=+crt-static${sep}-Clink-self-contained=no${sep}-Clinker=gcc"
flags="$flags${sep}-Clink-arg=-specs=$top/scripts/musl/static-pie.specs${sep}-L${sep}/usr/lib/llvm-14/lib"
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
    CARGO_TARGET_DIR="$out" \
    LIBSECCOMP_LIB_PATH="$out/seccomp" LIBSECCOMP_LINK_TYPE=static \
    CARGO_ENCODED_RUSTFLAGS="$flags" \
    /usr/bin/cargo build --release --locked -q -Zbuild-std=std,panic_abort \
    --target x86_64-unknown-linux-musl $packages
