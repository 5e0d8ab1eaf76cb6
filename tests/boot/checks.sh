#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The checks of tools/boot-test, run inside a freshly booted Debian 12 system instance (systemd as
# PID 1, the system bus) as a root service, from a copy of the checkout; TAP on stdout.
#
# Everything is done the way a user would: the README's "Install from source" lines run as
# written (a real `meson install` into /usr/local), then systemctl, busctl and curl, with the
# installed units, bus policy and sysusers entries. Cases of issue 18:
#   - the from-source install owns its bus name (policy where the system bus reads it);
#   - the pool-managerd group and pool-engine user exist right after `meson install`;
#   - `systemctl reload` works without procps;
#   - `systemctl enable --now pool-managerd.service`, then starting the socket: both succeed
#     and the socket owns the port;
# then, ROUNDS times, a daemon stopped with a pool running is started by the first connection:
# GET status answers the re-adopted pool ready, and a preload of that running pool answers 409.
#
#   ROUNDS=20 tests/boot/checks.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
source tests/tap.sh

ROUNDS=${ROUNDS:-20}
readonly BUS=org.llorch.PoolManager1 OBJ=/org/llorch/PoolManager1 IFACE=org.llorch.PoolManager1.Manager
readonly API=http://127.0.0.1:9200 POOL=bootpool ENGINE_PORT=8081
readonly ENGINE=/usr/local/libexec/pool-managerd-test/fake-engine
readonly CONF=/etc/pool-managerd/pool-managerd.conf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# curl_code METHOD PATH [BODY]: prints the HTTP status; the body goes to $tmp/body. curl itself
# failing (connection refused, timeout) prints 000.
curl_code() {
        local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 60 -X "$1")
        [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
        rm -f "$tmp/body"
        curl "${args[@]}" "$API$2" || true
}
# stop_daemon: stops the daemon, the socket stays. Two starts a round would soon hit the unit's start
# rate limit (5 in 10 s, systemd's default, which guards against a crash loop and which a user
# does not hit), so the limiter is reset as an admin would with reset-failed.
stop_daemon() {
        systemctl stop pool-managerd.service 2>/dev/null  # "can still be activated by the socket": yes
        systemctl reset-failed pool-managerd.service pool-managerd.socket
}
body() { cat "$tmp/body" 2>/dev/null; }
json_field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" "$tmp/body" | tr -d '"'; }
unit_prop() { systemctl show -P "$2" "$1"; }
owned() { busctl status "$BUS" >"$tmp/busctl-status" 2>&1; }
# The journal of the daemon's current run (its invocation), up to 5 s for journald to catch up.
daemon_logged() {
        local id
        id=$(unit_prop pool-managerd.service InvocationID)
        wait_for 5 sh -c "journalctl -q -o cat _SYSTEMD_INVOCATION_ID=$id | grep -qF -- \"\$1\"" sh "$1"
}

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

# The group's policy is live: dbus-daemon drops a <policy group=…> whose group does not exist
# when it reads the file, so meson install must have reloaded the bus after systemd-sysusers.
useradd --system --no-create-home --groups pool-managerd boot-member
useradd --system --no-create-home boot-outsider
# bus_call_as USER METHOD [ARGS...]: prints the error. dbus-send, not busctl, because busctl
# prints every AccessDenied as "Access denied": the bus's refusal says "Rejected send message",
# the daemon's own check says something else.
bus_call_as() {
        local user=$1 method=$2; shift 2
        runuser -u "$user" -- dbus-send --system --print-reply --dest="$BUS" "$OBJ" "$IFACE.$method" "$@" 2>&1 |
                grep '^Error' || true
}
refused_by_bus() { echo "$1" | grep -q "AccessDenied: Rejected send message"; }
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
check "the socket (PID 1) holds 127.0.0.1:9200" \
        sh -c 'ss -Hltnp "sport = :9200" | grep -q "\"systemd\",pid=1,"'
check "the daemon logged that the socket was passed by systemd" daemon_logged "socket passed by systemd"

# ---- a pool: the fake engine, sandboxed, as pool-engine ----

install -D -m 0755 build/tests/fake-engine "$ENGINE"
cat >"$CONF" <<CONF
# Written by tests/boot/checks.sh: no GPU here.
[Manager]
GpuOnly=no
EngineSandbox=full
EngineUser=pool-engine
CONF
# POST /pools/{id}/preload takes {"prepared": PreparedEngine} (pool-managerd(8)).
prepared="{\"prepared\": {\"pool_id\": \"$POOL\", \"binary_path\": \"$ENGINE\",
           \"flags\": [\"--port\", \"$ENGINE_PORT\"], \"host\": \"127.0.0.1\", \"port\": $ENGINE_PORT,
           \"engine\": \"custom\", \"engine_version\": \"boot-test\"}}"

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

# ---- ROUNDS times: socket activation with a running pool ----

# engine_unchanged: the engine's unit is active with the same MainPID.
engine_unchanged() {
        systemctl is-active -q "${unit:-none}" && [ "$(unit_prop "${unit:-none}" MainPID)" = "$engine_pid" ]
}

for round in $(seq "$ROUNDS"); do
        stop_daemon
        if ! engine_unchanged; then
                not_ok "round $round: the engine survived systemctl stop pool-managerd.service"
                continue
        fi

        code=$(curl_code GET "/pools/$POOL/status")
        if [ "$code" = 200 ] && grep -q '"ready":true' "$tmp/body" && [ "$(json_field pid)" = "$engine_pid" ]; then
                ok "round $round: socket-activating GET /pools/$POOL/status: 200, ready, pid $engine_pid"
        else
                not_ok "round $round: socket-activating GET /pools/$POOL/status: 200, ready, pid $engine_pid; got $code: $(body)"
        fi

        stop_daemon
        code=$(curl_code POST "/pools/$POOL/preload" "$prepared")
        answer="$code: $(body)"
        code2=$(curl_code GET "/pools/$POOL/status")
        if [ "$code" = 409 ] && [ "$code2" = 200 ] && grep -q '"ready":true' "$tmp/body" &&
           [ "$(json_field pid)" = "$engine_pid" ] && engine_unchanged; then
                ok "round $round: socket-activating preload of the running pool: 409, still ready and tracked"
        else
                not_ok "round $round: socket-activating preload of the running pool: 409, still ready and tracked; got $answer, then status $code2: $(body)"
        fi
done

tap_end
