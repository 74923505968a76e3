#!/bin/sh
# Runs inside the systemd VM (scripts/systemd-vm/run.sh) as a service: skiff-oci
# with --systemd-cgroup against the real systemd, compared with runc's driver
# in the same VM; one PASS/FAIL line per check, a summary line, then the VM
# powers off (the unit's ExecStopPost).
export PATH=/payload:/usr/sbin:/usr/bin:/sbin:/bin
pass=0; fail=0
check() {
    name=$1; shift
    if "$@"; then echo "PASS $name"; pass=$((pass+1)); else echo "FAIL $name"; fail=$((fail+1)); fi
}
eq() { [ "$1" = "$2" ] || { echo "  expected [$2], got [$1]"; return 1; }; }
# Runs a command; its output is shown only when it fails.
said() { "$@" >/tmp/said 2>&1 || { sed 's/^/  /' /tmp/said | tail -5; return 1; }; }
absent() { [ ! -e "$1" ] || { echo "  $1 is still there"; return 1; }; }
prop() { systemctl show -p "$2" --value "$1"; }
S="skiff-oci --systemd-cgroup --root /run/skiff"
B=/tmp/bundle
mkdir -p $B && cp -a /payload/rootfs $B/rootfs

# A bundle with the given cgroupsPath, program and resources.
bundle() { # $1 = cgroupsPath, $2 = args JSON, $3 = resources JSON
    rm -f $B/config.json
    skiff-oci spec --bundle $B
    sed -i 's/"terminal": true/"terminal": false/' $B/config.json
    awk -v args="$2" -v res="$3" -v cg="$1" '
        /"args": \[/ { print "    \"args\": " args ","; skip=1; next }
        skip && /\]/ { skip=0; next }
        skip { next }
        /^    "resources": \{/ { print "    \"cgroupsPath\": \"" cg "\","; print "    \"resources\": " res ","; skipres=1; next }
        skipres && /^    \},?$/ { skipres=0; next }
        skipres { next }
        { print }' $B/config.json > $B/c.json && mv $B/c.json $B/config.json
}
RES='{"memory": {"limit": 67108864}, "cpu": {"shares": 1024, "quota": 20000, "period": 100000}, "pids": {"limit": 20}}'

