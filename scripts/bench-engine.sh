#!/bin/sh
# The engine against Podman, same machine, same run (issue 16's figures):
#   - pull + unpack of a debootstrap'ed Debian 12 (minbase) image from a
#     registry on 127.0.0.1, into an empty store each time;
#   - `images` and `image inspect` with 500 images in the store.
#   - `build` of a 6-step Containerfile on that image against `buildah
#     bud` (crun where the host's cgroups let it, else runc), uncached and
#     unchanged (cached) rebuilds.
# usage: scripts/bench-engine.sh [ROUNDS] [build|run]   (default 5; medians,
#        ms; `build`: only the build rows; `run`: the pulls and the two
#        run --rm rows, nothing after them)
#        SKIFF_BIN: the skiff binary (default: this tree's release build);
#        SKIFF_BENCH_WORK: where the image's rootfs is kept.
# Needs: a release build of skiff (cargo build --release -p skiff), podman,
# docker-registry, debootstrap (the image's rootfs is made once, from
# Debian's mirror, into target/engine-bench/rootfs).
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
only=${2:-all}
skiff=${SKIFF_BIN:-$(pwd)/target/x86_64-unknown-linux-gnu/release/skiff}
[ -x "$skiff" ] || { echo "build it first: cargo build --release -p skiff" >&2; exit 2; }
# Containers run with the static skiff-oci (scripts/build-static.sh), as installed.
static=$(pwd)/target/musl/x86_64-unknown-linux-musl/release/skiff-oci
[ -z "${SKIFF_OCI:-}" ] && [ -x "$static" ] && export SKIFF_OCI="$static"
work=${SKIFF_BENCH_WORK:-$(pwd)/target/engine-bench}
mkdir -p "$work"
if [ ! -d "$work/rootfs" ]; then
    rm -rf "$work/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$work/rootfs.tmp" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
        { echo "skipped: no Debian mirror to make the image from"; exit 77; }
    mv "$work/rootfs.tmp" "$work/rootfs"
