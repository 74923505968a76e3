#!/bin/bash
# Private containerd + CRI end-to-end run. Everything lives under $RUN and is
# torn down on exit (also on failure / Ctrl-C).
#
#   ./run.sh                                   # default handler (runc, io.containerd.runc.v2)
#   ./run.sh --runtime-handler skiff           # handler "skiff", runtime_type io.containerd.skiff.v2
#   ./run.sh --runtime-handler crun --runtime-type io.containerd.runc.v2 --binary-name /usr/bin/crun
#   ./run.sh --cgroup-parent /a.slice/a-b.slice --systemd-cgroup
#                                              # kubelet's systemd driver: a slice parent (each
#                                              # container a scope), SystemdCgroup for runc types
#   ./run.sh --images DIR                      # pause.tar and busybox.tar made by mkimages.sh
#   ./run.sh --keep-logs                       # keep containerd.log + pod logs in /tmp/skiff-cri-last-run/
set -uo pipefail
H="$(cd "$(dirname "$0")" && pwd)"
RUN="${CRI_RUN_DIR:-/tmp/skiff-tests/cri}"
SOCK="$RUN/containerd.sock"
# The python client compiles cri.proto here, not in the source tree.
export CRI_GEN_DIR="${CRI_GEN_DIR:-$RUN/gen}"
ROOT="$RUN/root"; STATE="$RUN/state"; CNICONF="$RUN/cni-conf"; IPAMDIR="$RUN/cni-ipam"
NETNAME="skiff-cri-harness"; BRIDGE="skiffcri0"; SUBNET="10.88.77.0/24"
CGPARENT="skiff-cri-harness"
# Debian's python3 with python3-grpcio and python3-grpc-tools (scripts/deps.sh).
PY=/usr/bin/python3

HANDLER=""; RTYPE=""; BINARY=""; KEEP=0; IMAGE="skiff.test/busybox:1"; USERNS=""
SYSTEMD=false; SCOPES=""; IMAGE_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime-handler) HANDLER="$2"; shift 2;;
    --runtime-type)    RTYPE="$2"; shift 2;;
    --binary-name)     BINARY="$2"; shift 2;;
    --image)           IMAGE="$2"; shift 2;;
    --keep-logs)       KEEP=1; shift;;
    --userns)          USERNS=--userns; shift;;
    --cgroup-parent)   CGPARENT="${2#/}"; shift 2;;
    --systemd-cgroup)  SYSTEMD=true; SCOPES=--systemd-scopes; shift;;
    --images)          IMAGE_DIR="$2"; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
if [ -z "$RTYPE" ]; then
  case "$HANDLER" in ""|runc) RTYPE="io.containerd.runc.v2";; *) RTYPE="io.containerd.$HANDLER.v2";; esac
fi

log() { echo "[run.sh] $*"; }

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
if [ -e "$RUN" ]; then log "stale $RUN found; cleaning first"; STALE=1; else STALE=0; fi

# ---------------------------------------------------------------- baseline
NETNS_BEFORE="$(ls /var/run/netns 2>/dev/null | sort)"
SHIMSOCK_BEFORE="$(ls /run/containerd/s 2>/dev/null | sort)"
# host baseline persisted across a SIGKILLed run (so stale recovery knows what pre-existed)
BASEFILE="/tmp/.skiff-cri-host-baseline"
if [ ! -f "$BASEFILE" ]; then
  x=0; [ -d /var/lib/cni ] && x=1; echo "VARLIBCNI_EXISTED=$x" > "$BASEFILE"
fi
. "$BASEFILE"
IN_STALE=0
CTRD_PID=""; CLIENT_PID=""

our_shims() {  # PIDs of shims started by *our* containerd (matched by -address)
  for p in $(pgrep -f 'containerd-shim' 2>/dev/null); do
    grep -q -- "-address $SOCK" <<< "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" && echo "$p"
  done
}

