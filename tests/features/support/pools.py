# SPDX-License-Identifier: GPL-3.0-or-later
#
# Preloads with tests/fake-engine as the engine, shared by the step modules.

import json
import shlex
import time

import harness
from checks import ABSENT, prepared_value


def new_run(context, pool, flags="", rows=(), arguments=()):
    """A PreparedEngine for the fake engine: its port, a probe log and a ready log in the
    scenario directory (which the engine can see: not under /tmp), then the scenario's flags."""
    port = harness.free_port()
    probe_log = context.s.path(f"{pool}.{port}.probes")
    ready_log = context.s.path(f"{pool}.{port}.ready")
    engine_flags = ["--port", str(port), f"--probe-log={probe_log}", f"--ready-log={ready_log}"]
    engine_flags += shlex.split(flags or "") + list(arguments)
    prepared = {"binary_path": harness.FAKE_ENGINE, "flags": engine_flags, "port": port, "pool_id": pool}
    for field, value in rows:
        v = prepared_value(context, field, value)
        if v is ABSENT:
            prepared.pop(field, None)
        else:
            prepared[field] = v
    run = harness.PoolRun(pool, prepared, probe_log, ready_log)
    context.s.runs[pool] = run
    context.s.last_pool = pool
    return run


def http_preload(context, run):
    d = context.h.daemon
    run.sent_at = time.time()
    run.response = d.request("POST", f"/pools/{run.pool}/preload", {"prepared": run.prepared}, timeout=180)
    if run.response.status == 200:
        run.pid = run.response.json.get("pid")
    return run.response


def dbus_preload(context, run):
    run.sent_at = time.time()
    run.dbus = context.h.bus.manager_call("Preload", json.dumps(run.prepared), timeout=180)
    if not run.dbus.error_name:
        run.pid = run.dbus.value[1]
    context.s.dbus = run.dbus
    return run.dbus


def table_rows(context):
    if not context.table:
        return []
    return [(row["field"], row["value"]) for row in context.table]


def engine_pid(context, pool):
    """The engine's pid: from the preload's answer, else the registry, else what the engine
    itself wrote when it started listening (journal or log file)."""
    run = context.s.run_of(pool)
    if run.pid:
        return run.pid
    s = context.h.daemon.status(pool)
    if s and s.get("pid"):
        return s["pid"]
    line = f" listening on 127.0.0.1:{run.port}"
    texts = [harness.journal_text(f"_SYSTEMD_USER_UNIT={harness.engine_unit(pool)}")]
    try:
        texts.append(open(context.h.daemon.log_file(pool)).read())
    except FileNotFoundError:
        pass
    for text in texts:
        for l in text.splitlines():
            if l.startswith("fake-engine: pid ") and l.endswith(line):
                return int(l.split()[2])
    raise AssertionError(f"the pid of the engine of pool {pool} is not known")


def engine_journal(context, pool):
    """The engine's lines: under its unit, and by pid for the last lines of an engine that has
    exited (journald may not attribute those to the unit; see tests/sandbox)."""
    unit = harness.engine_unit(pool)
    text = harness.journal_text(f"_SYSTEMD_USER_UNIT={unit}")
    try:
        pid = engine_pid(context, pool)
        text += harness.journal_text(f"_PID={pid}")
    except AssertionError:
        pass
    return text
