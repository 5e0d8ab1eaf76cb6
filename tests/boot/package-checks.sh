#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The checks of tools/boot-test for the Debian package, run inside a booted Debian 12 system
# instance (systemd as PID 1, the system bus, no network) as a root service; TAP on stdout.
# tools/boot-test put the .deb, the fake engine and these scripts in /srv/boot-test and boots
# the same root three times, running one phase each time:
#
#   install   `apt install ./pool-managerd_*.deb` as a user would, then what it installed and
#             set up; socket activation by the first HTTP request; the bus policy (AccessDenied
#             for a user outside group pool-managerd, Preload for a member); the engine as
#             systemctl and journalctl show it, as EngineUser=pool-engine, in the default
#             EngineSandbox=full, each sandbox setting on the running unit and in /proc;
#             restart re-adopts, stop leaves engines running; ROUNDS times socket activation
#             with a running pool (issue 18); device masks enforced by the kernel (issue 9:
#             systemd's device cgroup, then a pool with mask "1,GPU3" on four mknod-made nodes and
#             the fake NVML); a pool put in /etc/pool-managerd/pools.d.
#   reboot    after a reboot: the socket listens, the daemon does not run; the first request
#             starts it, and it brings back the pool that ran and preloads pools.d; then
#             `systemctl enable pool-managerd.service`.
#   enabled   after another reboot: the enabled daemon started at boot, with both pools, before
#             any request; `apt remove` stops it and the engines, `apt purge` removes the state.
#
#   ROUNDS=20 tests/boot/package-checks.sh install|reboot|enabled
set -euo pipefail

cd "$(dirname "$0")"
source ./tap.sh

PHASE=${1:?phase}
ROUNDS=${ROUNDS:-20}
readonly HERE=$PWD
readonly POOL=bootpool PORT=8081 DIR_POOL=bootdir DIR_PORT=8082
readonly ENGINE=/usr/local/libexec/pool-managerd-test/fake-engine
readonly UNIT=pool-engine-$POOL.service DIR_UNIT=pool-engine-$DIR_POOL.service
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source ./lib.sh

