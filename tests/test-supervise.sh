#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Supervision against the real service manager, inside tests/sandbox: re-adoption of running
# engines after kill -9 of the daemon (same PIDs, nothing restarted), orphan units tracked,
# restart after a crash, the circuit breaker and its reset, liveness failures, state saved in
# StateDirectory. Time is scaled down with [Supervision] keys. Prints TAP lines.
# Needs $POOL_MANAGERD, $FAKE_ENGINE and $POOLCTL.
set -u
source "$(dirname "$0")/tap.sh"


[ -n "${POOL_MANAGERD:-}" ] && [ -n "${FAKE_ENGINE:-}" ] && [ -n "${POOLCTL:-}" ] && [ -n "${XDG_RUNTIME_DIR:-}" ] || {
        echo "Run inside tests/sandbox with POOL_MANAGERD, FAKE_ENGINE and POOLCTL set." >&2; exit 77; }

work=$XDG_RUNTIME_DIR/test-supervise
unit=pool-managerd-supervise.service
mkdir -p "$work/pools.d" "$work/state"

cat > "$work/pool-managerd.conf" <<CONF
[Manager]
PoolsDirectory=$work/pools.d
StateDirectory=$work/state
GpuOnly=no
HealthInterval=100ms
EngineSandbox=container
Listen=127.0.0.1:$(free_port)

[Supervision]
BackoffInitial=200ms
BackoffMin=100ms
BackoffMax=1s
BreakerThreshold=3
BreakerTimeout=2s
BreakerCloseAfter=1s
StableAfter=5s
LivenessInterval=200ms
LivenessFailures=2
CONF

pool_json() {   # pool_json ID PORT EXTRA-FLAGS...
        local id=$1 port=$2; shift 2
        local flags="\"--port\", \"$port\""
        for f in "$@"; do flags="$flags, \"$f\""; done
        echo "{\"pool_id\": \"$id\", \"binary_path\": \"$FAKE_ENGINE\", \"port\": $port, \"flags\": [$flags], \"engine_version\": \"fake-$id\"}"
}

pool_json alpha "$(free_port)" > "$work/pools.d/alpha.json"
pool_json beta "$(free_port)" --ready-after=300 > "$work/pools.d/beta.json"

start_daemon() {
        systemd-run --user --quiet --unit="$unit" -p Type=notify -p NotifyAccess=main \
                -E POOL_MANAGERD_LOG_TARGET=journal "$POOL_MANAGERD" --user --config="$work/pool-managerd.conf"
}
prop() { busctl --user get-property org.llorch.PoolManager1 "/org/llorch/PoolManager1/pool/$1" \
                org.llorch.PoolManager1.Pool "$2" 2>/dev/null | cut -d' ' -f2- | tr -d '"'; }
is_state() { [ "$(prop "$1" State)" = "$2" ]; }
mainpid() { systemctl --user show -P MainPID "pool-engine-$1.service"; }
invocation() { systemctl --user show -P InvocationID "pool-engine-$1.service"; }

start_daemon
check "alpha ready" wait_for 20 is_state alpha ready
check "beta ready" wait_for 20 is_state beta ready
check "state saved for alpha" test -f "$work/state/pools/alpha.json"

# --- re-adoption after kill -9 -----------------------------------------------------------------
pa=$(mainpid alpha) pb=$(mainpid beta) ia=$(invocation alpha) ib=$(invocation beta)
# An engine unit the new daemon knows nothing about: an orphan, tracked and stoppable.
orphan_port=$(free_port)
systemd-run --user --quiet --unit=pool-engine-orphan.service "$FAKE_ENGINE" --port "$orphan_port"
systemctl --user kill -s KILL "$unit"
wait_for 10 bash -c "! systemctl --user -q is-active $unit"
systemctl --user reset-failed "$unit" 2>/dev/null
check "engines survive kill -9 of the daemon" systemctl --user -q is-active pool-engine-alpha.service pool-engine-beta.service
t0=$(date +%s%N)
start_daemon
check "alpha re-adopted: ready again" wait_for 10 is_state alpha ready
check "beta re-adopted: ready again" wait_for 10 is_state beta ready
t1=$(date +%s%N)
check "re-adoption took under 2 s ($(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -lt 2000
check "alpha keeps its MainPID (not restarted)" test "$(mainpid alpha)" = "$pa" -a "$(prop alpha MainPID)" = "$pa"
check "beta keeps its MainPID (not restarted)" test "$(mainpid beta)" = "$pb"
check "alpha's unit was not restarted (same InvocationID)" test "$(invocation alpha)" = "$ia"
check "beta's unit was not restarted (same InvocationID)" test "$(invocation beta)" = "$ib"
orphan_pid=$(systemctl --user show -P MainPID pool-engine-orphan.service)
check "the orphan unit without saved state is listed as pool state orphan" is_state orphan orphan
check "the orphan pool shows its unit's PID" test "$(prop orphan MainPID)" = "u $orphan_pid" -o "$(prop orphan MainPID)" = "$orphan_pid"
check "the orphan keeps running (never silently stopped)" systemctl --user -q is-active pool-engine-orphan.service
check "the daemon logged why it is an orphan" wait_for 5 bash -c \
        "journalctl --no-pager -q --user-unit=$unit | grep -q 'pool-engine-orphan.service runs, but it has no saved state'"
