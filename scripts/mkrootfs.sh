#!/bin/sh
# Builds a busybox root filesystem in DIR, offline, from Debian's busybox-static.
# Used by the demo, the benchmark and the integration tests.
set -eu
dir=${1:?usage: mkrootfs.sh DIR}
busybox=$(readlink -f "$(command -v busybox)")
mkdir -p "$dir/usr/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/etc" "$dir/root" "$dir/var"
cp "$busybox" "$dir/usr/bin/busybox"
# The applet links point at /usr/bin/busybox, which is where it sits in DIR too.
"$busybox" --install -s "$dir/usr/bin"
[ "$busybox" = /usr/bin/busybox ] || for l in "$dir"/usr/bin/*; do
    [ -L "$l" ] && ln -sf /usr/bin/busybox "$l"
done
ln -sfn usr/bin "$dir/bin"
ln -sfn usr/bin "$dir/sbin"
chmod 1777 "$dir/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
