#!/bin/bash
# Build offline OCI image archives: skiff.test/pause:1 and skiff.test/busybox:1
# Output: OUT/pause.tar, OUT/busybox.tar (import with: ctr -n k8s.io images import X.tar)
# Usage: mkimages.sh OUT
set -euo pipefail
H="$(cd "$(dirname "$0")" && pwd)"
OUT="$1"; B="$OUT/build"
rm -rf "$B"; mkdir -p "$B"
[ "$(uname -m)" = x86_64 ] || { echo "mkoci.py hardcodes amd64" >&2; exit 1; }

# (a) pause
gcc -static -Os -s -o "$B/pause" "$H/pause.c"
mkdir -p "$B/pause-root"
install -m 0755 "$B/pause" "$B/pause-root/pause"
/usr/bin/python3 "$H/mkoci.py" "$B/pause-root" skiff.test/pause:1 "$OUT/pause.tar" \
    --entrypoint '["/pause"]' --cmd 'null'

# (b) busybox
R="$B/busybox-root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var/www}
chmod 1777 "$R/tmp"
install -m 0755 /bin/busybox "$R/bin/busybox"
for app in $(/bin/busybox --list); do
  [ "$app" = busybox ] || ln -sf busybox "$R/bin/$app"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
echo hello-from-server > "$R/var/www/index.html"
/usr/bin/python3 "$H/mkoci.py" "$R" skiff.test/busybox:1 "$OUT/busybox.tar" \
    --entrypoint 'null' --cmd '["sh"]'
rm -rf "$B"
