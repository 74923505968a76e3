#!/bin/sh
# The test command: unit and integration tests (as root, against the real
# kernel and the real clients), then the leak check.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --workspace --all-targets
status=0
cargo test --workspace -- --test-threads=4 || status=$?
scripts/leak-check.sh || status=1
exit $status
