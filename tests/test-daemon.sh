#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# End-to-end test of the pool-managerd binary inside tests/sandbox: the daemon runs as a
# Type=notify user unit, preloads the pools of its PoolsDirectory at start-up (OC-POOL-3001),
# and is observed only from the outside: sd_notify state, unit properties, files, journal.
# Prints TAP-style lines. Needs $POOL_MANAGERD and $FAKE_ENGINE.
set -u
source "$(dirname "$0")/tap.sh"




[ -n "${POOL_MANAGERD:-}" ] && [ -n "${FAKE_ENGINE:-}" ] && [ -n "${XDG_RUNTIME_DIR:-}" ] || {
        echo "Run inside tests/sandbox with POOL_MANAGERD and FAKE_ENGINE set." >&2; exit 77; }

work=$XDG_RUNTIME_DIR/test-daemon
runtime=$XDG_RUNTIME_DIR/pool-managerd
mkdir -p "$work/pools.d" "$work/conf.d"
p1=$(free_port) p2=$(free_port) api=$(free_port)

cat > "$work/pool-managerd.conf" <<CONF
[Manager]
PoolsDirectory=$work/pools.d
GpuOnly=no
HealthInterval=100ms
EngineSandbox=container
Listen=127.0.0.1:$api
CONF
cat > "$work/pools.d/alpha.json" <<JSON
{"binary_path": "$FAKE_ENGINE", "flags": ["--port", "$p1", "--ready-after=500"], "port": $p1,
 "pool_id": "alpha", "engine_version": "fake-alpha", "slots_total": 4}
JSON
cat > "$work/pools.d/beta.json" <<JSON
{"binary_path": "$FAKE_ENGINE", "flags": ["--port", "$p2", "--stdout-line=beta says hello"], "port": $p2,
 "pool_id": "beta", "device_mask": "GPU1"}
JSON
echo '{"binary_path": "relative/path", "port": 1, "pool_id": "broken"}' > "$work/pools.d/broken.json"
echo 'this is not a pool' > "$work/pools.d/README"

systemd-run --user --quiet --unit=pool-managerd-test -p Type=notify -p NotifyAccess=main \
        -E POOL_MANAGERD_LOG_TARGET=journal \
        "$POOL_MANAGERD" --user --config="$work/pool-managerd.conf"
check "daemon reported READY=1 to systemd" \
        test "$(systemctl --user show -P ActiveState pool-managerd-test.service)" = active

check "alpha becomes ready: handoff file written" wait_for 20 test -f "$runtime/engines/alpha-r0.json"
check "beta becomes ready: handoff file written" wait_for 20 test -f "$runtime/engines/beta-r0.json"
check "STATUS= summarises the pools" wait_for 5 \
        bash -c '[ "$(systemctl --user show -P StatusText pool-managerd-test.service)" = "2 pools, 2 ready" ]'

pid=$(systemctl --user show -P MainPID pool-engine-alpha.service)
check "alpha pid file equals the unit's MainPID" test "$(cat "$runtime/alpha.pid")" = "$pid"
check "alpha handoff carries pid, unit and slots" python3 - "$runtime/engines/alpha-r0.json" "$pid" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
assert h["pid"] == int(sys.argv[2]), h
assert h["unit"] == "pool-engine-alpha.service", h
assert h["slots_total"] == 4 and h["slots"] == 4, h
assert h["engine_version"] == "fake-alpha", h
assert h["url"].startswith("http://127.0.0.1:"), h
PY
check "beta gets CUDA_VISIBLE_DEVICES from its device mask" \
        bash -c 'systemctl --user show -P Environment pool-engine-beta.service | grep -q "CUDA_VISIBLE_DEVICES=1"'
check "beta's output is in the journal under its unit" wait_for 10 \
        bash -c 'journalctl --no-pager -q --user-unit=pool-engine-beta.service | grep -q "beta says hello"'
check "engine ready entries carry MESSAGE_ID and POOL_ID" wait_for 5 \
        bash -c 'journalctl --no-pager -q MESSAGE_ID=0c1727b0c5214e3f8210c1af028737e1 POOL_ID=alpha | grep -q "is ready"'
check "the invalid pool file is reported by name" wait_for 5 \
        bash -c 'journalctl --no-pager -q --user-unit=pool-managerd-test.service | grep -q "broken.json: invalid PreparedEngine: binary_path"'
check "the non-JSON file is ignored" \
        bash -c '! journalctl --no-pager -q --user-unit=pool-managerd-test.service | grep -q README'

# Stopping the daemon does not stop engines: they belong to systemd.
stop_daemon pool-managerd-test.service
check "daemon stopped" bash -c '! systemctl --user -q is-active pool-managerd-test.service'
check "engines survive the daemon" systemctl --user -q is-active pool-engine-alpha.service pool-engine-beta.service
check "alpha still serves /health" curl -sf "http://127.0.0.1:$p1/health" -o /dev/null

systemctl --user stop pool-engine-alpha.service pool-engine-beta.service

tap_end