fi
tmp=$(mktemp -d /var/tmp/skiff-bench-engine.XXXXXX)
rpid=""
shm=""
cleanup() {
    set +e
    [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    # Containers and pods a failed step left running, in every store.
    for st in "$tmp"/*/store.db; do
        [ -e "$st" ] || continue
        r=$(dirname "$st")
        for p in $("$skiff" --root "$r" pod ps -q 2>/dev/null); do "$skiff" --root "$r" pod rm -f "$p" >/dev/null 2>&1; done
        ids=$("$skiff" --root "$r" ps -a -q 2>/dev/null)
        [ -n "$ids" ] && "$skiff" --root "$r" rm -f $ids >/dev/null 2>&1
    done
    podman --root "$tmp/podman" --runroot "$tmp/podman-run" rm -f -a -t 0 >/dev/null 2>&1
    podman --root "$tmp/podman" --runroot "$tmp/podman-run" pod rm -f -a -t 0 >/dev/null 2>&1
    for d in "$tmp" $shm; do
        for m in $(awk -v t="$d" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
        rm -rf "$d"
    done
    return 0
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n' "$tmp" "$port" >"$tmp/registry.yml"
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
rpid=$!
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do sleep 0.1; done
image=127.0.0.1:$port/debian:bench
tar -C "$work/rootfs" -c . | "$skiff" --root "$tmp/seed" import - debian:bench >/dev/null
"$skiff" --root "$tmp/seed" push -q debian:bench "$image"
size=$(du -sh "$work/rootfs/" | cut -f1); files=$(find "$work/rootfs/" | wc -l)

ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
PM() { podman --root "$tmp/podman" --runroot "$tmp/podman-run" "$@"; }

if [ "$only" != build ]; then
# 1. Pull into an empty store, alternating the two. Each round gets new
#    stores, removed only after the last round: this disk's ext4 has no
#    journal, and there a new inode is not taken from those freed in the
#    last minute (five when their table is still dirty): ext4's
#    recently_deleted() scan, which makes the files made just after a
#    store of 6.7k files was removed cost several times more, a cost of
#    the deletion, not of the pull (perf: find_get_block_common under
#    ext4_create).
: >"$tmp/pull.skiff"; : >"$tmp/pull.podman"
for i in $(seq "$rounds"); do
    sync; t0=$(ms)
    "$skiff" --root "$tmp/pulls/s$i" pull -q "$image" >/dev/null
    t1=$(ms); echo $((t1 - t0)) >>"$tmp/pull.skiff"
    sync; t0=$(ms)
    podman --root "$tmp/pulls/p$i" --runroot "$tmp/pulls/r$i" pull -q --tls-verify=false "$image" >/dev/null
    t1=$(ms); echo $((t1 - t0)) >>"$tmp/pull.podman"
done
for i in $(seq "$rounds"); do
    podman --root "$tmp/pulls/p$i" --runroot "$tmp/pulls/r$i" system reset -f >/dev/null 2>&1 || true
done
for m in $(awk -v t="$tmp/pulls" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
rm -rf "$tmp/pulls"
ps=$(median <"$tmp/pull.skiff"); pp=$(median <"$tmp/pull.podman")
# The same with both stores on tmpfs: the disk out of the picture (this
# machine's disk slows down run after run as it is written).
shm=$(mktemp -d /dev/shm/skiff-bench-engine.XXXXXX)
: >"$tmp/shm.skiff"; : >"$tmp/shm.podman"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$shm/s" pull -q "$image" >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/shm.skiff"
    rm -rf "$shm/s"
    t0=$(ms); podman --root "$shm/p" --runroot "$shm/pr" pull -q --tls-verify=false "$image" >/dev/null; t1=$(ms)
    echo $((t1 - t0)) >>"$tmp/shm.podman"
    podman --root "$shm/p" --runroot "$shm/pr" system reset -f >/dev/null 2>&1 || true
    for m in $(awk -v t="$shm" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
    rm -rf "$shm/p" "$shm/pr"
done
rm -rf "$shm"
ts=$(median <"$tmp/shm.skiff"); tp=$(median <"$tmp/shm.podman")
# A re-pull of what the store has.
"$skiff" --root "$tmp/s" pull -q "$image" >/dev/null
t0=$(ms); "$skiff" --root "$tmp/s" pull -q "$image" >/dev/null; t1=$(ms); rs=$((t1 - t0))
PM pull -q --tls-verify=false "$image" >/dev/null
t0=$(ms); PM pull -q --tls-verify=false "$image" >/dev/null; t1=$(ms); rp=$((t1 - t0))

fi
if [ "$only" != build ]; then
# 2. run --rm of /bin/true from the Debian image (no network for either:
#    Podman would make one; its default rlimits are above this machine's
#    hard limits, so it gets lower ones; runc, as crun refuses this hybrid
#    cgroup host).
"$skiff" --root "$tmp/s" pull -q "$image" >/dev/null 2>&1 || true
PM pull -q --tls-verify=false "$image" >/dev/null
: >"$tmp/run.skiff"; : >"$tmp/run.podman"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$tmp/s" run --rm --network none "$image" true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/run.skiff"
    t0=$(ms); PM --runtime runc run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$image" true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/run.podman"
done
us=$(median <"$tmp/run.skiff"); up=$(median <"$tmp/run.podman")
# 2b. The same on each one's default bridge network (skiff: its native
#     path, see docs/engine.md; Podman: its own default backend).
: >"$tmp/runnet.skiff"; : >"$tmp/runnet.podman"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$tmp/s" run --rm "$image" true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/runnet.skiff"
    t0=$(ms); PM --runtime runc run --rm --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$image" true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/runnet.podman"
done
uns=$(median <"$tmp/runnet.skiff"); unp=$(median <"$tmp/runnet.podman")

fi
if [ "$only" = all ]; then
# 2c. Containers that stay: $detached (default 100) started detached one
#     after another (total wall), exec of /bin/true into one, the monitor's
#     memory per container (skiff's monitor against conmon, RSS), ps with
#     twice as many containers (half of them only created), and a pod
#     with two containers (pod create + two run -d --pod).
detached=${SKIFF_BENCH_DETACHED:-100}
t0=$(ms)
for i in $(seq "$detached"); do "$skiff" --root "$tmp/s" run -d --network none "$image" sleep 1000 >/dev/null; done
t1=$(ms); ds=$((t1 - t0))
t0=$(ms)
for i in $(seq "$detached"); do PM --runtime runc run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$image" sleep 1000 >/dev/null; done
t1=$(ms); dp=$((t1 - t0))
rss() { ps -o rss= -p "$(pgrep -d, -f "$1")" | awk '{s += $1; n++} END {print (n ? int(s / n) : 0)}'; }
ms_rss=$(rss "__monitor"); mp_rss=$(rss "^/usr/bin/conmon")
# Private (dirty) memory: what each one costs beyond the pages all share.
private() { for p in $(pgrep -f "$1"); do awk '/^Private_Dirty/ {print $2}' "/proc/$p/smaps_rollup"; done | awk '{s += $1; n++} END {print (n ? int(s / n) : 0)}'; }
ms_priv=$(private "__monitor"); mp_priv=$(private "^/usr/bin/conmon")
one=$("$skiff" --root "$tmp/s" ps -q | head -1); pone=$(PM ps -q | head -1)
: >"$tmp/exec.skiff"; : >"$tmp/exec.podman"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$tmp/s" exec "$one" true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/exec.skiff"
    t0=$(ms); PM exec "$pone" true; t1=$(ms); echo $((t1 - t0)) >>"$tmp/exec.podman"
done
es=$(median <"$tmp/exec.skiff"); ep=$(median <"$tmp/exec.podman")
for i in $(seq "$detached"); do "$skiff" --root "$tmp/s" create --network none "$image" true >/dev/null; PM create --network none "$image" true >/dev/null; done
: >"$tmp/ps.skiff"; : >"$tmp/ps.podman"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$tmp/s" ps -a >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/ps.skiff"
    t0=$(ms); PM ps -a >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/ps.podman"
done
pss=$(median <"$tmp/ps.skiff"); psp=$(median <"$tmp/ps.podman")
"$skiff" --root "$tmp/s" rm -f $("$skiff" --root "$tmp/s" ps -a -q) >/dev/null
PM rm -f -a -t 0 >/dev/null 2>&1 || true
t0=$(ms)
"$skiff" --root "$tmp/s" pod create --name bp --network none >/dev/null
for i in 1 2; do "$skiff" --root "$tmp/s" run -d --pod bp "$image" sleep 1000 >/dev/null; done
t1=$(ms); pods=$((t1 - t0))
t0=$(ms)
# The pod's infra takes no --ulimit: runc and this machine's limits
# through a containers.conf of the run's own.
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' >"$tmp/containers.conf"
CONTAINERS_CONF="$tmp/containers.conf" PM pod create --name bp --network none >/dev/null
for i in 1 2; do CONTAINERS_CONF="$tmp/containers.conf" PM run -d --pod bp "$image" sleep 1000 >/dev/null; done
t1=$(ms); podp=$((t1 - t0))
"$skiff" --root "$tmp/s" pod rm -f bp >/dev/null
CONTAINERS_CONF="$tmp/containers.conf" PM pod rm -f -t 0 bp >/dev/null 2>&1 || true
PM rmi -a -f >/dev/null 2>&1 || true

# 3. 500 small images in both stores (one docker-archive, loaded by each).
for i in $(seq 500); do
    mkdir -p "$tmp/tiny/$i" && echo "$i" >"$tmp/tiny/$i/id"
    tar -C "$tmp/tiny/$i" -c . | "$skiff" --root "$tmp/many" import - "tiny/$i:1" >/dev/null
done
"$skiff" --root "$tmp/many" save -o "$tmp/many.tar" $(seq -f 'localhost/tiny/%g:1' 500)
PM load -q -i "$tmp/many.tar" >/dev/null
: >"$tmp/images.skiff"; : >"$tmp/images.podman"; : >"$tmp/inspect.skiff"; : >"$tmp/inspect.podman"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$tmp/many" images >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/images.skiff"
    t0=$(ms); PM images >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/images.podman"
    t0=$(ms); "$skiff" --root "$tmp/many" inspect localhost/tiny/250:1 >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/inspect.skiff"
    t0=$(ms); PM image inspect localhost/tiny/250:1 >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/inspect.podman"
done
is=$(median <"$tmp/images.skiff"); ip=$(median <"$tmp/images.podman")
ns=$(median <"$tmp/inspect.skiff"); np=$(median <"$tmp/inspect.podman")
PM rmi -a -f >/dev/null 2>&1 || true

fi

if [ "$only" != run ]; then
# 4. build: a 6-step Containerfile on the Debian image (offline: RUN
#    steps write files), uncached (--no-cache; buildah: --no-cache) and an
#    unchanged rebuild (the cache: buildah --layers), in stores that hold
#    the base image already. buildah runs RUN with crun (the issue's
#    yardstick) where crun accepts the host's cgroups, else with runc.
bctx="$tmp/bctx"
mkdir -p "$bctx/data"
for i in $(seq 50); do echo "file $i" >"$bctx/data/f$i"; done
cat >"$bctx/Containerfile" <<EOF
FROM $image
ENV APP=/srv/app
WORKDIR /srv/app
COPY data/ ./data/
RUN for i in \$(seq 200); do echo "line \$i" >>/srv/app/generated; done && mkdir -p /var/lib/app
RUN echo done >/var/lib/app/state && ls /srv/app >/srv/app/listing
EOF
"$skiff" --root "$tmp/b" pull -q "$image" >/dev/null
BA() { buildah --root "$tmp/buildah" --runroot "$tmp/buildah-run" "$@"; }
BA pull -q --tls-verify=false "$image" >/dev/null
bruntime=crun
printf 'FROM %s\nRUN true\n' "$image" >"$tmp/probe.Containerfile"
BA bud -q --runtime crun --tls-verify=false -f "$tmp/probe.Containerfile" "$bctx" >/dev/null 2>&1 || bruntime=runc
: >"$tmp/build.skiff"; : >"$tmp/build.buildah"; : >"$tmp/rebuild.skiff"; : >"$tmp/rebuild.buildah"
for i in $(seq "$rounds"); do
    t0=$(ms); "$skiff" --root "$tmp/b" build -q --no-cache -t bench:1 "$bctx" >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/build.skiff"
    t0=$(ms); BA bud -q --layers --no-cache --runtime "$bruntime" --tls-verify=false --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 -t bench:1 "$bctx" >/dev/null; t1=$(ms)
    echo $((t1 - t0)) >>"$tmp/build.buildah"
    t0=$(ms); "$skiff" --root "$tmp/b" build -q -t bench:1 "$bctx" >/dev/null; t1=$(ms); echo $((t1 - t0)) >>"$tmp/rebuild.skiff"
    t0=$(ms); BA bud -q --layers --runtime "$bruntime" --tls-verify=false --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 -t bench:1 "$bctx" >/dev/null; t1=$(ms)
    echo $((t1 - t0)) >>"$tmp/rebuild.buildah"
done
bs=$(median <"$tmp/build.skiff"); bb=$(median <"$tmp/build.buildah")
rbs=$(median <"$tmp/rebuild.skiff"); rbb=$(median <"$tmp/rebuild.buildah")
BA rmi -a -f >/dev/null 2>&1 || true
fi

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo "engine vs podman $(podman --version | awk '{print $3}'), medians of $rounds, ms (image: Debian 12 minbase, $size, $files files)"
printf '%-44s %8s %8s %6s\n' "what" skiff "podman/buildah" ratio
if [ "$only" = all ]; then
    printf '%-44s %8s %8s %6s\n' "pull + unpack, empty store" "$ps" "$pp" "$(ratio "$ps" "$pp")"
    printf '%-44s %8s %8s %6s\n' "pull + unpack, both stores on tmpfs" "$ts" "$tp" "$(ratio "$ts" "$tp")"
    printf '%-44s %8s %8s %6s\n' "pull of an image the store has" "$rs" "$rp" "$(ratio "$rs" "$rp")"
fi
if [ "$only" != build ]; then
    printf '%-44s %8s %8s %6s\n' "run --rm /bin/true" "$us" "$up" "$(ratio "$us" "$up")"
    printf '%-44s %8s %8s %6s\n' "run --rm /bin/true, default bridge network" "$uns" "$unp" "$(ratio "$uns" "$unp")"
fi
if [ "$only" = all ]; then
    printf '%-44s %8s %8s %6s\n' "$detached run -d, one after another (total)" "$ds" "$dp" "$(ratio "$ds" "$dp")"
    printf '%-44s %8s %8s %6s\n' "exec /bin/true" "$es" "$ep" "$(ratio "$es" "$ep")"
    printf '%-44s %8s %8s %6s\n' "monitor RSS per container, KiB (conmon)" "$ms_rss" "$mp_rss" "$(ratio "$ms_rss" "$mp_rss")"
    printf '%-44s %8s %8s %6s\n' "monitor private memory, KiB (conmon)" "$ms_priv" "$mp_priv" "$(ratio "$ms_priv" "$mp_priv")"
    printf '%-44s %8s %8s %6s\n' "ps -a, $((2 * detached)) containers" "$pss" "$psp" "$(ratio "$pss" "$psp")"
    printf '%-44s %8s %8s %6s\n' "pod create + 2 containers" "$pods" "$podp" "$(ratio "$pods" "$podp")"
    printf '%-44s %8s %8s %6s\n' "images, 500 in the store" "$is" "$ip" "$(ratio "$is" "$ip")"
    printf '%-44s %8s %8s %6s\n' "inspect one of 500" "$ns" "$np" "$(ratio "$ns" "$np")"
fi
if [ "$only" != run ]; then
    printf '%-44s %8s %8s %6s\n' "build, 6 steps, uncached (buildah: $bruntime)" "$bs" "$bb" "$(ratio "$bs" "$bb")"
    printf '%-44s %8s %8s %6s\n' "build, unchanged rebuild (cache)" "$rbs" "$rbb" "$(ratio "$rbs" "$rbb")"
fi
