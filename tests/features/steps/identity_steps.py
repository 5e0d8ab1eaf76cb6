# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: other processes on an engine's port (a plain listener, a second SO_REUSEPORT engine),
# and pools preloaded on a port chosen beforehand. The strays are transient units of their own
# (stray-<pool>.service), stopped after the scenario.

import os
import sys

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
from pools import dbus_preload, http_preload, new_run  # noqa: E402

PLAIN_LISTENER = ("import socket, sys, time\n"
                  "s = socket.socket()\n"
                  "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
                  "s.listen()\n"
                  "print('listening', flush=True)\n"
                  "time.sleep(600)\n")


def stray_unit(pool):
    return f"stray-{pool}.service"


def start_stray(context, pool, argv):
    unit = stray_unit(pool)
    r = harness.run("systemd-run", "--user", "--quiet", f"--unit={unit}", "--collect", *argv)
    assert r.returncode == 0, r.stderr
    context.s.extra_units.append(unit)
    port = context.s.run_of(pool).port
    assert harness.wait_for(lambda: listening(port), timeout=5), f"{unit} does not listen on {port}"


def listening(port):
    with open("/proc/net/tcp") as f:
        return any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A" for line in f.readlines()[1:])


@step('pool "{pool}" is to use a port where {what} listens')
def step_port_taken(context, pool, what):
    run = new_run(context, pool, "--reuseport")
    if what == "a plain process":
        start_stray(context, pool, ["python3", "-c", PLAIN_LISTENER, str(run.port)])
    elif what == "another engine with SO_REUSEPORT":
        start_stray(context, pool, [harness.FAKE_ENGINE, "--port", str(run.port), "--reuseport"])
    else:
        raise NotImplementedError(what)


@step('pool "{pool}" is preloaded over HTTP on that port')
def step_preload_prepared(context, pool):
    context.s.response = http_preload(context, context.s.run_of(pool))


@step('pool "{pool}" is preloaded over D-Bus on that port')
def step_preload_prepared_dbus(context, pool):
    dbus_preload(context, context.s.run_of(pool))


@step('another engine with SO_REUSEPORT starts listening on the port of pool "{pool}"')
def step_stray_after(context, pool):
    start_stray(context, pool, [harness.FAKE_ENGINE, "--port", str(context.s.run_of(pool).port), "--reuseport"])


@step('the stray on the port of pool "{pool}" goes away')
def step_stray_gone(context, pool):
    unit = stray_unit(pool)
    harness.run("systemctl", "--user", "stop", unit)
    port = context.s.run_of(pool).port
    # The engine itself still listens: wait until only one listener is left.
    def one_left():
        with open("/proc/net/tcp") as f:
            return sum(1 for line in f.readlines()[1:]
                       if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A") == 1
    assert harness.wait_for(one_left, timeout=5)


@step('the response error names the stray process "{comm}" and its PID')
def step_error_names_stray(context, comm):
    r = context.s.response
    pid = int(harness.run("systemctl", "--user", "show", "-P", "MainPID",
                          stray_unit(context.s.last_pool)).stdout.strip() or 0)
    assert pid > 0, "the stray is not running"
    assert f"held by PID {pid} ({comm})" in r.json["error"], (pid, r.json)
    assert f"in unit {stray_unit(context.s.last_pool)}" in r.json["error"], r.json


@step('the engine of pool "{pool}" gets SIGTERM from outside')
def step_sigterm_outside(context, pool):
    pid = context.h.daemon.status(pool)["pid"]
    assert pid, context.h.daemon.status(pool)
    os.kill(pid, 15)


def memory_controller_on_cgroup2():
    """Whether the user manager can give its units a memory controller on cgroup2: it is listed in
    cgroup.controllers of the cgroup this process (in the sandbox's scope) runs in."""
    try:
        with open("/proc/self/cgroup") as f:
            path = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")), None)
    except OSError:
        return False
    if not path:
        return False
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        try:
            with open(os.path.join(root + path, "cgroup.controllers")) as f:
                return "memory" in f.read().split()
        except OSError:
            continue
    return False


@step('the engines\' slice may use at most {limit}, where the sandbox\'s cgroups enforce it')
def step_slice_memory_max(context, limit):
    if not memory_controller_on_cgroup2():
        context.scenario.skip("MemoryMax= is not enforced here: this host keeps the memory controller on "
                              "cgroup v1 (hybrid hierarchy), so the OOM killer cannot be driven by a unit "
                              "limit; Result=oom-kill -> out_of_memory is unit-tested in test-supervision")
        return
    # The slice must exist for set-property --runtime: it does once it is started.
    harness.run("systemctl", "--user", "start", "pool-engines.slice")
    r = harness.run("systemctl", "--user", "set-property", "--runtime", "pool-engines.slice", f"MemoryMax={limit}")
    assert r.returncode == 0, r.stderr
    context.s.extra_cleanup = lambda: harness.run("systemctl", "--user", "set-property", "--runtime",
                                                  "pool-engines.slice", "MemoryMax=infinity")
