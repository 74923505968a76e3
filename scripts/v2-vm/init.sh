#!/bin/sh
# PID 1 of the cgroup v2 test VM: mounts a pure cgroup v2 tree, runs skiff-oci
# against it, prints one PASS/FAIL line per check and a summary, powers off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
pass=0; fail=0
check() {
    name=$1; shift
    if "$@"; then echo "PASS $name"; pass=$((pass+1)); else echo "FAIL $name"; fail=$((fail+1)); fi
}
eq() { [ "$1" = "$2" ] || { echo "  expected [$2], got [$1]"; return 1; }; }
# The VM runs from its initramfs, where pivot_root is impossible: --no-pivot.
R="skiff-oci --root /run/skiff"
B=/bundle
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# A bundle from `spec`, no terminal, with the given program and resources.
bundle() { # $1 = args JSON, $2 = resources JSON
    rm -f $B/config.json
    $R spec --bundle $B
    sed -i 's/"terminal": true/"terminal": false/' $B/config.json
    awk -v args="$1" -v res="$2" '
        /"args": \[/ { print "    \"args\": " args ","; skip=1; next }
        skip && /\]/ { skip=0; next }
        skip { next }
        /^    "resources": \{/ { print "    \"resources\": " res ","; skipres=1; next }
        skipres && /^    \},?$/ { skipres=0; next }
        skipres { next }
        { print }' $B/config.json > $B/c.json && mv $B/c.json $B/config.json
}

bundle '["sleep", "1000"]' '{"memory": {"limit": 67108864}, "cpu": {"shares": 1024, "quota": 20000, "period": 100000}, "pids": {"limit": 20}}'
check create $R create --no-pivot --bundle $B c1
G=/sys/fs/cgroup/c1
check memory.max eq "$(cat $G/memory.max)" 67108864
check cpu.max eq "$(cat $G/cpu.max)" "20000 100000"
check cpu.weight eq "$(cat $G/cpu.weight)" 39
check pids.max eq "$(cat $G/pids.max)" 20
check init-in-group grep -qx "$($R state c1 | grep '"pid"' | tr -dc 0-9)" $G/cgroup.procs
check start $R start c1
check pause $R pause c1
check cgroup.freeze eq "$(cat $G/cgroup.freeze)" 1
check state-paused sh -c "$R state c1 | grep -q '\"paused\"'"
check resume $R resume c1
check thawed eq "$(cat $G/cgroup.freeze)" 0
check update $R update --memory 128m --pids-limit 30 --cpu-quota 50000 c1
check updated-memory eq "$(cat $G/memory.max)" 134217728
check updated-pids eq "$(cat $G/pids.max)" 30
check updated-cpu eq "$(cat $G/cpu.max)" "50000 100000"
check stats sh -c "$R events --stats c1 | grep -q '\"memory\"'"
check exec-in-group sh -c "$R exec c1 cat /proc/self/cgroup | grep -qx '0::/'"
check ps sh -c "$R ps --format json c1 | grep -q '\['"
check delete $R delete --force c1
check group-removed test ! -e $G

# Init is cloned straight into its group (CLONE_INTO_CGROUP), no migration.
bundle '["true"]' '{}'
check clone-into-cgroup sh -c "$R --trace run --no-pivot --bundle $B into1 2>&1 | grep -q cloned-into-cgroup2"
# ...and its own init there does not make the group another container's
# (which warned on every create).
check born-in-not-shared sh -c "! $R run --no-pivot --bundle $B into2 2>&1 | grep -q 'not empty'"

bundle '["sh", "-c", "tail /dev/zero"]' '{"memory": {"limit": 33554432}}'
$R run --no-pivot --bundle $B oom1; code=$?
check oom-kill-137 eq "$code" 137
check oom-group-removed test ! -e /sys/fs/cgroup/oom1

# The events stream reports the OOM kill of a process inside a live container.
bundle '["sh", "-c", "sleep 1; tail /dev/zero; sleep 1000"]' '{"memory": {"limit": 33554432}}'
$R run -d --no-pivot --bundle $B oom2
$R events --interval 1s oom2 > /tmp/events.txt &
ev=$!
i=0; while [ $i -lt 100 ] && ! grep -q '"oom"' /tmp/events.txt; do sleep 0.1; i=$((i+1)); done
kill $ev
check oom-event grep -q '"type":"oom"' /tmp/events.txt
check stats-event grep -q '"type":"stats"' /tmp/events.txt
$R delete --force oom2

bundle '["sh", "-c", "i=0; while [ $i -lt 30 ]; do (sleep 5 &) 2>/dev/null; i=$((i+1)); done; cat /sys/fs/cgroup/pids.current"]' '{"pids": {"limit": 10}}'
out=$($R run --no-pivot --bundle $B pids1)
check pids-limit-holds test "$out" -le 10
check pids-forked test "$out" -ge 5

