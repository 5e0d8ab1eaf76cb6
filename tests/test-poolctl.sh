#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# End-to-end test of poolctl inside tests/sandbox: the real daemon runs as a Type=notify user
# unit with one fake-engine pool in its PoolsDirectory, and poolctl --user talks to it over the
# sandbox's session bus. Checks the table, JSON and status output, preload/lease/release/
# reload/drain/stop, logs through journalctl, and the exit statuses of poolctl(1).
# Prints TAP-style lines. Needs $POOL_MANAGERD, $FAKE_ENGINE and $POOLCTL.
set -u
source "$(dirname "$0")/tap.sh"




[ -n "${POOL_MANAGERD:-}" ] && [ -n "${FAKE_ENGINE:-}" ] && [ -n "${POOLCTL:-}" ] &&
        [ -n "${XDG_RUNTIME_DIR:-}" ] || {
        echo "Run inside tests/sandbox with POOL_MANAGERD, FAKE_ENGINE and POOLCTL set." >&2; exit 77; }

work=$XDG_RUNTIME_DIR/test-poolctl
runtime=$XDG_RUNTIME_DIR/pool-managerd
mkdir -p "$work/pools.d"
p1=$(free_port) p2=$(free_port) p3=$(free_port) api=$(free_port)

# Runs poolctl --user with the arguments; its stdout, stderr and exit status end up in
# $out, $err and $rc.
pc() {
        out=$("$POOLCTL" --user "$@" 2>"$work/stderr"); rc=$?
        err=$(cat "$work/stderr")
}
# Checks the exit status of the last pc call, printing what poolctl said when it is wrong.
rc_is() {
        [ "$rc" -eq "$1" ] && return 0
        echo "# expected exit status $1, got $rc; stdout: $out; stderr: $err"
        return 1
}
# Reads a field of the JSON on $out: json_field EXPR, where EXPR is Python over j.
json_is() {
        python3 -c 'import json, sys; j = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
                "$out" "$1" 2>/dev/null || { echo "# JSON check failed: $1; got: $out; stderr: $err"; return 1; }
}

cat > "$work/pool-managerd.conf" <<CONF
[Manager]
PoolsDirectory=$work/pools.d
GpuOnly=no
HealthInterval=100ms
EngineSandbox=container
Listen=127.0.0.1:$api
CONF
cat > "$work/pools.d/alpha.json" <<JSON
{"binary_path": "$FAKE_ENGINE", "flags": ["--port", "$p1", "--slots", "4", "--stdout-line=alpha says hello"],
 "port": $p1, "pool_id": "alpha", "engine_version": "fake-alpha", "slots_total": 4, "device_mask": "GPU0"}
JSON
cat > "$work/gamma.json" <<JSON
{"binary_path": "$FAKE_ENGINE", "flags": ["--port", "$p2", "--ready-after=200"], "port": $p2,
 "pool_id": "gamma", "engine_version": "fake-gamma"}
JSON
cat > "$work/alpha-2.json" <<JSON
{"binary_path": "$FAKE_ENGINE", "flags": ["--port", "$p3"], "port": $p3,
 "pool_id": "alpha", "engine_version": "fake-alpha-2", "slots_total": 4}
JSON

# --- before the daemon: usage errors and "not running" ----------------------------------------

pc frobnicate
check "unknown command exits 2" rc_is 2
check "unknown command is named on stderr" grep -q '^poolctl: .*frobnicate' <<< "$err"
pc status 'bad id!'
check "invalid pool id exits 2 without a call" rc_is 2
check "invalid pool id is named on stderr" grep -q 'bad id!' <<< "$err"
pc status
check "missing argument exits 2" rc_is 2
pc --frob list
check "unknown option exits 2" rc_is 2
pc stop alpha --deadline=5
check "--deadline with stop exits 2" rc_is 2
pc --version
check "--version prints the version" bash -c '[ "$1" -eq 0 ] && [[ "$2" == "poolctl "* ]]' _ "$rc" "$out"
pc list
check "list without the daemon exits 4" rc_is 4
check "... saying the daemon is not running on the user bus" \
        grep -q '^poolctl: pool-managerd is not running on the user bus' <<< "$err"

# --- the daemon with one pool -------------------------------------------------------------------

systemd-run --user --quiet --unit=pool-managerd-poolctl -p Type=notify -p NotifyAccess=main \
        -E POOL_MANAGERD_LOG_TARGET=journal \
        "$POOL_MANAGERD" --user --config="$work/pool-managerd.conf"
check "daemon started" test "$(systemctl --user show -P ActiveState pool-managerd-poolctl.service)" = active

alpha_ready() { pc --no-legend list && grep -Eq '^alpha +ready +yes ' <<< "$out"; }
check "alpha becomes ready in poolctl list" wait_for 20 alpha_ready
alpha_pid=$(systemctl --user show -P MainPID pool-engine-alpha.service)