# On a v1 (hybrid) tree (run.sh's SKIFF_VM_CGROUP=v1): the scope, its v1
# groups and properties, update and delete, against runc's for the same
# bundle; the rest below is the v2 tree's.
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "systemd: $(systemctl --version | head -1); cgroup v1 (hybrid)"
    bundle "system.slice:skiff:v1c" '["sleep", "1000"]' "$RES"
    check "v1: run -d with --systemd-cgroup" said $S run -d --bundle $B v1c
    pid=$($S state v1c | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
    U=skiff-v1c.scope
    check "v1: the scope is active" eq "$(prop $U ActiveState)" active
    for c in memory pids cpu,cpuacct; do
        check "v1: init is in the scope's $c group" \
            grep -qx "$pid" /sys/fs/cgroup/$c/system.slice/$U/cgroup.procs
    done
    check "v1: MemoryLimit property" eq "$(prop $U MemoryLimit)" 67108864
    check "v1: memory.limit_in_bytes" \
        eq "$(cat /sys/fs/cgroup/memory/system.slice/$U/memory.limit_in_bytes)" 67108864
    check "v1: cpu.cfs_quota_us" eq "$(cat /sys/fs/cgroup/cpu,cpuacct/system.slice/$U/cpu.cfs_quota_us)" 20000
    check "v1: pids.max" eq "$(cat /sys/fs/cgroup/pids/system.slice/$U/pids.max)" 20
    bundle "system.slice:runc:r1" '["sleep", "1000"]' "$RES"
    (cd $B && runc --systemd-cgroup --root /run/runc-test run -d r1 >/dev/null 2>&1)
    for p in MemoryLimit CPUQuotaPerSecUSec TasksMax CPUShares Delegate Slice; do
        check "v1: as runc's: $p" eq "$(prop $U $p)" "$(prop runc-r1.scope $p)"
    done
    runc --root /run/runc-test delete -f r1
    check "v1: update --memory" $S update --memory 33554432 v1c
    check "v1: MemoryLimit after update" eq "$(prop $U MemoryLimit)" 33554432
    check "v1: delete --force" $S delete --force v1c
    check "v1: no unit after delete" eq "$(prop $U LoadState)" not-found
    check "v1: no memory group after delete" absent /sys/fs/cgroup/memory/system.slice/$U
    echo "SKIFF-SYSTEMD-RESULT: $pass passed, $fail failed"
    exit 0
fi

echo "systemd: $(systemctl --version | head -1); controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# 1. A scope unit with the container's init and resources.
bundle "system.slice:skiff:c1" '["sleep", "1000"]' "$RES"
check "run -d with --systemd-cgroup" $S run -d --bundle $B c1
pid=$($S state c1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
U=skiff-c1.scope
G=/sys/fs/cgroup/system.slice/$U
check "the scope is active" eq "$(prop $U ActiveState)" active
check "init is in the scope's group" grep -qx "$pid" $G/cgroup.procs
check "systemd's ControlGroup is the group" eq "$(prop $U ControlGroup)" /system.slice/$U
check "Delegate=yes" eq "$(prop $U Delegate)" yes
check "MemoryMax property" eq "$(prop $U MemoryMax)" 67108864
check "memory.max file" eq "$(cat $G/memory.max)" 67108864
check "CPUQuotaPerSecUSec property" eq "$(prop $U CPUQuotaPerSecUSec)" 200ms
check "cpu.max file" eq "$(cat $G/cpu.max)" "20000 100000"
check "TasksMax property" eq "$(prop $U TasksMax)" 20
check "CPUWeight property" eq "$(prop $U CPUWeight)" 39

# 2. The same bundle under runc's systemd driver: the same properties.
bundle "system.slice:runc:r1" '["sleep", "1000"]' "$RES"
if runc --systemd-cgroup --root /run/runc-test run -d r1 --bundle $B >/dev/null 2>&1 ||
    (cd $B && runc --systemd-cgroup --root /run/runc-test run -d r1 >/dev/null 2>&1); then
    for p in MemoryMax CPUQuotaPerSecUSec CPUQuotaPeriodUSec TasksMax CPUWeight Delegate \
        Slice DefaultDependencies MemoryAccounting CPUAccounting TasksAccounting IOAccounting; do
        check "as runc's: $p" eq "$(prop $U $p)" "$(prop runc-r1.scope $p)"
    done
    runc --root /run/runc-test delete -f r1
else
    echo "FAIL runc --systemd-cgroup run"; fail=$((fail+1))
fi

# 3. update changes the unit and the file; exec joins the scope.
check "update --memory" $S update --memory 33554432 c1
check "MemoryMax after update" eq "$(prop $U MemoryMax)" 33554432
check "memory.max after update" eq "$(cat $G/memory.max)" 33554432
$S exec -d --pid-file /tmp/exec.pid c1 sleep 300
check "exec runs in the scope" eq "$(cat /proc/$(cat /tmp/exec.pid)/cgroup)" "0::/system.slice/$U"

# pause/resume, ps and events act on the scope's group as on any other.
check "pause" $S pause c1
check "... freezes the scope's group" eq "$(cat $G/cgroup.freeze)" 1
check "resume" $S resume c1
check "... thaws it" eq "$(cat $G/cgroup.freeze)" 0
check "ps lists init" sh -c "$S ps --format json c1 | grep -q $pid"
check "events --stats reads the group" sh -c "$S events --stats c1 | grep -q 33554432"

# 4. delete stops the unit: no unit, no group.
check "delete --force" $S delete --force c1
check "no unit after delete" eq "$(prop $U LoadState)" not-found
check "no group after delete" absent $G

# 5. A kubepods-style slice that does not exist yet: created, dashes expanded.
bundle "kubepods-burstable-pod1.slice:skiff:c2" '["sleep", "1000"]' '{"pids": {"limit": 10}}'
check "run in a new nested slice" $S run -d --bundle $B c2
K=/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/skiff-c2.scope
check "the scope's group under the expanded slices" eq "$(cat $K/pids.max)" 10
check "the slice is a unit" eq "$(prop kubepods-burstable-pod1.slice ActiveState)" active
# Init killed behind our back: systemd collects the empty scope; delete
# still succeeds and leaves nothing.
kill -9 "$($S state c2 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')"
sleep 1
check "delete after init was killed" $S delete --force c2
check "no unit after that" eq "$(prop skiff-c2.scope LoadState)" not-found
check "no group after that" absent $K

# 6. A unit name in use is refused, and the first container is untouched.
bundle "system.slice:skiff:c3" '["sleep", "1000"]' '{}'
$S run -d --bundle $B c3
check "a second container on the same unit is refused" sh -c "! $S run -d --bundle $B c4 2>/tmp/err"
check "... saying so" grep -q "skiff-c3.scope" /tmp/err
check "... and the first keeps its unit" eq "$(prop skiff-c3.scope ActiveState)" active
$S delete --force c3

# 7. Speed: run of /bin/true with the systemd driver, skiff-oci vs runc vs
# crun in this VM, interleaved (one of each per round, so that the VM's
# noise falls on all three alike); medians of 15 rounds, ms. Only when
# asked (SKIFF_VM_BENCH=1 for run.sh): the numbers are TCG's, for docs/benchmarks.md.
if [ -e /payload/bench ]; then
    bundle "system.slice:bench:b" '["true"]' '{"memory": {"limit": 67108864}}'
    ms() { t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 )); }
    cd $B
    i=0
    while [ $i -lt 15 ]; do
        echo "skiff-oci $(ms skiff-oci --systemd-cgroup --root /run/skiff run b)"
        echo "runc $(ms runc --systemd-cgroup --root /run/runc-bench run b)"
        echo "crun $(ms crun --systemd-cgroup --root /run/crun-bench run b)"
        i=$((i+1))
    done >/tmp/bench
    cd /
    for n in skiff-oci runc crun; do
        awk -v n=$n '$1 == n {print $2}' /tmp/bench | sort -n |
            awk -v n=$n '{a[NR]=$1} END {printf "BENCH %s %.2f ms\n", n, a[int((NR+1)/2)]/1000}'
    done