our_containerd() {  # containerd started with our config (e.g. orphaned by a SIGKILLed run.sh)
  for p in $(pgrep -x containerd 2>/dev/null); do
    grep -q -- "--config $RUN/config.toml" <<< "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" && echo "$p"
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  log "cleanup (exit code so far: $rc)"
  [ -n "$CLIENT_PID" ] && kill -TERM "$CLIENT_PID" 2>/dev/null && wait "$CLIENT_PID" 2>/dev/null
  # 1. graceful CRI teardown (CNI DEL, unmount shm, kill tasks) while containerd is alive
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null && [ -S "$SOCK" ]; then
    timeout 120 "$PY" "$H/cri_client.py" --socket "$SOCK" --cleanup
  fi
  # 2. stop containerd
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    kill -TERM "$CTRD_PID"
    for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$CTRD_PID" 2>/dev/null && kill -KILL "$CTRD_PID"
    wait "$CTRD_PID" 2>/dev/null
  fi
  for p in $(our_containerd); do log "killing stray containerd $p"; kill -KILL "$p"; done
  # 3. leftover shims + container processes (by our socket / our cgroup only)
  for p in $(our_shims); do log "killing shim $p"; kill -KILL "$p"; done
  # 3b. the VM tier's VMs and helpers, which a killed shim leaves (their
  # command lines name the sandbox directory they are listed in), and the
  # mounts in their shares
  for d in /run/containerd/skiff-vm/k8s.io/*/; do
    [ -f "$d/pids" ] || continue
    for p in $(cat "$d/pids"); do
      grep -q "$d" "/proc/$p/cmdline" 2>/dev/null && { log "killing VM process $p"; kill -KILL "$p"; }
    done
  done
  grep -o ' /run/containerd/skiff-vm/k8s.io/[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  grep -q ' /run/containerd/skiff-vm/k8s.io/' /proc/self/mountinfo || rm -rf /run/containerd/skiff-vm/k8s.io
  for d in /sys/fs/cgroup/*/"$CGPARENT" /sys/fs/cgroup/"$CGPARENT"; do
    [ -d "$d" ] || continue
    for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      log "killing leftover pid $p"; kill -KILL "$p"
    done
  done
  sleep 0.3
  # 4. unmount everything under $RUN (deepest first), incl. netns bind mounts + shm + rootfs
  for _ in 1 2 3; do
    mps="$(awk -v r="$RUN" 'index($5, r"/")==1 || $5==r {print $5}' /proc/self/mountinfo | sort -r)"
    [ -z "$mps" ] && break
    for m in $mps; do umount "$m" 2>/dev/null || umount -l "$m"; done
  done
  # 5. network: netns created during this run (only if outside state dir), bridge, IPAM, CNI cache
  for n in $(comm -13 <(echo "$NETNS_BEFORE") <(ls /var/run/netns 2>/dev/null | sort)); do
    case "$n" in cni-*) log "removing netns $n"; umount "/var/run/netns/$n" 2>/dev/null; rm -f "/var/run/netns/$n";; esac
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && { log "deleting bridge $BRIDGE"; ip link del "$BRIDGE"; }
  rm -rf "/var/lib/cni/networks/$NETNAME"
  rm -f /var/lib/cni/results/"$NETNAME"-* 2>/dev/null
  if [ "$VARLIBCNI_EXISTED" = 0 ] && [ -d /var/lib/cni ]; then
    find /var/lib/cni -depth -type d -empty -delete 2>/dev/null
  fi
  # 6. shim sockets that appeared during this run and nobody listens on any more
  for s in $(comm -13 <(echo "$SHIMSOCK_BEFORE") <(ls /run/containerd/s 2>/dev/null | sort)); do
    grep -q "/run/containerd/s/$s" <<< "$(ss -xlH 2>/dev/null)" || { log "removing stale shim socket $s"; rm -f "/run/containerd/s/$s"; }
  done
  # 7. cgroups
  for d in /sys/fs/cgroup/*/"$CGPARENT" /sys/fs/cgroup/"$CGPARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # 8. files
  if [ "$KEEP" = 1 ]; then
    rm -rf "/tmp/skiff-cri-last-run"; mkdir -p "/tmp/skiff-cri-last-run"
    cp -a "$RUN/containerd.log" "$RUN/config.toml" "$RUN/pod-logs" "/tmp/skiff-cri-last-run/" 2>/dev/null
  fi
  rm -rf "$RUN"
  [ "$IN_STALE" = 0 ] && rm -f "$BASEFILE"
  # 9. verify
  local left=0
  grep -q "$RUN" /proc/self/mountinfo && { log "LEFTOVER mounts:"; grep "$RUN" /proc/self/mountinfo; left=1; }
  [ -n "$(our_shims)" ] && { log "LEFTOVER shims: $(our_shims)"; left=1; }
  ip link show "$BRIDGE" >/dev/null 2>&1 && { log "LEFTOVER bridge $BRIDGE"; left=1; }
  [ -e "$RUN" ] && { log "LEFTOVER $RUN"; left=1; }
  [ "$left" = 0 ] && log "cleanup complete, nothing left behind"
  [ "$left" = 1 ] && [ "$rc" = 0 ] && rc=3
  log "exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$STALE" = 1 ]; then
  # a previous run was SIGKILLed: reuse cleanup logic for its leftovers
  ( IN_STALE=1; CTRD_PID="$(our_containerd | head -1)"; cleanup ) || true
  trap cleanup EXIT
fi

# ---------------------------------------------------------------- prerequisites
"$PY" -c "import grpc, grpc_tools" || { log "python3-grpcio / python3-grpc-tools missing (scripts/deps.sh)"; exit 2; }
if [ -n "$IMAGE_DIR" ]; then
  mkdir -p "$RUN/images" && cp "$IMAGE_DIR"/pause.tar "$IMAGE_DIR"/busybox.tar "$RUN/images/" || exit 2
else
  "$H/mkimages.sh" "$RUN/images" || exit 2
fi

mkdir -p "$ROOT" "$STATE" "$CNICONF" "$IPAMDIR" "$RUN/runc" "$RUN/opt" "$RUN/pod-logs"

# ---------------------------------------------------------------- CNI config
cat > "$CNICONF/10-$NETNAME.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETNAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$IPAMDIR",
        "ranges": [[{"subnet": "$SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
# NB: the pod's "lo" is brought up by containerd itself (go-cni WithLoNetwork runs
# $bin_dir/loopback); a "loopback" entry chained after bridge would act on eth0.

# ---------------------------------------------------------------- containerd config
# containerd 2.x gets its own config format (version 3: the CRI plugin split
# into cri.v1.images and cri.v1.runtime); 1.6 and 1.7 read version 2.
CTRD_MAJOR=$(containerd --version | sed -n 's/.* v\([0-9]*\)\..*/\1/p')
if [ "${CTRD_MAJOR:-1}" -ge 2 ]; then
  CRI_RT="plugins.'io.containerd.cri.v1.runtime'"
