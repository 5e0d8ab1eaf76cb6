#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The system bus policy, dbus/org.llorch.PoolManager1.conf, checked for real: a private
# dbus-daemon configured like Debian's /usr/share/dbus-1/system.conf (deny own and method calls
# by default) includes the policy, the real daemon runs in system mode on it, and clients call it
# as root, as nobody and as members of group pool-managerd (setpriv). Two locks are told apart by
# their messages: the bus refuses with AccessDenied "Rejected send message ...", the daemon's own
# check with AccessDenied "Only root and members of group ...".
#
# No systemd is on that bus, so the daemon logs that it cannot subscribe to systemd; it must
# still serve its name. Needs root, $POOL_MANAGERD, dbus-daemon, dbus-send and setpriv. Creates
# group pool-managerd with systemd-sysusers (or groupadd) if it is missing, and removes it again
# afterwards. Prints TAP-style lines.
set -u
source "$(dirname "$0")/tap.sh"

diag() { sed 's/^/# /' <<<"$1"; }

[ "$(id -u)" = 0 ] || { echo "Needs root." >&2; exit 77; }
[ -n "${POOL_MANAGERD:-}" ] || { echo "Needs POOL_MANAGERD." >&2; exit 77; }
for tool in dbus-daemon dbus-send busctl setpriv; do
        command -v "$tool" >/dev/null || { echo "Needs $tool." >&2; exit 77; }
done

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly POLICY=$TOP/dbus/org.llorch.PoolManager1.conf
readonly SYSUSERS=$TOP/units/pool-managerd.sysusers.conf
readonly BUS=org.llorch.PoolManager1
readonly OBJ=/org/llorch/PoolManager1
readonly MANAGER=org.llorch.PoolManager1.Manager
readonly POOL=org.llorch.PoolManager1.Pool
readonly POOL_OBJ=$OBJ/pool/nope
readonly GROUP=pool-managerd
readonly NOBODY=65534
readonly BAD_JSON='string:{"pool_id": "x"}'

dir=$(mktemp -d /tmp/test-bus-policy.XXXXXX) || exit 99
chmod 0755 "$dir"       # the unprivileged clients must reach the socket in it
ADDRESS=unix:path=$dir/system_bus_socket
created_group=false dbus_pid='' daemon_pid=''

cleanup() {
        # By PID, in reverse order of start.
        if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; fi
        if [ -n "$dbus_pid" ]; then kill "$dbus_pid" 2>/dev/null; wait "$dbus_pid" 2>/dev/null; fi
        if $created_group; then groupdel "$GROUP"; fi
        rm -rf "$dir"
}
trap cleanup EXIT



# send [IDENTITY...] -- PATH INTERFACE.MEMBER [ARGS...]: calls the daemon with dbus-send, run as
# IDENTITY (a setpriv command line; none for root). Prints "ok", or the error name and message.
send() {
        local -a who=()
        local out
        while [ "$1" != -- ]; do who+=("$1"); shift; done
        shift
        if out=$("${who[@]}" dbus-send --bus="$ADDRESS" --print-reply --reply-timeout=10000 \
                 --dest="$BUS" "$@" 2>&1); then
                echo ok
        else
                sed -n 's/^Error \([^:]*\): /\1 /p' <<<"$out" | head -n 1
                grep -q '^Error ' <<<"$out" || echo "no-error-name $out"
        fi
}

# expect DESC WANT RESULT: RESULT (from send) begins with WANT.
expect() {
        if [[ "$3" == "$2"* ]]; then ok "$1"; else not_ok "$1"; diag "got: $3"; fi
}
# bus_denied DESC RESULT: refused by dbus-daemon's policy, not by the daemon.
bus_denied() {
        expect "$1" "org.freedesktop.DBus.Error.AccessDenied Rejected send message" "$2"
}
# bus_allowed DESC RESULT: the policy let the call through (whatever the daemon then said).
bus_allowed() {
        if [[ "$2" != *"Rejected send message"* && "$2" != no-error-name* ]]; then ok "$1"; else
                not_ok "$1"; diag "got: $2"; fi
}

# The policy file.
if command -v xmllint >/dev/null; then
        check "policy is well-formed XML (xmllint)" xmllint --noout "$POLICY"
else
        skip "policy is well-formed XML (xmllint)" "xmllint not found"
fi