fi

# 8. The shim under containerd, with a cgroupsPath in systemd's form (what
# the CRI writes for a pod of the kubelet's systemd driver; runc's
# SystemdCgroup option, which the CRI and ctr give runc's runtime type only,
# is taken too: a unit test). containerd's default spec, with its device
# list, on this 6.1 kernel.
if [ -x /payload/containerd-shim-skiff-v2 ]; then
    C=/tmp/ctrd
    mkdir -p $C
    printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n' $C $C $C >$C/config.toml
    containerd --config $C/config.toml >$C/log 2>&1 &
    ctrd=$!
    for i in $(seq 100); do ctr --address $C/sock version >/dev/null 2>&1 && break; sleep 0.1; done
    CTR="ctr --address $C/sock -n t"
    P=kubepods-besteffort-pod7.slice
    KG=/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/$P
    check "ctr run with a systemd cgroupsPath" said $CTR run -d --rootfs \
        --runtime io.containerd.skiff.v2 --env PATH=/usr/bin:/bin --cgroup "$P:cri-containerd:s1" \
        $B/rootfs s1 sleep 1000
    check "the shim's task is in its scope" eq "$(prop cri-containerd-s1.scope ActiveState)" active
    spid=$($CTR task ls | awk '$1 == "s1" {print $2}')
    check "... with the task's init" grep -qx "$spid" $KG/cri-containerd-s1.scope/cgroup.procs
    # The VM's root disk, made a node of inside: allowed to make (containerd
    # allows mknod), refused to read (no rule allows it).
    disk="$((0x$(stat -c %t /dev/vda))) $((0x$(stat -c %T /dev/vda)))"
    check "... and containerd's device rules" said $CTR task exec --exec-id e1 s1 sh -c \
        "head -c1 /dev/zero | wc -c | grep -qx 1 && mknod /tmp/disk b $disk && ! head -c1 /tmp/disk"
    for t in s1; do
        $CTR task kill -s KILL $t >/dev/null 2>&1
        for i in $(seq 50); do $CTR task ls | grep -q "^$t .*STOPPED" && break; sleep 0.1; done
        $CTR task delete $t >/dev/null 2>&1
        $CTR container delete $t >/dev/null 2>&1
        check "task $t deleted: no unit" eq "$(prop cri-containerd-$t.scope LoadState)" not-found
        check "task $t deleted: no group" absent $KG/cri-containerd-$t.scope
    done
    kill $ctrd 2>/dev/null; wait $ctrd 2>/dev/null
else
    echo "skipped: the shim under containerd (no shim given)"
fi