bundle '["sh", "-c", "ls /sys/fs/cgroup | grep -c cgroup.controllers"]' '{}'
check cgroup2-mounted-inside eq "$($R run --no-pivot --bundle $B mnt1)" 1

bundle '["true"]' '{"hugepageLimits": [], "memory": {"reservation": 1048576}}'
check reservation-memory.low sh -c "$R create --no-pivot --bundle $B low1 && cat /sys/fs/cgroup/low1/memory.low | grep -qx 1048576 && $R delete low1"

bundle '["sleep", "1000"]' '{"cpu": {"idle": 1}, "unified": {"memory.high": "50000000"}, "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}'
check create-extended $R create --no-pivot --bundle $B ext1
check cpu.idle eq "$(cat /sys/fs/cgroup/ext1/cpu.idle)" 1
check unified-memory.high eq "$(cat /sys/fs/cgroup/ext1/memory.high)" 49999872
check hugetlb.2MB.max eq "$(cat /sys/fs/cgroup/ext1/hugetlb.2MB.max)" 4194304
check stats-hugetlb sh -c "$R events --stats ext1 | grep -q hugetlb"
$R delete ext1

bundle '["sleep", "1000"]' '{"cpu": {"quota": 20000, "burst": 1000}}'
check create-burst $R create --no-pivot --bundle $B burst1
check cpu.max.burst eq "$(cat /sys/fs/cgroup/burst1/cpu.max.burst)" 1000
$R delete burst1

bundle '["sleep", "1000"]' '{"network": {"classID": 1}}'
check network-refused-on-v2 sh -c "! $R create --no-pivot --bundle $B net1"
check network-left-nothing test ! -e /sys/fs/cgroup/net1

# Device rules through the eBPF program, as runc's: any node may be made
# (c *:* m), the standard devices open, others do not (CAP_MKNOD is
# granted, so only the cgroup says no).
bundle '["sh", "-c", "mknod /dev/null2 c 1 3 && head -c1 /dev/null2 | wc -c; mknod /dev/port2 c 1 4 && echo created; (exec 3</dev/port2) 2>/dev/null && echo opened || echo denied; head -c1 /dev/zero | wc -c"]' '{"devices": [{"allow": false, "access": "rwm"}]}'
sed -i 's/"CAP_KILL"/"CAP_KILL", "CAP_MKNOD"/g' $B/config.json
out=$($R run --no-pivot --bundle $B dev1 | tr '\n' ' ')
check ebpf-device-rules eq "$out" "0 created denied 1 "

# Block I/O: throttles and per-device weights on a loop device.
insmod /lib/modules/loop.ko 2>/dev/null
dd if=/dev/zero of=/tmp/disk bs=1M count=8 2>/dev/null
if losetup /dev/loop0 /tmp/disk 2>/dev/null; then
    dev=$(cat /sys/block/loop0/dev)
    major=${dev%:*}; minor=${dev#*:}
    # Per-device io.weight needs the iocost controller on for the device.
    echo "$dev enable=1" > /sys/fs/cgroup/io.cost.qos
    bundle '["sleep", "1000"]' "{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": $major, \"minor\": $minor, \"rate\": 1048576}], \"throttleWriteIOPSDevice\": [{\"major\": $major, \"minor\": $minor, \"rate\": 100}], \"weightDevice\": [{\"major\": $major, \"minor\": $minor, \"weight\": 500}]}}"
    check create-io $R create --no-pivot --bundle $B io1
    check io.max sh -c "grep -q '^$dev rbps=1048576 wbps=max riops=max wiops=100' /sys/fs/cgroup/io1/io.max"
    check io.weight-device sh -c "grep -q '^$dev ' /sys/fs/cgroup/io1/io.weight"
    # Its stats read (io.stat): it did no I/O, so no blkio entries, which
    # runc's types leave out when empty (omitempty), as skiff does.
    check stats-blkio sh -c "$R events --stats io1 | grep -q '\"type\":\"stats\"'"
    $R delete io1
    losetup -d /dev/loop0
else
    check loop-device false
fi

# Root of a user namespace, as rootless podman runs its runtime: the kernel
# refuses the eBPF device program there, and skiff-oci goes on without one,
# as runc does (no device node can be made in a user namespace anyway).
# (Only root is mapped there: no gid 5 for devpts.)
bundle '["true"]' '{"devices": [{"allow": false, "access": "rwm"}]}'
sed -i 's/"gid=5"/"mode=0620"/' $B/config.json
out=$(unshare -U -r $R run --no-pivot --bundle $B userns1 2>&1; echo "rc=$?")
check nested-userns-runs eq "$(echo "$out" | tail -1)" "rc=0"
check nested-userns-warns eq "$(echo "$out" | grep -c 'no device program')" 1
check nested-userns-group-removed test ! -e /sys/fs/cgroup/userns1

leftover=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d | wc -l)
check nothing-left eq "$leftover" 0
echo "SKIFF-V2-RESULT: $pass passed, $fail failed"
poweroff -f