pc list
check "list exits 0" rc_is 0
check "list prints the header" \
        grep -Eq '^POOL +STATE +READY +LIVE +LEASES +SLOTS +ENGINE +UNIT +PID +LAST ERROR$' <<< "$out"
check "list prints alpha's row" \
        grep -Eq "^alpha +ready +yes +yes +0 +[0-9?]+/4 +fake-alpha +pool-engine-alpha\.service +$alpha_pid +-$" <<< "$out"
check "list ends with the legend" bash -c '[ "$(tail -n1 <<< "$1")" = "1 pools listed." ]' _ "$out"

pc --no-legend list
check "--no-legend prints only the row" \
        bash -c '[ "$(wc -l <<< "$1")" -eq 1 ] && [[ "$1" == alpha* ]]' _ "$out"

pc --json list
check "--json list exits 0" rc_is 0
check "--json list is an array of one pool" json_is 'isinstance(j, list) and len(j) == 1'
check "--json list has alpha's fields" json_is "j[0]['pool_id'] == 'alpha' and j[0]['state'] == 'ready' \
and j[0]['ready'] is True and j[0]['live'] is True and j[0]['draining'] is False \
and j[0]['last_error'] is None and j[0]['slots_total'] == 4 and j[0]['active_leases'] == 0 \
and j[0]['engine_version'] == 'fake-alpha' and j[0]['device_mask'] == 'GPU0' \
and j[0]['unit'] == 'pool-engine-alpha.service' and j[0]['pid'] == $alpha_pid \
and j[0]['url'].startswith('http://127.0.0.1:') and j[0]['handoff_path'].endswith('alpha-r0.json') \
and isinstance(j[0]['last_heartbeat_ms'], int) and j[0]['circuit_state'] == 'closed' \
and j[0]['crash_count'] == 0"

pc status alpha
check "status exits 0" rc_is 0
check "status starts with the bullet line" bash -c '[ "$(head -n1 <<< "$1")" = "● alpha - ready" ]' _ "$out"
check "status shows Ready, Live, Unit and Main PID" bash -c '
        grep -Eq "^ +Ready: yes$" <<< "$1" && grep -Eq "^ +Live: yes$" <<< "$1" &&
        grep -Eq "^ +Unit: pool-engine-alpha\.service$" <<< "$1" &&
        grep -Eq "^ +Main PID: $2$" <<< "$1"' _ "$out" "$alpha_pid"
check "status shows URL, Engine, Device mask, Slots, Leases, Draining, Handoff" bash -c '
        grep -Eq "^ +URL: http://127\.0\.0\.1:$2$" <<< "$1" && grep -Eq "^ +Engine: fake-alpha$" <<< "$1" &&
        grep -Eq "^ +Device mask: GPU0$" <<< "$1" && grep -Eq "^ +Slots: .*4" <<< "$1" &&
        grep -Eq "^ +Leases: 0$" <<< "$1" && grep -Eq "^ +Draining: no$" <<< "$1" &&
        grep -Eq "^ +Handoff: .*/engines/alpha-r0\.json$" <<< "$1"' _ "$out" "$p1"
check "status shows the heartbeat's age" \
        grep -Eq '^ +Heartbeat: (never|[0-9-]+T[0-9:.]+Z(; (just now|.* ago))?)$' <<< "$out"
check "status shows every property the daemon has: supervision and circuit too" bash -c '
        grep -Eq "^ +Replica: r0$" <<< "$1" && grep -Eq "^ +Crashes: 0$" <<< "$1" &&
        grep -Eq "^ +Restarts: 0$" <<< "$1" && grep -Eq "^ +Backoff ms: 0$" <<< "$1" &&
        grep -Eq "^ +Circuit: closed$" <<< "$1" && ! grep -q "Next restart:" <<< "$1"' _ "$out"
check "status has no Last error line for a healthy pool" bash -c '! grep -q "Last error:" <<< "$1"' _ "$out"
check "labels are aligned" bash -c '[ "$(tail -n +2 <<< "$1" | sed "/^\$/,\$d" | sed "s/:.*//" | awk "{ print length }" | sort -u)" = 12 ]' _ "$out"
check "status ends with the engine's journal lines, as systemctl status does" bash -c '
        tail -n 10 <<< "$1" | grep -Eq "^[A-Z][a-z]{2} [0-9]{2} [0-9:]{8} pool-engine-alpha\[$2\]: fake-engine: model loaded, ready$"' _ "$out" "$alpha_pid"

pc --json status alpha
check "--json status is alpha's object" json_is "j['pool_id'] == 'alpha' and j['pid'] == $alpha_pid"

