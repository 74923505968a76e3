#!/bin/sh
# Builds skiff-oci, installs it to /usr/local/bin and runs a real container from
# a busybox rootfs made offline.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p skiff-oci
install -m 0755 target/x86_64-unknown-linux-gnu/release/skiff-oci /usr/local/bin/skiff-oci
bundle=$(mktemp -d /tmp/skiff-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
scripts/mkrootfs.sh "$bundle/rootfs"
skiff-oci spec --bundle "$bundle"
# No terminal (the demo may run without one) and a program that shows where it runs.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname), pid $$; id; cat \/proc\/self\/cgroup | head -3"/' "$bundle/config.json"
skiff-oci run --bundle "$bundle" "demo-$$"
