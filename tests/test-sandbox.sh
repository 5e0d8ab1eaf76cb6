#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Self-test of the sandbox harness and of the fake engine, against the real user manager:
#
#       tests/sandbox -- tests/test-sandbox.sh BUILD_DIR
#
# Starts tests/fake-engine as transient units in pool-engines.slice with systemd-run --user and
# checks what the integration tests will rely on: readiness over HTTP, MainPID, the journal,
# stop timeouts, exit statuses and signals as systemd reports them, HTTP/1.0 mode, the probe
# log. Prints TAP; exits non-zero if any test failed.

# The helpers below are mostly called through check and wait_for.
# shellcheck disable=SC2317

set -u

if [ $# -ne 1 ]; then
        echo "Usage: tests/sandbox -- $0 BUILD_DIR" >&2
        exit 2
fi
if [ -z "${SANDBOX:-}" ] || [ -z "${XDG_RUNTIME_DIR:-}" ]; then
        echo "$0: run me inside tests/sandbox" >&2
        exit 2
fi

FAKE_ENGINE=$(readlink -f -- "$1/tests/fake-engine")
if [ ! -x "$FAKE_ENGINE" ]; then
        echo "$0: no fake engine at $1/tests/fake-engine" >&2
        exit 2
fi

n=0
failed=0

# check DESCRIPTION COMMAND... : one TAP line from COMMAND's status.
check() {
        local desc=$1
        shift

        n=$((n + 1))
        if "$@"; then
                echo "ok $n - $desc"
        else
                echo "not ok $n - $desc"
                failed=$((failed + 1))
        fi
}

diag() {
        printf '# %s\n' "$@"
}

now_ms() {
        local t=${EPOCHREALTIME/./}

        echo $((t / 1000))
}

# wait_for TIMEOUT_MS COMMAND... : polls every 50 ms until COMMAND succeeds.
wait_for() {
        local timeout_ms=$1 t
        shift

        for ((t = 0; t < timeout_ms; t += 50)); do
                "$@" && return 0
                sleep 0.05
        done
        "$@"
}

# A port nobody listens on. The network namespace is shared with parallel runs, so no fixed ports.
pick_port() {
        local port

        for _ in $(seq 100); do
                port=$((20000 + RANDOM % 12000))   # below the ephemeral range: see tests/free-port
                if ! (exec 3<> "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                        echo "$port"
                        return 0
                fi
        done
        return 1
}

not() {
        ! "$@"
}

between() {
        [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

one_of() {
        local v=$1
        shift

        for x in "$@"; do
                [ "$v" = "$x" ] && return 0
        done
        return 1
}

is_fake_engine() {
        [ "$1" -gt 0 ] && [ "$(readlink "/proc/$1/exe")" = "$FAKE_ENGINE" ]
}

http_code() {
        curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1"
}

http_code_is() {
        [ "$(http_code "$2")" = "$1" ]
}

prop() {
        systemctl --user show -p "$2" --value "$1"
}

prop_is() {
        [ "$(prop "$1" "$2")" = "$3" ]
}

unit_finished() {
        local state

        state=$(prop "$1" ActiveState)
        [ "$state" = failed ] || [ "$state" = inactive ]
}

journal_has() {
        journalctl --user-unit="$1" -o cat --no-pager 2>/dev/null | grep -qF -- "$2"
}

# Lines a process wrote just before it exited can miss every _SYSTEMD_* field: journald reads the
# sender's cgroup from /proc when it processes the line, and the process may be gone by then. They
# keep _PID, so for an engine that exited match its main PID as well.
journal_of_exited_has() {
        local pid

        pid=$(prop "$1" ExecMainPID)
        journalctl _SYSTEMD_USER_UNIT="$1" + _PID="$pid" -o cat --no-pager 2>/dev/null | grep -qF -- "$2"
}

# start_engine UNIT [systemd-run -p ...] -- FAKE-ENGINE ARGS...
start_engine() {
        local unit=$1
        local -a props=()
        shift

        while [ $# -gt 0 ] && [ "$1" != -- ]; do
                props+=("$1")
                shift
        done
        shift
        systemd-run --user --quiet --unit="$unit" -p Slice=pool-engines.slice "${props[@]}" \
                "$FAKE_ENGINE" "$@"
}

# --- the fake engine alone ---------------------------------------------------------------------

"$FAKE_ENGINE" --port 1 --no-such-flag 2>/dev/null
check "fake-engine rejects an unknown flag with exit status 2 (got $?)" [ $? -eq 2 ]

# --- a slow-loading engine as a transient unit in pool-engines.slice ---------------------------

port=$(pick_port)
unit=pool-engine-t1.service
started=$(now_ms)
start_engine "$unit" -- --port="$port" --ready-after=1000 --stdout-line=hello-journal
check "systemd-run --user starts $unit" wait_for 2000 prop_is "$unit" ActiveState active

cgroup=$(prop "$unit" ControlGroup)
check "$unit is in pool-engines.slice (cgroup ${cgroup})" \
        [ "${cgroup%/pool.slice/pool-engines.slice/"$unit"}" != "$cgroup" ]

main_pid=$(prop "$unit" MainPID)
check "MainPID ($main_pid) is a live fake-engine process" is_fake_engine "$main_pid"

# The engine may not have bound yet: wait for any answer, which must be 503 this early.
check "GET /health answers 503 while loading" wait_for 900 http_code_is 503 "http://127.0.0.1:$port/health"
body=$(curl -s --max-time 2 "http://127.0.0.1:$port/health")
check "the 503 body is llama-server's" [ "$body" = '{"error":{"code":503,"message":"Loading model"}}' ]

check "GET /health answers 200 after --ready-after" \
        wait_for 5000 http_code_is 200 "http://127.0.0.1:$port/health"
ready_ms=$(($(now_ms) - started))
check "ready after 1000 ms, not before (${ready_ms} ms after start)" [ "$ready_ms" -ge 950 ]
check "the 200 body is {\"status\":\"ok\"}" \
        [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/health")" = '{"status":"ok"}' ]
check "GET /slots lists one idle slot" \
        [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/slots")" = \
          '[{"id":0,"id_task":-1,"state":0,"is_processing":false}]' ]
check "GET /props reports total_slots" \
        grep -q '"total_slots":1' <(curl -s --max-time 2 "http://127.0.0.1:$port/props")
check "GET /metrics has llamacpp: metrics" \
        grep -q '^llamacpp:requests_processing 0$' <(curl -s --max-time 2 "http://127.0.0.1:$port/metrics")
check "an unknown path is 404" http_code_is 404 "http://127.0.0.1:$port/v1/nope"

check "journalctl --user-unit=$unit shows the engine's stdout" \
        wait_for 5000 journal_has "$unit" hello-journal
check "the journal has the listening line" \
        journal_has "$unit" "fake-engine: pid $main_pid listening on 127.0.0.1:$port"

# A transient unit that stopped cleanly is garbage-collected at once (CollectMode=inactive), so
# its properties are gone: what the manager logged is the evidence.
systemctl --user stop "$unit"
check "SIGTERM makes it say so in the journal" \
        wait_for 5000 journal_has "$unit" "received SIGTERM, shutting down"
check "... and the user manager logged 'Stopped' under the same unit" \
        wait_for 5000 journal_has "$unit" "Stopped $unit"
check "... and no failure (it exited 0 on SIGTERM)" not journal_has "$unit" "Failed with result"

# --- an engine that ignores SIGTERM is killed after TimeoutStopSec= ----------------------------

unit=pool-engine-t2.service
port=$(pick_port)
start_engine "$unit" -p TimeoutStopSec=2s -- --port="$port" --ignore-sigterm
# Active comes with the fork, before the engine set SIGTERM to SIG_IGN: stopped that early it
# would still die of SIGTERM at once. It answers only once its signals are set up.
wait_for 5000 http_code_is 200 "http://127.0.0.1:$port/health"
t0=$(now_ms)
systemctl --user stop "$unit"
elapsed=$(($(now_ms) - t0))
check "stopping a SIGTERM-ignoring engine takes TimeoutStopSec=2s (${elapsed} ms)" \
        between "$elapsed" 1500 5000
check "... and ends with Result=timeout ($(prop "$unit" Result))" prop_is "$unit" Result timeout
systemctl --user reset-failed "$unit" 2>/dev/null

# --- exit statuses and signals, as systemd reports them ---------------------------------------

unit=pool-engine-t3.service
start_engine "$unit" -- --port="$(pick_port)" --exit-after=300 --exit-code=7
wait_for 5000 unit_finished "$unit"
check "--exit-after/--exit-code=7 gives Result=exit-code ($(prop "$unit" Result))" \
        prop_is "$unit" Result exit-code
check "... and ExecMainStatus=7 ($(prop "$unit" ExecMainStatus))" prop_is "$unit" ExecMainStatus 7
systemctl --user reset-failed "$unit" 2>/dev/null

unit=pool-engine-t4.service
start_engine "$unit" -- --port="$(pick_port)" --crash-after=200
wait_for 5000 unit_finished "$unit"
result=$(prop "$unit" Result)
check "--crash-after gives Result=signal or core-dump ($result)" one_of "$result" signal core-dump
check "... with ExecMainStatus=11, SIGSEGV ($(prop "$unit" ExecMainStatus))" \
        prop_is "$unit" ExecMainStatus 11
systemctl --user reset-failed "$unit" 2>/dev/null

unit=pool-engine-t5.service
start_engine "$unit" -- --port="$(pick_port)" --no-such-flag
wait_for 5000 unit_finished "$unit"
check "an unknown flag under systemd gives ExecMainStatus=2 ($(prop "$unit" ExecMainStatus))" \
        prop_is "$unit" ExecMainStatus 2
check "... and its complaint is in the journal" \
        wait_for 5000 journal_of_exited_has "$unit" "unrecognized option '--no-such-flag'"
systemctl --user reset-failed "$unit" 2>/dev/null

port=$(pick_port)
start_engine pool-engine-t6a.service -- --port="$port"
wait_for 2000 http_code_is 200 "http://127.0.0.1:$port/health"
unit=pool-engine-t6b.service
start_engine "$unit" -- --port="$port"
wait_for 5000 unit_finished "$unit"
check "a second engine on a taken port exits with status 1 ($(prop "$unit" ExecMainStatus))" \
        prop_is "$unit" ExecMainStatus 1
check "... naming host:port in the journal" \
        wait_for 5000 journal_of_exited_has "$unit" "failed to bind 127.0.0.1:$port: Address already in use"
systemctl --user stop pool-engine-t6a.service
systemctl --user reset-failed "$unit" 2>/dev/null

# --- HTTP/1.0, the probe log, late binding, port 0, IPv6 --------------------------------------

port=$(pick_port)
unit=pool-engine-t7.service
start_engine "$unit" -- --port="$port" --http10
wait_for 2000 http_code_is 200 "http://127.0.0.1:$port/health"
status_line=$(curl -s -i --max-time 2 "http://127.0.0.1:$port/health" | head -n 1 | tr -d '\r')
check "--http10 answers with an HTTP/1.0 status line ($status_line)" [ "$status_line" = "HTTP/1.0 200 OK" ]
check "... and closes the connection" \
        grep -qi '^Connection: close' <(curl -s -i --max-time 2 "http://127.0.0.1:$port/health")
systemctl --user stop "$unit"

port=$(pick_port)
unit=pool-engine-t8.service
probe_log=$SANDBOX/probe-t8.log
start_engine "$unit" -- --port="$port" --ready-after=600 --probe-log="$probe_log"
wait_for 2000 http_code_is 503 "http://127.0.0.1:$port/health"
wait_for 3000 http_code_is 200 "http://127.0.0.1:$port/health"
for _ in 1 2 3; do
        http_code "http://127.0.0.1:$port/health" > /dev/null
        sleep 0.1
done
http_code "http://127.0.0.1:$port/slots" > /dev/null
systemctl --user stop "$unit"
lines=$(wc -l < "$probe_log")
check "--probe-log has one line per /health request ($lines)" [ "$lines" -ge 5 ]
check "... each '<realtime ms> <monotonic ms> <status>'" \
        [ "$(grep -cE '^[0-9]{13} [0-9]+ (200|503)$' "$probe_log")" -eq "$lines" ]
check "... 503 while loading, then 200" \
        [ "$(cut -d' ' -f3 "$probe_log" | uniq | tr '\n' ' ')" = "503 200 " ]
check "... monotonic times never go back" sort -c -n -k2,2 "$probe_log"
mono_span=$(awk 'NR == 1 { a = $2 } END { print $2 - a }' "$probe_log")
real_span=$(awk 'NR == 1 { a = $1 } END { print $1 - a }' "$probe_log")
check "... and both clocks agree on the span (${mono_span} vs ${real_span} ms)" \
        between $((mono_span - real_span)) -50 50

port=$(pick_port)
unit=pool-engine-t9.service
start_engine "$unit" -- --port="$port" --delay-bind=800
sleep 0.2
check "--delay-bind: connection refused at first ($(http_code "http://127.0.0.1:$port/health"))" \
        http_code_is 000 "http://127.0.0.1:$port/health"
check "... then it answers 200" wait_for 3000 http_code_is 200 "http://127.0.0.1:$port/health"
systemctl --user stop "$unit"

unit=pool-engine-t10.service
start_engine "$unit" -- --port=0
wait_for 5000 journal_has "$unit" "listening on"
port=$(journalctl --user-unit="$unit" -o cat --no-pager |
       sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1)
check "--port=0 reports the port it got (${port:-none}), which answers" \
        http_code_is 200 "http://127.0.0.1:${port:-0}/health"
systemctl --user stop "$unit"

if [ -e /proc/net/if_inet6 ]; then
        port=$(pick_port)
        unit=pool-engine-t11.service
        start_engine "$unit" -- --port="$port" --host=::1
        check "--host=::1 answers on [::1]" wait_for 2000 http_code_is 200 "http://[::1]:$port/health"
        systemctl --user stop "$unit"
else
        n=$((n + 1))
        echo "ok $n - --host=::1 # SKIP no IPv6"
fi

echo "1..$n"
if [ "$failed" -gt 0 ]; then
        diag "$failed of $n failed"
        exit 1
fi
exit 0
