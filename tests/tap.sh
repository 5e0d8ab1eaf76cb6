# SPDX-License-Identifier: GPL-3.0-or-later
# TAP helpers shared by the shell tests; sourced. Each test prints "ok N - ..." / "not ok N - ..."
# lines (tools/test counts them) and ends with tap_end, whose status is the test's.

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }

# Polls a command for up to $1 seconds.
wait_for() {
        local t=$1; shift
        for _ in $(seq $((t * 20))); do "$@" && return 0; sleep 0.05; done
        return 1
}

# Stops a unit that runs pool-managerd by SIGTERM alone, then systemctl stop: systemd's SIGCONT
# after SIGTERM can hang an ASan build's exit (see tests/stop-daemon).
stop_daemon() {
        "$(dirname "${BASH_SOURCE[0]}")/stop-daemon" "$1" > /dev/null || not_ok "$1 stops (exit within 30 s of SIGTERM)"
}

# A free port below the ephemeral range (see tests/free-port for why), never one this test
# had before: a port is free when chosen, not yet bound, and two picked alike (Listen= and an
# engine's port) would collide. $(free_port) runs in a subshell, so the ports handed out are
# kept in the environment variable's file, not a variable.
export TAP_PORTS_FILE="${TAP_PORTS_FILE:-$(mktemp "${TMPDIR:-/tmp}/tap-ports.XXXXXX")}"
free_port() {
        local port
        while :; do
                port=$("$(dirname "${BASH_SOURCE[0]}")/free-port") || return
                grep -qx "$port" "$TAP_PORTS_FILE" 2>/dev/null && continue
                echo "$port" >>"$TAP_PORTS_FILE"
                echo "$port"
                return 0
        done
}

tap_end() {
        rm -f "$TAP_PORTS_FILE"
        echo "1..$n"
        [ "$failed" -eq 0 ]
}
