# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: preloading pools with tests/fake-engine, and what the engine saw (its probes, its
# command line, its process) and logged.

import http.client
import os
import re
import socket
import sys
import threading
import time

from behave import step, use_step_matcher

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
from pools import dbus_preload, engine_journal, engine_pid, http_preload, new_run, table_rows  # noqa: E402


use_step_matcher("re")


@step(r'pool "(?P<pool>[^"]+)" (?P<mode>is preloaded|starts preloading) over (?P<iface>HTTP|D-Bus)'
      r'(?P<again> again)?(?: with engine flags "(?P<flags>[^"]*)")?'
      r'(?P<tail> and| and the arguments| with| with only the required fields)?')
def step_preload(context, pool, mode, iface, again, flags, tail):
    tail = (tail or "").strip()
    if again:
        assert pool in context.s.runs or context.h.daemon.status(pool), f"pool {pool} was never preloaded"
    rows = table_rows(context) if tail in ("and", "with") else []
    arguments = [row["argument"] for row in context.table] if tail == "and the arguments" else []
    run = new_run(context, pool, flags, rows, arguments)
    if tail == "with only the required fields":
        # binary_path, port, pool_id, and flags: the fake engine must be told its port.
        run.prepared = {k: run.prepared[k] for k in ("binary_path", "port", "pool_id", "flags")}
    if mode == "starts preloading":
        assert iface == "HTTP"
        run.thread = threading.Thread(target=http_preload, args=(context, run), daemon=True)
        run.thread.start()
        # The preload has begun once the pool is in the registry.
        assert harness.wait_for(lambda: context.h.daemon.status(pool) is not None, timeout=5), \
            f"pool {pool} did not appear"
        return
    if iface == "HTTP":
        context.s.response = http_preload(context, run)
    else:
        dbus_preload(context, run)


@step(r'a ready pool "(?P<pool>[^"]+)"(?: with engine flags "(?P<flags>[^"]*)")?(?P<tail> with| that was stopped)?')
def step_ready_pool(context, pool, flags, tail):
    tail = (tail or "").strip()
    run = new_run(context, pool, flags, table_rows(context) if tail == "with" else [])
    r = http_preload(context, run)
    assert r.status == 200, r
    s = context.h.daemon.status(pool)
    assert s["state"] == "ready" and s["ready"] is True, s
    if tail == "that was stopped":
        r = context.h.daemon.request("POST", f"/pools/{pool}/stop")
        assert r.status == 200, r
        assert context.h.daemon.status(pool)["state"] == "stopped"


@step(r'the engine log file of pool "(?P<pool>[^"]+)" holds (?P<items>(?:"[^"]*"(?:, )?)+) in this order')
def step_log_order(context, pool, items):
    wanted = re.findall(r'"([^"]*)"', items)
    path = context.h.daemon.log_file(pool)

    def ordered():
        try:
            lines = open(path).read().splitlines()
        except FileNotFoundError:
            return False
        positions = []
        for w in wanted:
            if w not in lines:
                return False
            positions.append(lines.index(w))
        return positions == sorted(positions)
    assert harness.wait_for(ordered, timeout=5), open(path).read()


use_step_matcher("parse")


@step('pool "{pool}" failed to preload with an engine that exits with status {code:d}')
def step_failed_preload(context, pool, code):
    run = new_run(context, pool, f"--ready-after=5000 --exit-after=200 --exit-code={code}")
    r = http_preload(context, run)
    assert r.status == 502 and r.json["code"] == "ENGINE_FAILED", r
    assert context.h.daemon.status(pool)["state"] == "failed"


@step('the preload of pool "{pool}" answers {code:d}')
def step_preload_answers(context, pool, code):
    run = context.s.run_of(pool)
    run.thread.join(60)
    assert not run.thread.is_alive(), "no answer within 60 s"
    assert run.response.status == code, run.response
    context.s.response = run.response


@step('the preload of pool "{pool}" has not been answered yet')
def step_preload_pending(context, pool):
    run = context.s.run_of(pool)
    assert run.thread.is_alive(), run.response


@step('the response came after the engine of pool "{pool}" turned healthy')
def step_after_healthy(context, pool):
    run = context.s.run_of(pool)
    ready = run.ready_at()
    assert ready is not None, "the engine never turned healthy"
    assert run.response.answered_at >= ready, (run.response.answered_at, ready)
    assert run.response.elapsed >= 0.4, f"answered after {run.response.elapsed:.3f} s"


# ---- probes ----

@step('the engine of pool "{pool}" received at least {n:d} probes')
def step_probes_at_least(context, pool, n):
    probes = context.s.run_of(pool).probes()
    assert len(probes) >= n, probes


@step('the engine of pool "{pool}" answered its probes 503 until it answered 200 once')
def step_probes_503_then_200(context, pool):
    statuses = [p[2] for p in context.s.run_of(pool).probes()]
    assert statuses and statuses[-1] == 200 and set(statuses[:-1]) == {503}, statuses


@step('the engine of pool "{pool}" received exactly one answer 200')
def step_one_200(context, pool):
    statuses = [p[2] for p in context.s.run_of(pool).probes()]
    assert statuses.count(200) == 1 and statuses[-1] == 200, statuses