else
  CRI_RT='plugins."io.containerd.grpc.v1.cri"'
fi
EXTRA_RT=""
if [ -n "$HANDLER" ] && [ "$HANDLER" != runc ]; then
  EXTRA_RT="
[$CRI_RT.containerd.runtimes.$HANDLER]
  runtime_type = \"$RTYPE\"
"
  if [ "$RTYPE" = io.containerd.runc.v2 ]; then
    EXTRA_RT="$EXTRA_RT
[$CRI_RT.containerd.runtimes.$HANDLER.options]
  Root = \"$RUN/runc-$HANDLER\"
  BinaryName = \"$BINARY\"
  SystemdCgroup = $SYSTEMD
"
  fi
fi
RUNC_RT="
[$CRI_RT.containerd.runtimes.runc]
  runtime_type = \"io.containerd.runc.v2\"

[$CRI_RT.containerd.runtimes.runc.options]
  Root = \"$RUN/runc\"
  SystemdCgroup = false
$EXTRA_RT"
if [ "${CTRD_MAJOR:-1}" -ge 2 ]; then
cat > "$RUN/config.toml" <<EOF
version = 3
root = "$ROOT"
state = "$STATE"
required_plugins = ["io.containerd.grpc.v1.cri"]
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "$SOCK"

[plugins.'io.containerd.internal.v1.opt']
  path = "$RUN/opt"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_tcp_service = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "skiff.test/pause:1"

[$CRI_RT]
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

