#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The from-source checks of tools/boot-test (--source), run inside a freshly booted Debian 12
# system instance (systemd as PID 1, the system bus) as a root service, from a copy of the
# checkout; TAP on stdout. The package is what tools/boot-test checks first
# (tests/boot/package-checks.sh); this is the other way to install, README's "Install from
# source".
#
# Everything is done the way a user would: the README's "Install from source" lines run as
# written (a real `meson install` into /usr/local), then systemctl, busctl and curl, with the
# installed units, bus policy and sysusers entries. Cases of issue 18:
#   - the from-source install owns its bus name (policy where the system bus reads it);
#   - the pool-managerd group and pool-engine user exist right after `meson install`;
#   - `systemctl reload` works without procps;
#   - `systemctl enable --now pool-managerd.service`, then starting the socket: both succeed
#     and the socket owns the port;
# then a pool, sandboxed (EngineSandbox=full), as pool-engine.
#
#   tests/boot/source-checks.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
source tests/tap.sh

readonly POOL=bootpool ENGINE_PORT=8081
readonly ENGINE=/usr/local/libexec/pool-managerd-test/fake-engine
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source tests/boot/lib.sh

owned() { busctl status "$BUS" >"$tmp/busctl-status" 2>&1; }

# ---- the system as a user finds it ----

check "minimal system: no procps, so no /bin/kill" sh -c '! dpkg -s procps >/dev/null 2>&1 && ! test -e /bin/kill'

# ---- README "Install from source", as written ----

