#!/bin/sh
# Installs, from Debian, what skiff's build, demo, tests and benchmark use:
# libseccomp (static library) for the seccomp filter; Debian's Rust with its
# standard library's source, musl and LLVM's libunwind for the static musl
# build of skiff-oci (scripts/build-static.sh); busybox for rootfs
# fixtures, the real peers and clients (runc, crun, containerd, podman and
# uidmap for rootless podman, docker.io, buildah), qemu + cpio for the
# cgroup v2 test VM, debootstrap and e2fsprogs for the systemd test VM,
# man-db and bash-completion (skiff-oci's manual page and completions), and for the shim's Kubernetes (CRI) test: CNI plugins,
# gcc (a static pause binary) and python3's gRPC, whose client speaks the
# CRI API to containerd; for the engine's image tests, Debian's
# docker-registry (started by the tests on 127.0.0.1), skopeo and apache2-utils
# (htpasswd) to make fixtures, openssl for a test CA, containers-common
# (the default seccomp profile the engine applies, as Podman does), and
# passt (pasta: a rootless engine's user-mode networking).
set -eu
export DEBIAN_FRONTEND=noninteractive
need=""
for p in libseccomp-dev rustc-web cargo-web rust-web-src musl-tools libunwind-14-dev busybox-static runc crun containerd podman uidmap docker.io buildah iproute2 procps \
    qemu-system-x86 libcap-ng-dev cpio binutils debootstrap e2fsprogs containernetworking-plugins gcc libc6-dev \
    man-db bash-completion iptables \
    python3-grpcio python3-grpc-tools docker-registry skopeo apache2-utils openssl golang-github-containers-common passt; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -qq
    apt-get install -y -qq $need >/dev/null
fi
# /dev/net/tun as Debian's udev rules make it (0666: pasta opens it for an
# unprivileged user); a machine booted without udev may have it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    chmod 0666 /dev/net/tun
fi
# Booted with systemd, docker.io's package starts a system dockerd (a bridge,
# iptables rules); the tests start their own. Only one installed just now is
# stopped and disabled, never a Docker that was there before.
case " $need " in
*" docker.io "*)
    if [ -d /run/systemd/system ]; then
        systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
    fi
    ;;
esac
# containerd 2.3.4 beside Debian's 1.6 (most nodes run 1.7 or 2.x): built
# offline from ../shared/containerd (about 70 s) when it is not there yet;
# scripts/test.sh runs the shim's ctr tests against it too.
CONTAINERD2=/opt/containerd-2/bin
shared_containerd="$(dirname "$0")/../../shared/containerd"
if [ ! -x "$CONTAINERD2/containerd" ] && [ -x "$shared_containerd/build.sh" ]; then
    "$shared_containerd/build.sh" "$CONTAINERD2" >/dev/null
fi
# CRIU 4.2 for checkpoint/restore (Debian 12's 3.17 cannot dump on kernels
# with a [vvar_vclock] mapping): built from ../shared/criu (about 40 s) into
# /usr/local/sbin, ahead of /usr/sbin on PATH. The tests skip, saying so,
# without a criu that passes `criu check`.
shared_criu="$(dirname "$0")/../../shared/criu"
if [ -x "$shared_criu/build.sh" ]; then
    "$shared_criu/build.sh" /usr/local/sbin/criu >/dev/null
fi