[$CRI_RT.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "$CNICONF"
  max_conf_num = 1

[$CRI_RT.containerd]
  default_runtime_name = "runc"
$RUNC_RT
EOF
else
cat > "$RUN/config.toml" <<EOF
version = 2
root = "$ROOT"
state = "$STATE"
required_plugins = ["io.containerd.grpc.v1.cri"]
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/opt"

[$CRI_RT]
  sandbox_image = "skiff.test/pause:1"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_tcp_service = true

[$CRI_RT.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$CNICONF"
  max_conf_num = 1

[$CRI_RT.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
$RUNC_RT
EOF
fi

# ---------------------------------------------------------------- start containerd
log "starting containerd (handler='${HANDLER}' runtime_type=$RTYPE, config $(head -1 "$RUN/config.toml"))"
containerd --config "$RUN/config.toml" --log-level info > "$RUN/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do
  [ -S "$SOCK" ] && ctr --address "$SOCK" version >/dev/null 2>&1 && break
  kill -0 "$CTRD_PID" 2>/dev/null || { log "containerd died:"; tail -30 "$RUN/containerd.log"; exit 2; }
  sleep 0.2
done
[ -S "$SOCK" ] || { log "socket never appeared"; tail -30 "$RUN/containerd.log"; exit 2; }

CTR="ctr --address $SOCK"
$CTR plugins ls | grep -E 'io.containerd.grpc.v1 +cri|overlayfs' | sed 's/^/[plugins] /'
# Listings are read whole before grep -q looks at them: with pipefail, a grep
# that stops at the first match can make the writer die of SIGPIPE, and the
# pipeline then fails although the line was there.
PLUGINS=$($CTR plugins ls)
grep -qE 'io.containerd.grpc.v1 +cri +(linux/amd64|-) +ok' <<< "$PLUGINS" || { log "CRI plugin not ok"; exit 2; }
grep -qE 'io.containerd.snapshotter.v1 +overlayfs +linux/amd64 +ok' <<< "$PLUGINS" || { log "overlayfs not ok"; exit 2; }

# ---------------------------------------------------------------- images
for t in pause busybox; do
  $CTR -n k8s.io images import "$RUN/images/$t.tar" >/dev/null || { log "import $t failed"; exit 2; }
done
IMAGES=$($CTR -n k8s.io images ls -q)
sed 's/^/[images] /' <<< "$IMAGES"
for i in skiff.test/pause:1 skiff.test/busybox:1; do
  grep -qx "$i" <<< "$IMAGES" || { log "image $i missing after import"; exit 2; }
done

# ---------------------------------------------------------------- scenario
GUEST_PIDS=""
case "$RTYPE" in
  io.containerd.skiff-vm.v2) GUEST_PIDS="--guest-pids --vm-size";;
esac
case "$RTYPE" in
  io.containerd.runc.v2) SHIM_PATTERN="^[^ ]*containerd-shim-runc-v2 .*-address $SOCK";;
  io.containerd.skiff-vm.v2) SHIM_PATTERN="^[^ ]*containerd-shim-skiff-vm-v2 .*-address $SOCK .*serve$";;
  *) SHIM_PATTERN="^[^ ]*containerd-shim-skiff-v2 .*-address $SOCK .*serve$";;
esac
# run in background + wait, so a SIGTERM to run.sh triggers cleanup immediately
"$PY" "$H/cri_client.py" --socket "$SOCK" --runtime-handler "$HANDLER" --image "$IMAGE" \
      --log-root "$RUN/pod-logs" --cgroup-parent "/$CGPARENT" $USERNS $SCOPES \
      --shim-pattern "$SHIM_PATTERN" $GUEST_PIDS &
CLIENT_PID=$!
wait "$CLIENT_PID"; RC=$?
CLIENT_PID=""
if [ "$RC" != 0 ]; then
  # What containerd and the shims said (a shim's own stderr, e.g. a panic,
  # comes through containerd's log as lines without level=info).
  log "client failed; containerd's log, but for level=info:"
  grep -v 'level=info' "$RUN/containerd.log" | tail -60
  log "containerd log tail:"
  tail -40 "$RUN/containerd.log"
fi
exit "$RC"
