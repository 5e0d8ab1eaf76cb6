# SPDX-License-Identifier: GPL-3.0-or-later
#
# Helpers of the checks that tools/boot-test runs inside a booted Debian 12 system instance
# (tests/boot/package-checks.sh, tests/boot/source-checks.sh); sourced after tests/tap.sh, with
# $tmp a scratch directory.

readonly BUS=org.llorch.PoolManager1 OBJ=/org/llorch/PoolManager1 IFACE=org.llorch.PoolManager1.Manager
readonly API=http://127.0.0.1:9200
readonly CONF=/etc/pool-managerd/pool-managerd.conf

# curl_code METHOD PATH [BODY]: prints the HTTP status; the body goes to $tmp/body. curl itself
# failing (connection refused, timeout) prints 000.
curl_code() {
        local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 60 -X "$1")
        [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
        rm -f "$tmp/body"
        curl "${args[@]}" "$API$2" || true
}
body() { cat "$tmp/body" 2>/dev/null; }
json_field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" "$tmp/body" | tr -d '"'; }
unit_prop() { systemctl show -P "$2" "$1"; }

# prepared POOL PORT: the body of POST /pools/{id}/preload ({"prepared": PreparedEngine},
# pool-managerd(8)) for the fake engine; prepared_engine POOL PORT: the PreparedEngine alone.
prepared_engine() {
        printf '{"pool_id": "%s", "binary_path": "%s", "flags": ["--port", "%s"], "host": "127.0.0.1", "port": %s, "engine": "custom", "engine_version": "boot-test"}' \
                "$1" "$ENGINE" "$2" "$2"
}
prepared() { printf '{"prepared": %s}' "$(prepared_engine "$1" "$2")"; }

# stop_daemon: stops the daemon, the socket stays. Two starts a round would soon hit the unit's
# start rate limit (5 in 10 s, systemd's default, which guards against a crash loop and which a
# user does not hit), so the limiter is reset as an admin would with reset-failed.
stop_daemon() {
        systemctl stop pool-managerd.service 2>/dev/null  # "can still be activated by the socket": yes
        systemctl reset-failed pool-managerd.service pool-managerd.socket
}

# The socket, not a daemon, holds the API port: systemd (PID 1) listens on it.
socket_holds_port() { ss -Hltnp "sport = :9200" | grep -q '"systemd",pid=1,'; }

# bus_call_as USER METHOD [ARGS...]: prints the error, or "ok". dbus-send, not busctl, because
# busctl prints every AccessDenied as "Access denied": the bus's refusal says "Rejected send
# message", the daemon's own check says something else.
bus_call_as() {
        local user=$1 method=$2 out; shift 2
        if out=$(runuser -u "$user" -- dbus-send --system --print-reply --reply-timeout=120000 --dest="$BUS" \
                        "$OBJ" "$IFACE.$method" "$@" 2>&1); then
                echo ok
        else
                echo "$out" | grep '^Error' || echo "$out"
        fi
}
refused_by_bus() { echo "$1" | grep -q "AccessDenied: Rejected send message"; }

# pool_ready POOL: GET /pools/POOL/status answers 200 with ready true ($tmp/body holds it).
pool_ready() { [ "$(curl_code GET "/pools/$1/status")" = 200 ] && grep -q '"ready":true' "$tmp/body"; }

# The journal of the daemon's current run (its invocation), up to 5 s for journald to catch up.
daemon_logged() {
        local id
        id=$(unit_prop pool-managerd.service InvocationID)
        wait_for 5 sh -c "journalctl -q -o cat _SYSTEMD_INVOCATION_ID=$id | grep -qF -- \"\$1\"" sh "$1"
}

# run_check DESCRIPTION COMMAND...: ok when COMMAND succeeds, else not ok with its output.
run_check() {
        local d=$1 out; shift
        if out=$("$@" 2>&1); then
                ok "$d"
        else
                not_ok "$d"
                sed 's/^/#   /' <<<"$out" | tail -n 20
        fi
}