# The group, before dbus-daemon and the daemon start: both resolve it at start-up.
if ! getent group "$GROUP" >/dev/null; then
        if command -v systemd-sysusers >/dev/null; then
                # Only the group line: the file also creates the engines' user, which this test
                # would not remove again.
                systemd-sysusers --inline "$(grep '^g ' "$SYSUSERS")" >/dev/null 2>&1
        else
                groupadd -f -r "$GROUP"
        fi
        getent group "$GROUP" >/dev/null && created_group=true
fi
gid=$(getent group "$GROUP" | cut -d: -f3)
check "group $GROUP exists (units/pool-managerd.sysusers.conf)" test -n "$gid"
[ -n "$gid" ] || { echo "1..$n"; exit 1; }

# The members are nobody with the group added: dbus-daemon refuses connections from a UID
# without a passwd entry (it looks the user's groups up), so a made-up UID cannot connect. It
# takes the group list itself from the socket (SO_PEERGROUPS).
readonly AS_NOBODY=(setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups)
readonly AS_MEMBER=(setpriv --reuid="$NOBODY" --regid="$NOBODY" --groups="$gid")
readonly AS_PRIMARY=(setpriv --reuid="$NOBODY" --regid="$gid" --clear-groups)

# A system bus like Debian's: deny own and method calls by default, allow replies and signals.
cat > "$dir/system.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$dir/system_bus_socket</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <include>$POLICY</include>
</busconfig>
EOF

dbus-daemon --nofork --config-file="$dir/system.conf" --print-address >"$dir/address" 2>"$dir/dbus.log" &
dbus_pid=$!
if ! wait_for 10 test -s "$dir/address"; then
        not_ok "dbus-daemon starts with the policy included"; diag "$(cat "$dir/dbus.log")"
        echo "1..$n"; exit 1
fi
ok "dbus-daemon starts with the policy included"
check "dbus-daemon resolves every user and group of the policy" \
        bash -c "! grep -E 'Unknown (user|group)' '$dir/dbus.log'"

# The daemon, in system mode, kept off the host's configuration and directories.
mkdir -p "$dir/pools.d"
printf '[Manager]\nPoolsDirectory=%s/pools.d\nStateDirectory=%s/state\nGpuOnly=no\n' "$dir" "$dir" \
        >"$dir/pool-managerd.conf"
env -u NOTIFY_SOCKET DBUS_SYSTEM_BUS_ADDRESS="$ADDRESS" POOL_MANAGERD_LOG_TARGET=console \
        "$POOL_MANAGERD" --system --runtime-dir="$dir/run" --config="$dir/pool-managerd.conf" \
        --listen=127.0.0.1:"$(free_port)" >"$dir/daemon.log" 2>&1 &
daemon_pid=$!

has_name() {
        [ "$(busctl --address="$ADDRESS" call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus NameHasOwner s "$BUS" 2>/dev/null)" = "b true" ]
}
if ! wait_for 10 has_name; then
        not_ok "daemon owns $BUS on the system bus without systemd on it"
        diag "$(cat "$dir/daemon.log")"
        echo "1..$n"; exit 1
fi
ok "daemon owns $BUS on the system bus without systemd on it"

# root: both locks open.
expect "root: ListPools() allowed" ok "$(send -- $OBJ $MANAGER.ListPools)"
expect "root: Preload() reaches the daemon (InvalidPreparedEngine for bad JSON)" \
        org.llorch.PoolManager1.Error.InvalidPreparedEngine "$(send -- $OBJ $MANAGER.Preload "$BAD_JSON")"

# nobody: may read, may not mutate, may not own the name.
introspect_as_nobody() { "${AS_NOBODY[@]}" busctl --address="$ADDRESS" introspect "$BUS" $OBJ >/dev/null; }
check "nobody: busctl introspect allowed" introspect_as_nobody
expect "nobody: Introspect() allowed" ok \
        "$(send "${AS_NOBODY[@]}" -- $OBJ org.freedesktop.DBus.Introspectable.Introspect)"
expect "nobody: GetAll() of the manager allowed" ok \
        "$(send "${AS_NOBODY[@]}" -- $OBJ org.freedesktop.DBus.Properties.GetAll string:$MANAGER)"
expect "nobody: Get() of Version allowed" ok \
        "$(send "${AS_NOBODY[@]}" -- $OBJ org.freedesktop.DBus.Properties.Get string:$MANAGER string:Version)"
