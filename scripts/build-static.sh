#!/bin/sh
# Builds the skiff-oci that is installed, tested and benchmarked: a static PIE
# on musl instead of glibc (README, "Choices": glibc's start-up costs every
# invocation ~0.4 ms on this kind of VM). Output:
#   target/musl/x86_64-unknown-linux-musl/release/skiff-oci
#
# Rust's standard library for musl is built from source (-Zbuild-std) with
# Debian's Rust, whose source it ships (rustc-web, cargo-web, rust-web-src;
# rustup's toolchain has neither a musl target nor its source here).
# RUSTC_BOOTSTRAP=1 lets that stable compiler take -Zbuild-std.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
out="$top/target/musl"
# libseccomp's static library in a directory of its own: the one Debian puts
# it in also holds glibc's libc.a, which must not reach this link.
mkdir -p "$out/seccomp"
cp -u /usr/lib/x86_64-linux-gnu/libseccomp.a "$out/seccomp/"
# gcc with a specs file of ours (musl's crt files and headers, static PIE, no
# dynamic linker); LLVM's libunwind for std's backtrace symbols.
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
    CARGO_TARGET_DIR="$out" \
    LIBSECCOMP_LIB_PATH="$out/seccomp" LIBSECCOMP_LINK_TYPE=static \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static -C link-self-contained=no -C link-arg=-specs=$top/scripts/musl/static-pie.specs -L /usr/lib/llvm-14/lib" \
    /usr/bin/cargo build --release --locked -q -Zbuild-std=std,panic_abort \
    --target x86_64-unknown-linux-musl -p skiff-oci
