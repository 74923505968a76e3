#!/bin/sh
# Builds skiff-oci (static, on musl), containerd-shim-skiff-v2 and the systemd
# driver's helper skiff-systemd, installs them (with their manual pages and
# shell completions) to
# /usr/local/bin, and runs a real container from a busybox rootfs made offline:
# once with skiff-oci directly, once through containerd (a private instance,
# stopped afterwards) with skiff's shim.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build-static.sh
cargo build --release -p containerd-shim-skiff-v2
install -m 0755 target/musl/x86_64-unknown-linux-musl/release/skiff-oci /usr/local/bin/skiff-oci
install -m 0755 target/x86_64-unknown-linux-gnu/release/containerd-shim-skiff-v2 \
    /usr/local/bin/containerd-shim-skiff-v2
install -m 0755 target/musl/x86_64-unknown-linux-musl/release/skiff-systemd /usr/local/bin/skiff-systemd
# Manual pages (each generated from its program's command line at build time)
# and shell completions: `man skiff-oci`, `skiff-oci <TAB>`.
install -d /usr/local/share/man/man8 /usr/share/bash-completion/completions \
    /usr/local/share/zsh/site-functions /usr/share/fish/vendor_completions.d
skiff-oci man >/usr/local/share/man/man8/skiff-oci.8
skiff-systemd man >/usr/local/share/man/man8/skiff-systemd.8
containerd-shim-skiff-v2 man >/usr/local/share/man/man8/containerd-shim-skiff-v2.8
skiff-oci completion bash >/usr/share/bash-completion/completions/skiff-oci
skiff-oci completion zsh >/usr/local/share/zsh/site-functions/_skiff-oci
skiff-oci completion fish >/usr/share/fish/vendor_completions.d/skiff-oci.fish
skiff-systemd completion bash >/usr/share/bash-completion/completions/skiff-systemd
skiff-systemd completion zsh >/usr/local/share/zsh/site-functions/_skiff-systemd
skiff-systemd completion fish >/usr/share/fish/vendor_completions.d/skiff-systemd.fish
shim=containerd-shim-skiff-v2
$shim -shell bash completion >/usr/share/bash-completion/completions/$shim
$shim -shell zsh completion >/usr/local/share/zsh/site-functions/_$shim
$shim -shell fish completion >/usr/share/fish/vendor_completions.d/$shim.fish
mandb -q 2>/dev/null || true
bundle=$(mktemp -d /tmp/skiff-demo.XXXXXX)
ctrd=$(mktemp -d /tmp/skiff-demo-containerd.XXXXXX)
cpid=""
trap '[ -n "$cpid" ] && kill "$cpid" && wait "$cpid"; rm -rf "$bundle" "$ctrd"; rmdir /sys/fs/cgroup/*/default 2>/dev/null' EXIT
scripts/mkrootfs.sh "$bundle/rootfs"
skiff-oci spec --bundle "$bundle"
# No terminal (the demo may run without one) and a program that shows where it runs.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname), pid $$; id; cat \/proc\/self\/cgroup | head -3"/' "$bundle/config.json"
skiff-oci run --bundle "$bundle" "demo-$$"

# The same rootfs through containerd: `ctr run --runtime io.containerd.skiff.v2`.
cat > "$ctrd/config.toml" <<CONFIG
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd/containerd.sock"
[ttrpc]
  address = "$ctrd/containerd.sock.ttrpc"
CONFIG
containerd --config "$ctrd/config.toml" >"$ctrd/containerd.log" 2>&1 &
cpid=$!
until ctr --address "$ctrd/containerd.sock" version >/dev/null 2>&1; do sleep 0.1; done
# A rootfs without an image gets no PATH from ctr (runc then finds no bare
# program either): the usual one.
ctr --address "$ctrd/containerd.sock" run --rm --runtime io.containerd.skiff.v2 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --rootfs "$bundle/rootfs" "demo-$$" \
    sh -c 'echo hello through containerd and containerd-shim-skiff-v2, pid $$'