@step('after {t:g} seconds the engine of pool "{pool}" has received no further probe')
def step_no_more_probes(context, t, pool):
    run = context.s.run_of(pool)
    before = run.probes()
    time.sleep(t)
    assert run.probes() == before, run.probes()


@step('the engine of pool "{pool}" was probed every {ms:d} ms')
def step_probe_interval(context, pool, ms):
    """The grid: a probe at once, then one every ms ms, none missing until the 200. Probes
    triggered by the engine's journal lines come on top of it, between the slots."""
    probes = context.s.run_of(pool).probes()
    assert len(probes) >= 3, probes
    tolerance = max(ms * 0.3, 15)

    def on_grid(t0):
        return [p for p in probes if p[1] >= t0 and abs((p[1] - t0) - round((p[1] - t0) / ms) * ms) <= tolerance]
    # The grid's origin is the daemon's first attempt, which the engine may not have seen (it
    # was not listening yet), and its first logged probe may be a triggered one: the origin is
    # the probe that puts the most probes on a grid from it.
    t0 = max((p[1] for p in probes[:3]), key=lambda t: (len(on_grid(t)), -t))
    grid = on_grid(t0)
    slots = sorted({round((p[1] - t0) / ms) for p in grid})
    # Every slot before the last probe had its probe (the 200 may come between two slots).
    last = round((probes[-1][1] - t0) / ms)
    assert last >= 2 and set(range(last)) <= set(slots), f"grid slots {slots} of probes {probes}"
    one_per_slot = [min((p for p in grid if round((p[1] - t0) / ms) == k), key=lambda p: p[1]) for k in slots]
    gaps = [b[1] - a[1] for a, b in zip(one_per_slot, one_per_slot[1:])]
    mean = sum(gaps) / len(gaps)
    assert abs(mean - ms) <= ms * 0.1, f"mean gap {mean:.1f} ms: {gaps}"
    assert all(abs(g - ms) <= tolerance for g in gaps), f"gaps {gaps}"


@step('the engine of pool "{pool}" answered 200 within {ms:d} ms of turning ready')
def step_answered_soon(context, pool, ms):
    run = context.s.run_of(pool)
    ready = run.ready_at()
    first_200 = next((p for p in run.probes() if p[2] == 200), None)
    assert ready is not None and first_200 is not None, (ready, run.probes())
    lag_ms = first_200[0] - ready * 1000
    assert -5 <= lag_ms <= ms, f"200 answered {lag_ms:.0f} ms after the engine turned ready: {run.probes()}"


@step('the engine of pool "{pool}" answers in HTTP/{version}')
def step_http_version(context, pool, version):
    run = context.s.run_of(pool)
    conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
    try:
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
    finally:
        conn.close()
    assert r.status == 200, r.status
    assert r.version == {"1.0": 10, "1.1": 11}[version], r.version


@step('nothing listens on the port of pool "{pool}"')
def step_nothing_listens(context, pool):
    port = context.s.run_of(pool).port
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"something listens on {port}"


# ---- the engine process ----

@step('the engine process of pool "{pool}" executes the fake engine binary')
def step_exe(context, pool):
    pid = engine_pid(context, pool)
    assert os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(context.s.run_of(pool).prepared["binary_path"])


@step('the engine process of pool "{pool}" is gone')
def step_process_gone(context, pool):
    pid = engine_pid(context, pool)
    assert harness.wait_for(lambda: not harness.process_alive(pid), timeout=5), f"pid {pid} still runs"


@step('the process with the pid of pool "{pool}" is running the fake engine with the pool\'s port')
def step_process_port(context, pool):
    run = context.s.run_of(pool)
    argv = harness.process_cmdline(engine_pid(context, pool))
    assert argv[0] == harness.FAKE_ENGINE and argv[1:3] == ["--port", str(run.port)], argv


@step('the command line of the engine of pool "{pool}" is its binary_path followed by its flags')
def step_cmdline(context, pool):
    run = context.s.run_of(pool)
    argv = harness.process_cmdline(engine_pid(context, pool))
    assert argv == [run.prepared["binary_path"]] + run.prepared["flags"], argv


@step('the engine of pool "{pool}" received "{arg}" as one argument')
def step_one_argument(context, pool, arg):
    assert arg in harness.process_cmdline(engine_pid(context, pool))


# ---- journal ----

@step('the journal of the engine of pool "{pool}" has the line "{text}"')
def step_engine_journal_line(context, pool, text):
    found = harness.wait_for(lambda: text in engine_journal(context, pool).splitlines(), timeout=5)
    assert found, engine_journal(context, pool)


@step('the journal entries of the engine of pool "{pool}" carry SYSLOG_IDENTIFIER "{ident}"')
def step_syslog_identifier(context, pool, ident):
    pid = str(engine_pid(context, pool))
    entries = [e for e in harness.journal_json(f"_SYSTEMD_USER_UNIT={harness.engine_unit(pool)}")
               if e.get("_PID") == pid]
    assert entries and all(e.get("SYSLOG_IDENTIFIER") == ident for e in entries), \
        [(e.get("SYSLOG_IDENTIFIER"), e.get("MESSAGE")) for e in entries]
