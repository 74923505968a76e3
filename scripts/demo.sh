#!/bin/sh
# Builds skiff-oci (static, on musl), containerd-shim-skiff-v2, the systemd
# driver's helper skiff-systemd and the engine skiff, installs them (with
# their manual pages and shell completions) to /usr/local/bin, and runs a
# real container from a busybox rootfs made offline: once with skiff-oci
# directly, once through containerd (a private instance, stopped afterwards)
# with skiff's shim. Then the engine: the rootfs made an image, pushed to a
# registry started on 127.0.0.1, pulled back and listed.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build-static.sh
cargo build --release -p containerd-shim-skiff-v2 -p skiff
install -m 0755 target/x86_64-unknown-linux-gnu/release/skiff /usr/local/bin/skiff
install -m 0755 target/musl/x86_64-unknown-linux-musl/release/skiff-oci /usr/local/bin/skiff-oci
install -m 0755 target/x86_64-unknown-linux-gnu/release/containerd-shim-skiff-v2 \
    /usr/local/bin/containerd-shim-skiff-v2
# The VM tier: its shim (runtime io.containerd.skiff-vm.v2), and its guest
# image (kernel, initramfs with skiff-agent) in /var/lib/skiff/vm.
rm -f /usr/local/bin/containerd-shim-skiff-vm-v2
install -m 0755 target/x86_64-unknown-linux-gnu/release/containerd-shim-skiff-vm-v2 \
    /usr/local/bin/containerd-shim-skiff-vm-v2
scripts/vm-image.sh --install >/dev/null
install -m 0755 target/musl/x86_64-unknown-linux-musl/release/skiff-systemd /usr/local/bin/skiff-systemd
install -m 0755 target/musl/x86_64-unknown-linux-musl/release/skiff-criu /usr/local/bin/skiff-criu
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
skiff man >/usr/local/share/man/man8/skiff.8
skiff completion bash >/usr/share/bash-completion/completions/skiff
skiff completion zsh >/usr/local/share/zsh/site-functions/_skiff
skiff completion fish >/usr/share/fish/vendor_completions.d/skiff.fish
shim=containerd-shim-skiff-v2
$shim -shell bash completion >/usr/share/bash-completion/completions/$shim
$shim -shell zsh completion >/usr/local/share/zsh/site-functions/_$shim
$shim -shell fish completion >/usr/share/fish/vendor_completions.d/$shim.fish
mandb -q 2>/dev/null || true
bundle=$(mktemp -d /tmp/skiff-demo.XXXXXX)
ctrd=$(mktemp -d /tmp/skiff-demo-containerd.XXXXXX)
reg=$(mktemp -d /tmp/skiff-demo-registry.XXXXXX)
cpid=""
rpid=""
# Cleanup keeps the demo's own status: a server's exit status on SIGTERM
# (143) is not the demo's, and `set -e` must not stop the cleanup halfway.
cleanup() {
    status=$?
    set +e
    [ -n "$cpid" ] && kill "$cpid" && wait "$cpid"
    [ -n "$rpid" ] && kill "$rpid" && wait "$rpid"
    rm -rf "$bundle" "$ctrd" "$reg"
    rmdir /sys/fs/cgroup/*/default 2>/dev/null
    exit "$status"
}
trap cleanup EXIT
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
# The same in its own VM (qemu; docs/vm.md): the guest's kernel answers.
ctr --address "$ctrd/containerd.sock" run --rm --runtime io.containerd.skiff-vm.v2 \
    --env PATH=/usr/bin:/bin --rootfs "$bundle/rootfs" "demo-vm-$$" \
    sh -c 'echo hello from a VM, kernel $(uname -r)'

# The engine: the same rootfs as an image, pushed to a registry on
# 127.0.0.1 (Debian's docker-registry, a private one), removed, pulled
# back from there and listed; the store is skiff's default, /var/lib/skiff.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$reg" "$port" >"$reg/config.yml"
docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
rpid=$!
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do sleep 0.1; done
tar -C "$bundle/rootfs" -c . | skiff import - busybox:demo >/dev/null
skiff push -q busybox:demo "127.0.0.1:$port/busybox:demo"
skiff rmi busybox:demo >/dev/null
skiff pull "127.0.0.1:$port/busybox:demo"
skiff images
skiff run --rm "127.0.0.1:$port/busybox:demo" sh -c 'echo hello from skiff run in $(hostname), pid $$'
skiff rmi "127.0.0.1:$port/busybox:demo" >/dev/null