pc status nosuch
check "status of an unknown pool exits 3" rc_is 3
check "... with the daemon's message" grep -q '^poolctl: ' <<< "$err"
pc stop nosuch
check "stop of an unknown pool exits 3" rc_is 3
pc lease nosuch
check "lease of an unknown pool exits 3" rc_is 3

# --- preload --------------------------------------------------------------------------------------

pc preload "$work/gamma.json"
check "preload exits 0" rc_is 0
gamma_pid=$(systemctl --user show -P MainPID pool-engine-gamma.service)
check "preload prints pid and handoff" \
        grep -Eq "^Pool gamma ready: pid $gamma_pid, handoff .*/engines/gamma-r0\.json$" <<< "$out"
check "gamma's handoff file exists" test -f "$runtime/engines/gamma-r0.json"
pc list
check "gamma's row appears" grep -Eq "^gamma +ready +yes +yes +0 +- +fake-gamma +pool-engine-gamma\.service +$gamma_pid " <<< "$out"
check "the legend counts two pools" bash -c '[ "$(tail -n1 <<< "$1")" = "2 pools listed." ]' _ "$out"

pc preload "$work/gamma.json"
check "preloading a running pool fails (exit 6, a conflict)" rc_is 6

out=$(echo '{"binary_path": "relative/path", "port": 1, "pool_id": "broken"}' |
      "$POOLCTL" --user preload - 2>"$work/stderr"); rc=$?; err=$(cat "$work/stderr")
check "an invalid PreparedEngine from stdin exits 2" rc_is 2
check "... and the message names the field" grep -q '^poolctl: .*binary_path' <<< "$err"
pc preload "$work/does-not-exist.json"
check "a missing file exits 1" rc_is 1
head -c 70000 /dev/zero | tr '\0' ' ' > "$work/huge.json"
pc preload "$work/huge.json"
check "a file over 64 KiB exits 2" rc_is 2

# --- leases -----------------------------------------------------------------------------------------

pc lease alpha
check "lease prints the count 1" bash -c '[ "$1" -eq 0 ] && grep -q ": 1$" <<< "$2"' _ "$rc" "$out"
pc lease alpha
check "a second lease gives 2" bash -c '[ "$1" -eq 0 ] && grep -q ": 2$" <<< "$2"' _ "$rc" "$out"
pc --json list
check "list --json shows 2 active leases" json_is "[p['active_leases'] for p in j if p['pool_id'] == 'alpha'] == [2]"
pc release alpha
check "release gives 1" bash -c '[ "$1" -eq 0 ] && grep -q ": 1$" <<< "$2"' _ "$rc" "$out"
pc release alpha
check "release gives 0" bash -c '[ "$1" -eq 0 ] && grep -q ": 0$" <<< "$2"' _ "$rc" "$out"

# --- logs ---------------------------------------------------------------------------------------------

logs_show_hello() { "$POOLCTL" --user logs alpha 2>/dev/null | grep -q "alpha says hello"; }
check "logs shows the engine's output" wait_for 10 logs_show_hello
pc logs 'bad id!'
check "logs with an invalid id exits 2" rc_is 2

# --- stop, reload, drain -----------------------------------------------------------------------------

pc stop gamma
check "stop exits 0" rc_is 0
gamma_stopped() { pc --json status gamma && json_is "j['state'] == 'stopped' and j['ready'] is False" >/dev/null; }
check "gamma's state is stopped" wait_for 10 gamma_stopped
check "gamma's unit is gone" bash -c '! systemctl --user -q is-active pool-engine-gamma.service'

pc reload alpha "$work/alpha-2.json"
check "reload exits 0 and names the new engine" \
        bash -c '[ "$1" -eq 0 ] && [ "$2" = "Pool alpha reloaded: engine fake-alpha-2" ]' _ "$rc" "$out"
pc --json status alpha
check "status shows the reloaded engine" \
        json_is "j['engine_version'] == 'fake-alpha-2' and j['ready'] is True"

pc drain alpha --deadline=2000
check "drain exits 0" rc_is 0
check "drain reports a clean drain" grep -Eq '^Pool alpha drained in [0-9]+ms, 0 leases left\.$' <<< "$out"
pc --json status alpha
check "alpha is stopped after the drain" json_is "j['state'] == 'stopped'"

# --- without the daemon ---------------------------------------------------------------------------

stop_daemon pool-managerd-poolctl.service
pc list
check "list exits 4 once the daemon is stopped" rc_is 4
check "... saying so on stderr" grep -q '^poolctl: pool-managerd is not running on the user bus' <<< "$err"
pc status alpha
check "status exits 4 too" rc_is 4
check "logs still work without the daemon" logs_show_hello

systemctl --user stop pool-engine-alpha.service pool-engine-gamma.service 2>/dev/null

tap_end
