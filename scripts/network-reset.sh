#!/bin/sh
# Removes what every skiff store shares for its default network: the bridge
# skiff0, its rules (the engine's own chains SKIFF-FW-skiff0 and
# SKIFF-MASQ-skiff0 and their jumps, and the firewall plugin's isolation
# rules from networks made through CNI), the stamp that says its rules are
# set, and the lease directory's bookkeeping. For after the tests, or to
# start afresh; a running container on the default network loses its
# network.
set -u
ip link del skiff0 2>/dev/null || true
for table in filter nat; do
    # Jumps to the engine's chains, then the chains themselves.
    iptables -t "$table" -S 2>/dev/null | grep -E -- '^-A .*-j SKIFF-(FW|MASQ)-skiff0( |$)' | while read -r rule; do
        # shellcheck disable=SC2086
        eval "iptables -t $table $(echo "$rule" | sed 's/^-A /-D /')" 2>/dev/null || true
    done
    for chain in SKIFF-FW-skiff0 SKIFF-MASQ-skiff0; do
        iptables -t "$table" -F "$chain" 2>/dev/null && iptables -t "$table" -X "$chain" 2>/dev/null
    done
done
iptables -S 2>/dev/null | grep -- '-A .*skiff0' | while read -r rule; do
    # shellcheck disable=SC2086
    eval "iptables $(echo "$rule" | sed 's/^-A /-D /')" 2>/dev/null || true
done
rm -f /run/skiff/networks/skiff0 /run/skiff/networks/skiff0.lock
rmdir /run/skiff/networks /run/skiff 2>/dev/null || true
rm -f /var/lib/cni/networks/skiff/lock /var/lib/cni/networks/skiff/last_reserved_ip.0
rmdir /var/lib/cni/networks/skiff 2>/dev/null || true
exit 0