check "a preload of the orphan pool is refused: AlreadyRunning" bash -c \
        "$POOLCTL --user preload - <<< '{\"pool_id\":\"orphan\",\"binary_path\":\"$FAKE_ENGINE\",\"port\":$orphan_port,\"flags\":[\"--port\",\"$orphan_port\"]}' 2>&1 | grep -q 'orphan engine unit'"
check "the orphan unit still runs with its PID" test "$(systemctl --user show -P MainPID pool-engine-orphan.service)" = "$orphan_pid"
check "poolctl stop stops the orphan" "$POOLCTL" --user stop orphan
check "the orphan unit is gone" wait_for 10 bash -c '! systemctl --user -q is-active pool-engine-orphan.service'
check "the orphan pool is stopped" wait_for 5 is_state orphan stopped
check "alpha's handoff file is there after re-adoption" test -f "$XDG_RUNTIME_DIR/pool-managerd/engines/alpha-r0.json"

# --- crash, restart, circuit breaker, reset --------------------------------------------------
pa=$(mainpid alpha)
kill -KILL "$pa"
check "a killed engine makes the pool unready at once" wait_for 2 bash -c \
        "[ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/alpha org.llorch.PoolManager1.Pool Ready)\" = 'b false' ]"
check "crash classified and counted" wait_for 5 bash -c "[ \"\$($POOLCTL --user --json status alpha | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get(\"state\"))')\" != ready ]"
check "restarted after the backoff: ready with a new pid" wait_for 10 bash -c \
        "[ \"\$(systemctl --user show -P MainPID pool-engine-alpha.service)\" != $pa ] && [ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/alpha org.llorch.PoolManager1.Pool State)\" = 's \"ready\"' ]"
check "CrashCount 1, RestartCount 1" test "$(prop alpha CrashCount)/$(prop alpha RestartCount)" = "1/1"
check "the crash entry names the reason signal" wait_for 5 bash -c \
        "journalctl --no-pager -q --user-unit=$unit CRASH_REASON=signal POOL_ID=alpha | grep -q 'killed by signal SIGKILL'"

# A pool whose engine dies right after it is ready, every time: the breaker opens at 3.
pool_json crashy "$(free_port)" --crash-after=300 > "$work/crashy.json"
"$POOLCTL" --user preload "$work/crashy.json" >/dev/null
check "crashy: circuit opens after 3 consecutive crashes" wait_for 20 bash -c \
        "[ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/crashy org.llorch.PoolManager1.Pool CircuitState)\" = 's \"open\"' ]"
check "crashy: state failed while the circuit is open" is_state crashy failed
c=$(prop crashy CrashCount)
sleep 0.8
check "crashy: no restart while open (CrashCount stays $c)" test "$(prop crashy CrashCount)" = "$c"
check "crashy: half-open after BreakerTimeout=2s: one trial restart" wait_for 5 bash -c \
        "[ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/crashy org.llorch.PoolManager1.Pool CrashCount)\" != 'u $c' ]"
check "crashy: the failed trial reopens the circuit" wait_for 5 bash -c \
        "[ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/crashy org.llorch.PoolManager1.Pool CircuitState)\" = 's \"open\"' ]"
"$POOLCTL" --user reset crashy >/dev/null
check "poolctl reset: circuit closed and a restart begins" wait_for 5 bash -c \
        "busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/crashy org.llorch.PoolManager1.Pool State | grep -Eq 'starting|probing|ready|backoff'"
"$POOLCTL" --user stop crashy >/dev/null 2>&1
check "crashy stopped: no more restarts" wait_for 10 is_state crashy stopped

# --- liveness -----------------------------------------------------------------------------
pb=$(mainpid beta)
kill -STOP "$pb"
check "a frozen engine fails its liveness probes and is restarted" wait_for 15 bash -c \
        "[ \"\$(systemctl --user show -P MainPID pool-engine-beta.service)\" != $pb ] && [ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/beta org.llorch.PoolManager1.Pool State)\" = 's \"ready\"' ]"
check "the crash reason is health_failure" wait_for 5 bash -c \
        "journalctl --no-pager -q --user-unit=$unit CRASH_REASON=health_failure POOL_ID=beta | grep -q liveness"
check "the frozen process is gone" bash -c "! kill -0 $pb 2>/dev/null"

# --- counts survive a daemon restart --------------------------------------------------------
stop_daemon "$unit"
start_daemon
check "CrashCount of alpha survives a daemon restart" wait_for 10 bash -c "[ \"\$(busctl --user get-property org.llorch.PoolManager1 /org/llorch/PoolManager1/pool/alpha org.llorch.PoolManager1.Pool CrashCount)\" = 'u 1' ]"

stop_daemon "$unit"
systemctl --user stop pool-engine-alpha.service pool-engine-beta.service 2>/dev/null
tap_end