readme=$(awk '/^## Install from source/ { s = 1; next }
              s && /^## / { exit }
              s && /^    / { b = 1; print substr($0, 5); next }
              s && b { exit }' README.md)
if [ -z "$readme" ]; then
        not_ok "README has an 'Install from source' code block"
else
        sed 's/^/# | /' <<<"$readme"
        start=$SECONDS
        if bash -eo pipefail -c "$readme" >"$tmp/readme.log" 2>&1; then
                ok "README 'Install from source' runs as written ($((SECONDS - start)) s)"
        else
                not_ok "README 'Install from source' runs as written"
                tail -n 40 "$tmp/readme.log" | sed 's/^/#   /'
        fi
fi
check "after the README: busctl status $BUS: the name is owned" owned
grep -q '^PID=' "$tmp/busctl-status" || sed 's/^/#   /' "$tmp/busctl-status"

# ---- issue 18, case 2: the install can own its name; sysusers ran ----

check "bus policy installed where the system bus reads it (/usr/share/dbus-1/system.d)" \
        test -f /usr/share/dbus-1/system.d/$BUS.conf
check "bus activation file in /usr/share/dbus-1/system-services" \
        test -f /usr/share/dbus-1/system-services/$BUS.service
check "nothing under /usr/local/share/dbus-1, which the bus never reads" test ! -e /usr/local/share/dbus-1
check "meson install ran systemd-sysusers: group pool-managerd exists, without a reboot" \
        sh -c 'getent group pool-managerd >/dev/null'
check "meson install ran systemd-sysusers: user pool-engine exists" sh -c 'getent passwd pool-engine >/dev/null'
check "meson install ran systemd-tmpfiles: /var/lib/pool-engine belongs to pool-engine" \
        sh -c '[ "$(stat -c %U /var/lib/pool-engine)" = pool-engine ]'
check "poolctl's bash completion is where bash-completion finds it (/usr/local/share/...)" \
        bash -c 'source /usr/share/bash-completion/bash_completion && __load_completion poolctl &&
                 complete -p poolctl | grep -q -- "-F _poolctl" && test -f /usr/local/share/bash-completion/completions/poolctl'

# The group's policy is live: dbus-daemon drops a <policy group=…> whose group does not exist
# when it reads the file, so meson install must have reloaded the bus after systemd-sysusers.
useradd --system --no-create-home --groups pool-managerd boot-member
useradd --system --no-create-home boot-outsider
answer=$(bus_call_as boot-member Stop string:nosuchpool)
echo "# boot-member, Stop: $answer"
check "a member of pool-managerd passes the bus policy for Manager.Stop" \
        sh -c '[ -n "$1" ] && ! echo "$1" | grep -q "Rejected send message"' sh "$answer"
answer=$(bus_call_as boot-outsider Stop string:nosuchpool)
echo "# boot-outsider, Stop: $answer"
check "anyone else is refused Manager.Stop by the bus policy" refused_by_bus "$answer"
answer=$(bus_call_as boot-member ReloadConfiguration)
echo "# boot-member, ReloadConfiguration: $answer"
check "ReloadConfiguration is root's alone: a member of pool-managerd is refused by the bus policy" \
        refused_by_bus "$answer"

stop_daemon
check "bus activation: a busctl call with the daemon stopped starts it and is answered" \
        sh -c 'busctl call "$@" >/dev/null' sh "$BUS" "$OBJ" "$IFACE" ListPools
check "bus activation: pool-managerd.service active, the name owned" \
        sh -c 'systemctl is-active -q pool-managerd.service && busctl status '"$BUS"' >/dev/null'

# ---- issue 18, case 3: reload on a minimal system ----

pid=$(unit_prop pool-managerd.service MainPID)
if systemctl reload pool-managerd.service 2>"$tmp/reload.err"; then
        ok "systemctl reload pool-managerd succeeds without procps"
else
        not_ok "systemctl reload pool-managerd succeeds without procps"
        sed 's/^/#   /' "$tmp/reload.err"
        journalctl -q -n 5 -u pool-managerd.service | sed 's/^/#   /'
fi
check "reload kept the daemon running (same MainPID)" \
        sh -c '[ "$(systemctl show -P MainPID pool-managerd.service)" = '"$pid"' ]'

# ---- issue 18, case 4: starting either unit gives the same result ----

systemctl disable -q --now pool-managerd.socket pool-managerd.service
check "both units stopped and disabled" \
        sh -c '! systemctl is-active -q pool-managerd.socket && ! systemctl is-active -q pool-managerd.service'
check "systemctl enable --now pool-managerd.service succeeds" systemctl enable -q --now pool-managerd.service
check "it enabled and started pool-managerd.socket too" \
        sh -c 'systemctl is-enabled -q pool-managerd.socket && systemctl is-active -q pool-managerd.socket'
check "a later systemctl start pool-managerd.socket succeeds" systemctl start pool-managerd.socket
check "the socket (PID 1) holds 127.0.0.1:9200" socket_holds_port
check "the daemon logged that the socket was passed by systemd" daemon_logged "socket passed by systemd"

# ---- a pool: the fake engine, sandboxed, as pool-engine ----

install -D -m 0755 build/tests/fake-engine "$ENGINE"
cat >"$CONF" <<CONF
# Written by tests/boot/source-checks.sh: no GPU here.
[Manager]
GpuOnly=no
EngineSandbox=full
EngineUser=pool-engine
CONF
# POST /pools/{id}/preload takes {"prepared": PreparedEngine} (pool-managerd(8)).
prepared=$(prepared "$POOL" "$ENGINE_PORT")

systemctl restart pool-managerd.service
code=$(curl_code POST "/pools/$POOL/preload" "$prepared")
if [ "$code" = 200 ]; then
        ok "POST /pools/$POOL/preload (EngineSandbox=full, EngineUser=pool-engine): 200"
else
        not_ok "POST /pools/$POOL/preload (EngineSandbox=full, EngineUser=pool-engine): 200, got $code: $(body)"
fi
code=$(curl_code GET "/pools/$POOL/status")
unit=$(json_field unit) engine_pid=$(json_field pid)
check "the pool is ready (status 200, ready, a unit and a pid)" \
        sh -c '[ "$1" = 200 ] && grep -q "\"ready\":true" "$2" && [ -n "$3" ] && [ -n "$4" ]' sh \
        "$code" "$tmp/body" "$unit" "$engine_pid"
check "the engine runs as pool-engine" sh -c '[ "$(stat -c %U /proc/$1)" = pool-engine ]' sh "${engine_pid:-0}"
check "the engine's unit is sandboxed (ProtectSystem=full, NoNewPrivileges=yes)" \
        sh -c '[ "$(systemctl show -P ProtectSystem "$1")" = full ] &&
               [ "$(systemctl show -P NoNewPrivileges "$1")" = yes ]' sh "${unit:-none}"

tap_end