# engine_pid POOL: the pid GET /pools/POOL/status names.
engine_pid() { curl_code GET "/pools/$1/status" >/dev/null; json_field pid; }
# runs_as USER PID: the process runs as USER.
runs_as() { [ "$(stat -c %U "/proc/$2")" = "$1" ]; }
# proc_status PID FIELD: a field of /proc/PID/status.
proc_status() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# mount_opts PID MOUNTPOINT: the options of the mount at MOUNTPOINT in the process's namespace
# (the last, the one on top); read_only PID MOUNTPOINT: they say "ro".
mount_opts() { awk -v m="$2" '$5 == m { print $6 }' "/proc/$1/mountinfo" | tail -n 1; }
read_only() { [[ ,$(mount_opts "$1" "$2"), == *,ro,* ]]; }
# words: the words of its arguments, sorted, one line.
words() { tr ' ' '\n' <<<"$*" | sed '/^$/d' | sort | xargs; }
# service_inactive: the daemon is not running (not active, activating or reloading).
service_inactive() { ! systemctl is-active -q pool-managerd.service && [ "$(unit_prop pool-managerd.service MainPID)" = 0 ]; }
# complete LINE: what bash completion (bash-completion's loader) offers for LINE.
complete_line() {
        bash -c 'source /usr/share/bash-completion/bash_completion
                 __load_completion poolctl || exit 1
                 COMP_LINE=$1 COMP_POINT=${#1}
                 read -r -a COMP_WORDS <<<"$1"
                 [[ $1 == *" " ]] && COMP_WORDS+=("")
                 COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                 _poolctl poolctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
                 echo "${COMPREPLY[*]}"' sh "$1"
}
both_pools_ready() { pool_ready "$POOL" && pool_ready "$DIR_POOL"; }
both_engines_active() { systemctl is-active -q "$UNIT" && systemctl is-active -q "$DIR_UNIT"; }

# ---- device masks, enforced by the kernel (issue 9) ----
#
# No GPU here: NVIDIA's nodes are made with mknod (major 195, minors 0..3, nvidiactl 255) and
# the fake NVML describes four GPUs with those minors. An allowed node opens up to the missing
# driver (ENXIO); a node the engine's device cgroup denies gives EPERM. The daemon is the
# packaged one, under its own unit's device policy, which must let NVML open /dev/nvidiactl
# read-write (the fake does so in nvmlInit_v2(), as libnvidia-ml does).
readonly GPU_POOL=gpupool GPU_PORT=8083 GPU_UNIT=pool-engine-gpupool.service
readonly FAKE_NVML=/usr/local/lib/pool-managerd-test/libfake-nvml.so
readonly GPUS_JSON=/run/pool-managerd-test/gpus.json

gpu_uuid() { printf 'GPU-b007e57a-0000-4000-8000-00000000000%d' "$1"; }
# engine_open NODE: what the GPU pool's engine got opening /dev/NODE (its journal).
engine_open() { journalctl -q -o cat -u "$GPU_UNIT" | sed -n "s|^fake-engine: open /dev/$1: ||p" | tail -n 1; }
# prepared_gpu MASK: the preload body of the GPU pool, its engine reporting what it can open.
prepared_gpu() {
        printf '{"prepared": {"pool_id": "%s", "binary_path": "%s", "flags": ["--port", "%s", "--open-devices", "/dev"], "host": "127.0.0.1", "port": %s, "engine": "custom", "engine_version": "boot-test", "device_mask": "%s"}}' \
                "$GPU_POOL" "$ENGINE" "$GPU_PORT" "$GPU_PORT" "$1"
}

device_checks() {
        local out rc i made=() allowed denied

        # systemd itself first: a transient unit with DevicePolicy=closed + DeviceAllow=.
        rc=0
        out=$("$HERE/device-cgroup-check" --system 2>&1) || rc=$?
        sed 's/^/#   /' <<<"$out"
        check "device-cgroup-check --system: DeviceAllow=/dev/nvidia0 gives ENXIO on nvidia0, EPERM on nvidia1..3" \
                test "$rc" = 0

        for i in 0 1 2 3 ctl; do
                if [ "$i" = ctl ]; then mknod -m 0666 /dev/nvidiactl c 195 255; else mknod -m 0666 "/dev/nvidia$i" c 195 "$i"; fi
                made+=("/dev/nvidia$i")
        done
        mkdir -p "$(dirname "$GPUS_JSON")"
        {
                printf '{"control_node": "/dev/nvidiactl", "devices": ['
                for i in 0 1 2 3; do
                        [ "$i" = 0 ] || printf ','
                        printf '{"uuid": "%s", "name": "Boot Test GPU", "minor": %d, "memory_total": 25769803776}' "$(gpu_uuid "$i")" "$i"
                done
                printf ']}\n'
        } >"$GPUS_JSON"
        cp "$CONF" "$tmp/conf.orig"
        sed -i "/^\[Manager\]/a NvmlLibrary=$FAKE_NVML" "$CONF"
        mkdir -p /run/systemd/system/pool-managerd.service.d
        printf '[Service]\nEnvironment=FAKE_NVML_CONFIG=%s\n' "$GPUS_JSON" \
                >/run/systemd/system/pool-managerd.service.d/fake-nvml.conf
        systemctl daemon-reload
        run_check "systemctl restart pool-managerd, NvmlLibrary=the fake NVML (4 GPUs, /dev/nvidia0..3)" \
                systemctl restart pool-managerd.service
        check "the packaged unit's device policy lets NVML open /dev/nvidiactl read-write: GET /devices lists 4 GPUs" \
                bash -c '[ "$(curl_code GET /devices)" = 200 ] && [ "$(grep -o "\"uuid\"" "$tmp/body" | wc -l)" = 4 ]'
        grep -q '"uuid"' "$tmp/body" 2>/dev/null || echo "# GET /devices: $(body)"

        code=$(curl_code POST "/pools/$GPU_POOL/preload" "$(prepared_gpu 1,GPU3)")
        check "preload with device_mask \"1,GPU3\": $code" test "$code" = 200
        check "... the pool is ready" wait_for 30 pool_ready "$GPU_POOL"
        check "... its unit: DevicePolicy=closed, DeviceAllow= /dev/nvidia1 and /dev/nvidia3 only, of the GPUs" \
                bash -c 'a=$(unit_prop "$1" DeviceAllow); echo "# DeviceAllow=$a"
                       [ "$(unit_prop "$1" DevicePolicy)" = closed ] &&
                       [[ " $a " == *"/dev/nvidia1 rw"* && " $a " == *"/dev/nvidia3 rw"* ]] &&
                       [[ " $a " != *"/dev/nvidia0 "* && " $a " != *"/dev/nvidia2 "* && " $a " != *char-nvidia* ]]' sh "$GPU_UNIT"
        check "... CUDA_VISIBLE_DEVICES names the two GPUs by UUID, CUDA_DEVICE_ORDER=PCI_BUS_ID" \
                bash -c 'e=$(unit_prop "$1" Environment); echo "# Environment=$e"
                       [[ " $e " == *" CUDA_VISIBLE_DEVICES=$2,$3 "* && " $e " == *" CUDA_DEVICE_ORDER=PCI_BUS_ID "* ]]' \
                sh "$GPU_UNIT" "$(gpu_uuid 1)" "$(gpu_uuid 3)"
        wait_for 5 bash -c '[ -n "$(engine_open nvidia3)" ]' || true
        for i in 0 1 2 3 ctl; do echo "# engine: open /dev/nvidia$i: $(engine_open "nvidia$i")"; done
        allowed="No such device or address" denied="Operation not permitted"
        check "the engine opens its GPUs' nodes, nvidia1 and nvidia3, up to the missing driver (ENXIO)" \
                bash -c '[ "$(engine_open nvidia1)" = "$1" ] && [ "$(engine_open nvidia3)" = "$1" ]' sh "$allowed"
        check "the kernel refuses it the other GPUs, nvidia0 and nvidia2: EPERM from the device cgroup" \
                bash -c '[ "$(engine_open nvidia0)" = "$1" ] && [ "$(engine_open nvidia2)" = "$1" ]' sh "$denied"
        check "... and lets it open /dev/nvidiactl (ENXIO), which CUDA needs" \
                bash -c '[ "$(engine_open nvidiactl)" = "$1" ]' sh "$allowed"
        code=$(curl_code POST "/pools/$GPU_POOL/stop")
        check "stop the GPU pool: $code, its unit gone" \
                bash -c '[ "$1" = 200 ] && wait_for 30 bash -c "! systemctl is-active -q $2"' sh "$code" "$GPU_UNIT"

        # Back to the package's configuration, without a GPU.
        cp "$tmp/conf.orig" "$CONF"
        rm -rf /run/systemd/system/pool-managerd.service.d "$(dirname "$GPUS_JSON")"
        systemctl daemon-reload
        rm -f "${made[@]}"
        run_check "systemctl restart pool-managerd, the configuration as packaged" systemctl restart pool-managerd.service
        check "... $POOL still ready" wait_for 30 pool_ready "$POOL"
}

phase_install() {
        local deb answer pid t0

        # ---- the package, installed as a user would (no network: the dependencies are there) ----

        deb=$(ls "$HERE"/pool-managerd_*.deb)
        echo "# apt install $deb"
        t0=$SECONDS
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$tmp/apt.log" 2>&1; then
                ok "apt install ./$(basename "$deb") ($((SECONDS - t0)) s)"
        else
                not_ok "apt install ./$(basename "$deb")"
                tail -n 30 "$tmp/apt.log" | sed 's/^/#   /'
                return
        fi
        check "dpkg: pool-managerd is installed" \
                bash -c '[ "$(dpkg-query -W -f="\${Status}" pool-managerd)" = "install ok installed" ]'
        check "the daemon and poolctl are in /usr/sbin and /usr/bin" test -x /usr/sbin/pool-managerd -a -x /usr/bin/poolctl
        check "units in /lib/systemd/system: pool-managerd.service, .socket, pool-engines.slice" \
                test -f /lib/systemd/system/pool-managerd.service -a -f /lib/systemd/system/pool-managerd.socket \
                        -a -f /lib/systemd/system/pool-engines.slice
        check "the unit runs /usr/sbin/pool-managerd" \
                bash -c 'systemctl show -P ExecStart pool-managerd.service | grep -q "path=/usr/sbin/pool-managerd "'
        check "bus policy and activation file where the system bus reads them" \
                test -f "/usr/share/dbus-1/system.d/$BUS.conf" -a -f "/usr/share/dbus-1/system-services/$BUS.service"
        check "man pages pool-managerd(8), poolctl(1), pool-managerd.conf(5), $BUS(5)" \
                test -f /usr/share/man/man8/pool-managerd.8.gz -a -f /usr/share/man/man1/poolctl.1.gz \
                        -a -f /usr/share/man/man5/pool-managerd.conf.5.gz -a -f "/usr/share/man/man5/$BUS.5.gz"
        check "$CONF is a conffile" \
                bash -c 'dpkg-query -W -f="\${Conffiles}" pool-managerd | grep -q "^ $1 "' sh "$CONF"
        check "the configuration is commented out but for EngineUser=pool-engine" \
                bash -c '[ "$(grep -v "^#\|^\[\|^$" "$1")" = "EngineUser=pool-engine" ]' sh "$CONF"
        check "/etc/pool-managerd/pools.d exists, empty" \
                bash -c '[ -d /etc/pool-managerd/pools.d ] && [ -z "$(ls -A /etc/pool-managerd/pools.d)" ]'
        check "systemd-sysusers ran: group pool-managerd and user pool-engine exist, pool-engine is not root" \
                bash -c 'getent group pool-managerd >/dev/null && [ "$(id -u pool-engine)" -gt 0 ]'
        check "systemd-tmpfiles ran: /var/lib/pool-engine belongs to pool-engine" \
                bash -c '[ "$(stat -c %U /var/lib/pool-engine)" = pool-engine ]'
        check "bash completion: bash-completion loads poolctl's, which offers the commands" \
                bash -c '[ "$(complete_line "poolctl st")" = "status stop" ]'

        # ---- socket activation ----

        check "pool-managerd.socket is enabled and listening" \
                bash -c 'systemctl is-enabled -q pool-managerd.socket && systemctl is-active -q pool-managerd.socket'
        check "the socket (PID 1) holds 127.0.0.1:9200" socket_holds_port
        check "pool-managerd.service is not enabled and does not run yet" \
                bash -c '! systemctl is-enabled -q pool-managerd.service && service_inactive'
        # No GPU here: an administrator sets GpuOnly=no in a drop-in, leaving the conffile alone.
        mkdir -p /etc/pool-managerd/pool-managerd.conf.d
        printf '# Written by tests/boot/package-checks.sh: no GPU here.\n[Manager]\nGpuOnly=no\n' \
                >/etc/pool-managerd/pool-managerd.conf.d/50-boot-test.conf
        code=$(curl_code GET /health)
        check "the first HTTP request (GET /health) is answered 200" test "$code" = 200
        check "... and started pool-managerd.service (socket activation)" systemctl is-active -q pool-managerd.service
        check "the daemon logged that the socket was passed by systemd" daemon_logged "socket passed by systemd"

        # ---- the system bus ----

        useradd --system --no-create-home --groups pool-managerd boot-member
        useradd --system --no-create-home boot-outsider
        run_check "busctl --system introspect $BUS $OBJ, as a user outside group pool-managerd" \
                bash -c 'runuser -u boot-outsider -- busctl --system introspect "$1" "$2" | grep -q "^$3 *interface"' \
                sh "$BUS" "$OBJ" "$IFACE"
        answer=$(bus_call_as boot-outsider Preload "string:$(prepared_engine "$POOL" "$PORT")")
        echo "# boot-outsider, Preload: $answer"
        check "a user outside group pool-managerd gets AccessDenied on Preload" refused_by_bus "$answer"
        answer=$(bus_call_as boot-member ReloadConfiguration)
        check "ReloadConfiguration is root's alone: a member of pool-managerd is refused" refused_by_bus "$answer"
        answer=$(bus_call_as boot-member Preload "string:$(prepared_engine "$POOL" "$PORT")")
        echo "# boot-member, Preload: $answer"
        check "a member of pool-managerd preloads pool $POOL over the system bus" test "$answer" = ok

        # ---- the engine, as systemd shows it ----

        check "pool $POOL is ready" pool_ready "$POOL"
        pid=$(json_field pid)
        echo "# engine pid ${pid:-?}"
        check "systemctl status $UNIT: active (running), Main PID $pid" \
                bash -c 'systemctl status --no-pager "$1" >"$3" 2>&1; grep -q "Active: active (running)" "$3" &&
                       grep -q "Main PID: $2 " "$3"' sh "$UNIT" "${pid:-x}" "$tmp/status"
        check "journalctl -u $UNIT: the engine's own lines" \
                wait_for 5 bash -c 'journalctl -q -o cat -u "$1" | grep -q "^fake-engine: pid $2 listening on "' \
                sh "$UNIT" "${pid:-x}"
        check "journalctl POOL_ID=$POOL: the engine's lines (LogExtraFields=) and the daemon's" \
                wait_for 5 bash -c 'j=$(journalctl -q -o cat POOL_ID="$1"); grep -q "^fake-engine: pid $2 listening on " <<<"$j" &&
                       grep -q "^Pool \"$1\" is ready" <<<"$j"' sh "$POOL" "${pid:-x}"
        check "poolctl list: $POOL ready" bash -c 'poolctl --no-legend list | grep -q "^$1 *ready "' sh "$POOL"
        check "bash completion offers the running pool's ID: poolctl status b<Tab>" \
                bash -c '[ "$(complete_line "poolctl status b")" = "$1" ]' sh "$POOL"

        # ---- B-SEC: the engine's user and sandbox (EngineSandbox=full, the default) ----

        check "the engine runs as EngineUser=pool-engine, not root" \
                bash -c '[ "$(unit_prop "$1" User)" = pool-engine ] && runs_as pool-engine "$2" &&
                       [ "$(stat -c %u "/proc/$2")" != 0 ]' sh "$UNIT" "${pid:-0}"
        check "EngineSandbox=full under the system manager: ProtectKernelTunables/Logs/ControlGroups" \
                bash -c 'for p in ProtectKernelTunables ProtectKernelLogs ProtectControlGroups ProtectKernelModules; do
                               [ "$(unit_prop "$1" $p)" = yes ] || exit 1; done' sh "$UNIT"
        check "... /proc/sys is read-only to the engine" read_only "${pid:-0}" /proc/sys
        check "no capabilities: CapabilityBoundingSet= empty; CapBnd, CapEff 0" \
                bash -c '[ -z "$(unit_prop "$1" CapabilityBoundingSet)" ] &&
                       [ "$(proc_status "$2" CapBnd)" = 0000000000000000 ] &&
                       [ "$(proc_status "$2" CapEff)" = 0000000000000000 ]' sh "$UNIT" "${pid:-0}"
        check "NoNewPrivileges=yes; NoNewPrivs 1" \
                bash -c '[ "$(unit_prop "$1" NoNewPrivileges)" = yes ] && [ "$(proc_status "$2" NoNewPrivs)" = 1 ]' \
                sh "$UNIT" "${pid:-0}"
        check "SystemCallFilter=@system-service (read, not mount, modify_ldt), errors EPERM; Seccomp 2" \
                bash -c 'f=" $(unit_prop "$1" SystemCallFilter) "
                       [[ $f == *" read "* && $f == *" execve "* && $f != *" mount "* && $f != *" modify_ldt "* ]] &&
                       [[ $(unit_prop "$1" SystemCallErrorNumber) =~ ^(1|EPERM)$ ]] &&
                       [ "$(unit_prop "$1" SystemCallArchitectures)" = native ] &&
                       [ "$(proc_status "$2" Seccomp)" = 2 ]' sh "$UNIT" "${pid:-0}"
        check "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
                bash -c '[ "$(words "$(unit_prop "$1" RestrictAddressFamilies)")" = "AF_INET AF_INET6 AF_UNIX" ]' sh "$UNIT"
        check "PrivateTmp=yes: the engine's /tmp is a private directory" \
                bash -c '[ "$(unit_prop "$1" PrivateTmp)" = yes ] &&
                       awk "\$5 == \"/tmp\" { print \$4 }" "/proc/$2/mountinfo" | grep -q "/systemd-private-.*-$1-.*/tmp$"' \
                sh "$UNIT" "${pid:-0}"
        check "its own working directory /run/pool-engines/$POOL, 0700, pool-engine's" \
                bash -c '[ "$(unit_prop "$1" WorkingDirectory)" = "/run/pool-engines/$3" ] &&
                       [ "$(readlink "/proc/$2/cwd")" = "/run/pool-engines/$3" ] &&
                       [ "$(stat -c "%a %U" "/run/pool-engines/$3")" = "700 pool-engine" ]' sh "$UNIT" "${pid:-0}" "$POOL"
        check "ProtectSystem=full: /usr and /etc are read-only to the engine" \
                bash -c '[ "$(unit_prop "$1" ProtectSystem)" = full ] &&
                       read_only "$2" /usr && read_only "$2" /etc' sh "$UNIT" "${pid:-0}"

        # ---- the daemon's life: reload, restart, stop ----

        pid=$(unit_prop pool-managerd.service MainPID)
        run_check "systemctl reload pool-managerd (no procps here)" systemctl reload pool-managerd.service
        check "reload kept the daemon running (same MainPID)" test "$(unit_prop pool-managerd.service MainPID)" = "$pid"

        pid=$(unit_prop "$UNIT" MainPID)
        run_check "systemctl restart pool-managerd" systemctl restart pool-managerd.service
        check "... re-adopts the engine: $POOL ready, same MainPID $pid" \
                bash -c 'pool_ready "$1" && [ "$(json_field pid)" = "$2" ] && [ "$(unit_prop "$3" MainPID)" = "$2" ]' \
                sh "$POOL" "$pid" "$UNIT"
        stop_daemon
        check "systemctl stop pool-managerd leaves the engine running (same MainPID)" \
                bash -c 'service_inactive && systemctl is-active -q "$1" && [ "$(unit_prop "$1" MainPID)" = "$2" ]' \
                sh "$UNIT" "$pid"

        # ---- ROUNDS times: socket activation with a running pool (issue 18) ----

        for round in $(seq "$ROUNDS"); do
                stop_daemon
                if ! systemctl is-active -q "$UNIT" || [ "$(unit_prop "$UNIT" MainPID)" != "$pid" ]; then
                        not_ok "round $round: the engine survived systemctl stop pool-managerd.service"
                        continue
                fi
                if pool_ready "$POOL" && [ "$(json_field pid)" = "$pid" ]; then
                        ok "round $round: socket-activating GET /pools/$POOL/status: 200, ready, pid $pid"
                else
                        not_ok "round $round: socket-activating GET /pools/$POOL/status: 200, ready, pid $pid; got $(body)"
                fi
                stop_daemon
                code=$(curl_code POST "/pools/$POOL/preload" "$(prepared "$POOL" "$PORT")")
                answer="$code: $(body)"
                if [ "$code" = 409 ] && pool_ready "$POOL" && [ "$(json_field pid)" = "$pid" ] &&
                   [ "$(unit_prop "$UNIT" MainPID)" = "$pid" ]; then
                        ok "round $round: socket-activating preload of the running pool: 409, still ready and tracked"
                else
                        not_ok "round $round: socket-activating preload of the running pool: 409, still ready and tracked; got $answer, then $(body)"
                fi
        done

        device_checks

        # For the next boot: a pool described in pools.d, preloaded when the daemon starts.
        prepared_engine "$DIR_POOL" "$DIR_PORT" >"/etc/pool-managerd/pools.d/$DIR_POOL.json"
}

phase_reboot() {
        local pid

        check "after the reboot: pool-managerd.socket listens, held by PID 1" \
                bash -c 'systemctl is-active -q pool-managerd.socket && socket_holds_port'
        check "... and pool-managerd.service does not run yet" service_inactive
        check "... nor do the engines" bash -c '! systemctl is-active -q "$1" "$2"' sh "$UNIT" "$DIR_UNIT"
        code=$(curl_code GET "/pools/$POOL/status")
        check "the first HTTP request (GET /pools/$POOL/status) starts the daemon, which knows the pool: $code" \
                bash -c '[ "$1" = 200 ] && systemctl is-active -q pool-managerd.service' sh "$code"
        check "the pool that ran before the reboot is back, and the pool in pools.d is preloaded (both ready)" \
                wait_for 30 both_pools_ready
        for p in "$POOL" "$DIR_POOL"; do
                pid=$(engine_pid "$p")
                check "the engine of $p runs as pool-engine (pid ${pid:-?})" runs_as pool-engine "${pid:-0}"
        done
        run_check "systemctl enable pool-managerd.service (to start it at boot)" \
                systemctl enable -q pool-managerd.service
}

phase_enabled() {
        check "after a reboot with pool-managerd.service enabled: the daemon started at boot, no request made" \
                wait_for 30 systemctl is-active -q pool-managerd.service
        check "... and started both engines" wait_for 30 both_engines_active
        check "both pools are ready" wait_for 30 both_pools_ready

        # ---- remove, then purge ----

        run_check "apt remove pool-managerd" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q pool-managerd
        check "remove stopped the daemon and its socket; nothing listens on 9200" \
                bash -c 'service_inactive && ! systemctl is-active -q pool-managerd.socket &&
                       ! ss -Hltn "sport = :9200" | grep -q .'
        check "remove stopped the engines" bash -c '! systemctl is-active -q "$1" "$2"' sh "$UNIT" "$DIR_UNIT"
        check "remove kept the state and the configuration" \
                test -f "/var/lib/pool-managerd/pools/$POOL.json" -a -f "$CONF"
        run_check "apt purge pool-managerd" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q pool-managerd
        check "purge removed /var/lib/pool-managerd, /run/pool-managerd, /run/pool-engines, /var/lib/pool-engine" \
                bash -c '! ls -d /var/lib/pool-managerd /run/pool-managerd /run/pool-engines /var/lib/pool-engine 2>/dev/null'
        check "purge removed the conffile, left the administrator's pools.d file" \
                test ! -e "$CONF" -a -f "/etc/pool-managerd/pools.d/$DIR_POOL.json"
        check "dpkg: pool-managerd is not installed any more" \
                bash -c '! dpkg-query -W -f="\${Status}" pool-managerd 2>/dev/null | grep -q installed'
}

# Functions the checks run in a child shell (sh -c cannot see them otherwise).
export -f engine_open wait_for unit_prop proc_status mount_opts read_only words runs_as service_inactive socket_holds_port \
        complete_line pool_ready curl_code json_field
export tmp API GPU_UNIT

case $PHASE in
install) phase_install ;;
reboot) phase_reboot ;;
enabled) phase_enabled ;;
*) echo "Unknown phase $PHASE" >&2; exit 2 ;;
esac
tap_end