# 8b. A pod through containerd's CRI as the kubelet's systemd driver asks
# for it: the cgroup parent a kubepods slice, which the CRI turns into
# cgroupsPath slice:cri-containerd:ID, each container a scope of its own;
# once with the skiff shim, once with runc's shim running skiff-oci with
# SystemdCgroup = true (--systemd-cgroup). tests/cri's scenario, whole.
if [ -x /payload/cri/run.sh ]; then
    # (minbase has no kmod: busybox's insmod, from the bundle.)
    for m in llc stp bridge veth overlay; do /payload/rootfs/usr/bin/busybox insmod /payload/modules/$m.ko; done
    cri() { # $1 = the pod's number, then run.sh's arguments
        pod=$1; shift
        CRI_GEN_DIR=/payload/cri/gen CRI_RUN_DIR=/tmp/cri-$pod /payload/cri/run.sh --images /payload/cri/images \
            --cgroup-parent /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod$pod.slice \
            --systemd-cgroup "$@" >/tmp/cri-$pod.log 2>&1
        grep -q "RESULT: PASS" /tmp/cri-$pod.log ||
            { grep -E "^FAIL" /tmp/cri-$pod.log | sed 's/^/  /'; grep -vE "^(PASS|FAIL)" /tmp/cri-$pod.log | sed 's/^/  /' | tail -20; return 1; }
        grep -E "^PASS: .*scope" /tmp/cri-$pod.log | sed 's/^PASS: /  /; s/ -- .*//'
    }
    check "CRI pod under a kubepods slice, skiff shim" cri 21 --runtime-handler skiff
    # (containerd 1.6's runc shim may miss the OOM notice of a scope that
    # systemd removed at once, as with runc: see docs/testing.md.)
    export CRI_OOM_REASON_OPTIONAL=1
    check "CRI pod under a kubepods slice, runc shim + skiff-oci --systemd-cgroup" cri 22 \
        --runtime-handler skiffrunc --runtime-type io.containerd.runc.v2 --binary-name /payload/skiff-oci
    # The reference, the same way: runc's shim with Debian's runc (which
    # misses the OOM notice too).
    check "CRI pod under a kubepods slice, runc shim + runc (the reference)" cri 23 \
        --runtime-handler runcref --runtime-type io.containerd.runc.v2 --binary-name /usr/sbin/runc
    unset CRI_OOM_REASON_OPTIONAL
    check "no pod slice holds a group" eq "$(ls -d /sys/fs/cgroup/kubepods.slice/*/kubepods-besteffort-pod2?.slice/*.scope 2>/dev/null)" ""
else
    echo "skipped: the CRI pod (no shim given)"
fi

# 9. Podman with its default cgroup manager, systemd: conmon runs skiff-oci
# with --systemd-cgroup and a machine.slice:libpod:ID cgroupsPath.
if command -v podman >/dev/null; then
    # (vfs storage: this kernel loads no overlay module in the VM.)
    PM="podman --runtime /payload/skiff-oci --cgroup-manager systemd --storage-driver vfs --root /tmp/podman/root --runroot /tmp/podman/run"
    check "podman run -d with skiff-oci" said $PM run -d --name p1 --network none \
        --rootfs $B/rootfs sleep 1000
    cid=$($PM inspect --format '{{.Id}}' p1 2>/dev/null)
    ppid=$($PM inspect --format '{{.State.Pid}}' p1 2>/dev/null)
    check "... its container is the scope libpod-ID.scope" \
        eq "$(prop libpod-$cid.scope ActiveState)" active
    check "... with the container's init" \
        grep -qx "$ppid" /sys/fs/cgroup/machine.slice/libpod-$cid.scope/cgroup.procs
    check "podman exec" eq "$($PM exec p1 echo in-p1 2>&1)" in-p1
    check "podman rm -f" said $PM rm -f p1
    check "... no unit left" eq "$(prop libpod-$cid.scope LoadState)" not-found
else
    echo "FAIL podman is not in the image"; fail=$((fail+1))
fi

# 10. Rootless: a non-root caller's container is a scope of its own systemd
# (`systemd --user`, on its session bus), as rootless Podman asks for it.
U="runuser -u u1 -- env XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"
for i in $(seq 100); do [ -S /run/user/1000/bus ] && break; sleep 0.1; done
UB=/tmp/ubundle
mkdir -p $UB && cp -a /payload/rootfs $UB/rootfs && chown -R u1 $UB
$U skiff-oci spec --rootless --bundle $UB
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sleep", "1000"/' $UB/config.json
sed -i 's/^  "linux": {/  "linux": {\n    "cgroupsPath": "user.slice:skiff:uc1",\n    "resources": {"pids": {"limit": 10}},/' $UB/config.json
chown u1 $UB/config.json
US="$U /payload/skiff-oci --systemd-cgroup --root /run/user/1000/skiff"
check "rootless run -d with --systemd-cgroup" said $US run -d --bundle $UB uc1
uprop() { $U systemctl --user show -p "$2" --value "$1"; }
check "... the user's systemd has the scope" eq "$(uprop skiff-uc1.scope ActiveState)" active
UG=/sys/fs/cgroup$(uprop skiff-uc1.scope ControlGroup)
upid=$($US state uc1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
check "... below user@1000.service" sh -c "echo $UG | grep -q /user@1000.service/"
check "... with the container's init" grep -qx "$upid" $UG/cgroup.procs
check "... and its pids limit" eq "$(cat $UG/pids.max)" 10
check "rootless delete" said $US delete --force uc1
check "... no unit left" eq "$(uprop skiff-uc1.scope LoadState)" not-found

left=$(systemctl list-units --all --plain --no-legend 'skiff-*.scope' 'runc-*.scope' 'bench-*.scope' 'libpod-*.scope' 'cri-containerd-*.scope' 2>/dev/null)
check "no units left behind" eq "$left" ""
echo "SKIFF-SYSTEMD-RESULT: $pass passed, $fail failed"