expect "nobody: ListPools() allowed" ok "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.ListPools)"
expect "nobody: GetPool() allowed (NoSuchPool)" org.llorch.PoolManager1.Error.NoSuchPool \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.GetPool string:nope)"
expect "nobody: ListFleetPools() allowed (FleetOff)" org.llorch.PoolManager1.Error.FleetOff \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.ListFleetPools)"
expect "nobody: GetManagedObjects() allowed" ok \
        "$(send "${AS_NOBODY[@]}" -- $OBJ org.freedesktop.DBus.ObjectManager.GetManagedObjects)"
expect "nobody: Ping() allowed" ok "$(send "${AS_NOBODY[@]}" -- $OBJ org.freedesktop.DBus.Peer.Ping)"

bus_denied "nobody: Preload() denied by the bus" \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.Preload "$BAD_JSON")"
bus_denied "nobody: Stop() denied by the bus" "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.Stop string:nope)"
bus_denied "nobody: AllocateLease() denied by the bus" \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.AllocateLease string:nope)"
bus_denied "nobody: ReleaseLease() denied by the bus" \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.ReleaseLease string:nope)"
bus_denied "nobody: Drain() denied by the bus" \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.Drain string:nope uint64:1)"
bus_denied "nobody: Reload() denied by the bus" \
        "$(send "${AS_NOBODY[@]}" -- $OBJ $MANAGER.Reload string:nope "$BAD_JSON")"
for m in Stop AllocateLease ReleaseLease; do
        bus_denied "nobody: Pool.$m() denied by the bus" "$(send "${AS_NOBODY[@]}" -- $POOL_OBJ $POOL.$m)"
done
bus_denied "nobody: Properties.Set() denied by the bus" \
        "$(send "${AS_NOBODY[@]}" -- $OBJ org.freedesktop.DBus.Properties.Set string:$MANAGER \
           string:GpuOnly variant:boolean:true)"
expect "nobody: cannot own $BUS" org.freedesktop.DBus.Error.AccessDenied \
        "$(send "${AS_NOBODY[@]}" -- /org/freedesktop/DBus org.freedesktop.DBus.RequestName \
           string:$BUS uint32:0)"

# Members of pool-managerd: the policy lets the mutating methods through, and so does the
# daemon's own check; bad JSON then fails inside the daemon.
r=$(send "${AS_MEMBER[@]}" -- $OBJ $MANAGER.Preload "$BAD_JSON")
bus_allowed "member (supplementary group): Preload() let through by the bus" "$r"
expect "member (supplementary group): Preload() accepted by the daemon (InvalidPreparedEngine)" \
        org.llorch.PoolManager1.Error.InvalidPreparedEngine "$r"
r=$(send "${AS_MEMBER[@]}" -- $OBJ $MANAGER.Stop string:nope)
bus_allowed "member: Stop() let through by the bus" "$r"
expect "member: Stop() accepted by the daemon (NoSuchPool)" org.llorch.PoolManager1.Error.NoSuchPool "$r"
r=$(send "${AS_MEMBER[@]}" -- $POOL_OBJ $POOL.AllocateLease)
bus_allowed "member: Pool.AllocateLease() let through by the bus" "$r"
expect "member: ... reaches the daemon (UnknownObject)" org.freedesktop.DBus.Error.UnknownObject "$r"
r=$(send "${AS_PRIMARY[@]}" -- $OBJ $MANAGER.Preload "$BAD_JSON")
bus_allowed "member (primary group): Preload() let through by the bus" "$r"
expect "member (primary group): Preload() accepted by the daemon (InvalidPreparedEngine)" \
        org.llorch.PoolManager1.Error.InvalidPreparedEngine "$r"
bus_denied "member: Properties.Set() denied by the bus" \
        "$(send "${AS_MEMBER[@]}" -- $OBJ org.freedesktop.DBus.Properties.Set string:$MANAGER \
           string:GpuOnly variant:boolean:true)"
expect "member: cannot own $BUS" org.freedesktop.DBus.Error.AccessDenied \
        "$(send "${AS_MEMBER[@]}" -- /org/freedesktop/DBus org.freedesktop.DBus.RequestName string:$BUS uint32:0)"

check "daemon still runs" kill -0 "$daemon_pid"

tap_end
