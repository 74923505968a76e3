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
cargo test --workspace --no-fail-fast -- --test-threads=4 || status=$?
scripts/leak-check.sh || status=1
exit $status
