#!/bin/sh
# Removes what every skiff store shares for its default network: the bridge
# skiff0, the firewall plugin's isolation rules for it, and the lease
# directory's bookkeeping. For after the tests, or to start afresh; a
# running container on the default network loses its network.
set -u
ip link del skiff0 2>/dev/null || true
iptables -S 2>/dev/null | grep -- '-A .*skiff0' | while read -r rule; do
    # shellcheck disable=SC2086
    eval "iptables $(echo "$rule" | sed 's/^-A /-D /')" 2>/dev/null || true
done
rm -f /var/lib/cni/networks/skiff/lock /var/lib/cni/networks/skiff/last_reserved_ip.0
rmdir /var/lib/cni/networks/skiff 2>/dev/null || true
exit 0
