# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: draining and reloading pools, over HTTP and D-Bus. Both answer only when they are over,
# so a scenario that looks at the pool meanwhile starts them in the background and collects
# the answer later.

import http.client
import json
import os
import sys
import time

import dbus
from behave import step, use_step_matcher

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
import observe  # noqa: E402
from checks import matches  # noqa: E402
from pools import new_run, table_rows  # noqa: E402


def engine_health(port):
    try:
        return harness.http_request(port, "GET", "/health", timeout=5).status
    except (OSError, http.client.HTTPException) as e:
        return f"no answer ({e})"


# ---- drain ----

def drain_request(context, pool, ms):
    return lambda: observe.daemon(context).request("POST", f"/pools/{pool}/drain", {"deadline_ms": ms})


@step('I drain pool "{pool}" over HTTP with a deadline of {ms:d} ms')
def step_drain(context, pool, ms):
    context.s.response = drain_request(context, pool, ms)()


@step('I start draining pool "{pool}" over HTTP with a deadline of {ms:d} ms')
def step_start_drain(context, pool, ms):
    observe.start_pending(context, f"drain:{pool}", f"drain of {pool}", drain_request(context, pool, ms))
    # The drain has begun once the pool says so.
    assert harness.wait_for(lambda: (observe.daemon(context).status(pool) or {}).get("draining"), timeout=5), \
        observe.daemon(context).status(pool)


@step('the drain of pool "{pool}" answers within {t:g} seconds')
def step_drain_answers(context, pool, t):
    context.s.response = observe.pending(context, f"drain:{pool}").wait(t)


@step('after {t:g} seconds the drain of pool "{pool}" has not been answered yet')
def step_drain_pending(context, t, pool):
    time.sleep(t)
    p = observe.pending(context, f"drain:{pool}")
    assert not p.answered(), p.result


def dbus_drain(context, path, iface, args):
    t0 = time.monotonic()
    context.s.dbus = context.h.bus.call(path, iface, "Drain", *args)
    context.s.dbus.elapsed = time.monotonic() - t0


@step('I call Drain("{pool}", {ms:d}) on the manager over D-Bus')
def step_dbus_drain(context, pool, ms):
    dbus_drain(context, harness.MANAGER_PATH, harness.MANAGER_IFACE, (pool, dbus.UInt64(ms)))


@step('I call Drain({ms:d}) on the object of pool "{pool}" over D-Bus')
def step_dbus_pool_drain(context, ms, pool):
    dbus_drain(context, context.h.bus.pool_path(pool), harness.POOL_IFACE, (dbus.UInt64(ms),))


@step('the Drain reply says force_stopped {forced}, final_lease_count {n:d} and a duration between {lo:d} and {hi:d} ms')
def step_drain_reply(context, forced, n, lo, hi):
    r = context.s.dbus
    assert r is not None and r.error_name is None, r
    force_stopped, duration, final = r.value
    assert force_stopped is {"true": True, "false": False}[forced] and final == n, r
    assert lo <= duration <= hi, f"duration_ms {duration}"


@step("the D-Bus call took less than {t:g} seconds")
def step_dbus_took(context, t):
    assert context.s.dbus.elapsed < t, f"took {context.s.dbus.elapsed:.3f} s"


@step('the response field "{field}" lies between {lo:d} and {hi:d}')
def step_field_between(context, field, lo, hi):
    r = context.s.response
    assert r is not None and isinstance(r.json, dict) and field in r.json, r
    assert lo <= r.json[field] <= hi, f"{field} = {r.json[field]}"


@step('the daemon\'s journal records the drain of pool "{pool}" as the response says, at priority {prio:d}')
def step_drain_journal(context, pool, prio):
    body = context.s.response.json
    wanted = {"DURATION_MS": str(body["duration_ms"]), "FORCE_STOPPED": str(int(body["force_stopped"])),
              "FINAL_LEASE_COUNT": str(body["final_lease_count"]), "PRIORITY": str(prio)}
    found = harness.wait_for(lambda: observe.entries_with(context, pool, wanted), timeout=5)
    assert found, [{k: e.get(k) for k in list(wanted) + ["MESSAGE"]} for e in observe.pool_entries(context, pool)]
    context.s.marks["drain_entry"] = found[-1]


@step('the drain entry says "{text}"')
def step_drain_entry_text(context, text):
    e = context.s.marks.get("drain_entry")
    assert e, "no drain entry was found"
    expected = text.replace("$DURATION_MS", e["DURATION_MS"]).replace('\\"', '"')
    assert e["MESSAGE"] == expected, e["MESSAGE"]


@step('the engine of pool "{pool}" answers GET /health with {code:d}')
def step_engine_health(context, pool, code):
    got = engine_health(context.s.run_of(pool).port)
    assert got == code, got


# ---- reload ----

use_step_matcher("re")

RELOAD = (r'pool "(?P<pool>[^"]+)" over (?P<iface>HTTP|D-Bus)(?: with engine flags "(?P<flags>[^"]*)")?'
          r'(?P<tail> and| with)?')


def new_engine(context, pool, flags, tail):
    """The PreparedEngine to reload with; the current run is kept as the previous one."""
    old = context.s.run_of(pool)
    if not hasattr(context.s, "previous"):
        context.s.previous = {}
    # The previous engine is the one serving now: a reload refused up front started nothing.
    s = observe.daemon(context).status(pool) or {}
    if s.get("url") == f"http://127.0.0.1:{old.port}" or pool not in context.s.previous:
        old.pid = int(harness.unit_property(harness.engine_unit(pool), "MainPID") or 0) or old.pid
        context.s.previous[pool] = old
    rows = table_rows(context) if (tail or "").strip() in ("and", "with") else []
    return new_run(context, pool, flags, rows)


def reload_request(context, run):
    def go():
        run.sent_at = time.time()
        run.response = observe.daemon(context).request("POST", f"/pools/{run.pool}/reload",
                                                      {"prepared": run.prepared}, timeout=120)
        return run.response
    return go


@step(r"I reload " + RELOAD)
def step_reload(context, pool, iface, flags, tail):
    run = new_engine(context, pool, flags, tail)
    if iface == "HTTP":
        context.s.response = reload_request(context, run)()
        return
    run.sent_at = time.time()
    context.s.dbus = context.h.bus.call(context.h.bus.pool_path(pool), harness.POOL_IFACE, "Reload",
                                        json.dumps(run.prepared), timeout=120)


@step(r"I start reloading " + RELOAD)
def step_start_reload(context, pool, iface, flags, tail):
    assert iface == "HTTP"
    run = new_engine(context, pool, flags, tail)
    observe.start_pending(context, f"reload:{pool}", f"reload of {pool}", reload_request(context, run))
    assert harness.wait_for(lambda: (observe.daemon(context).status(pool) or {}).get("draining"), timeout=5), \
        observe.daemon(context).status(pool)


use_step_matcher("parse")


@step('the reload of pool "{pool}" answers within {t:g} seconds')
def step_reload_answers(context, pool, t):
    context.s.response = observe.pending(context, f"reload:{pool}").wait(t)


@step('after {t:g} seconds the reload of pool "{pool}" has not been answered yet')
def step_reload_pending(context, t, pool):
    time.sleep(t)
    p = observe.pending(context, f"reload:{pool}")
    assert not p.answered(), p.result


def previous(context, pool):
    old = getattr(context.s, "previous", {}).get(pool)
    assert old, f"pool {pool} was not reloaded in this scenario"
    return old


@step('the previous engine process of pool "{pool}" is gone')
def step_previous_gone(context, pool):
    pid = previous(context, pool).pid
    assert pid and harness.wait_for(lambda: not harness.process_alive(pid), timeout=5), f"pid {pid} still runs"


@step('the previous engine of pool "{pool}" serves again on its port')
def step_previous_serves(context, pool):
    old = previous(context, pool)
    assert engine_health(old.port) == 200, engine_health(old.port)
    s = observe.daemon(context).status(pool)
    assert s["url"] == f"http://127.0.0.1:{old.port}" and s["ready"] is True, s
    argv = harness.process_cmdline(s["pid"])
    assert argv[1:] == old.prepared["flags"], argv


@step('the previous engine of pool "{pool}" still serves, as the same process')
def step_previous_same(context, pool):
    old = previous(context, pool)
    assert engine_health(old.port) == 200
    pid = int(harness.unit_property(harness.engine_unit(pool), "MainPID") or 0)
    assert pid == old.pid and harness.process_alive(pid), (pid, old.pid)


@step('nothing listens on the port of the new engine of pool "{pool}"')
def step_new_port_closed(context, pool):
    port = context.s.run_of(pool).port
    assert previous(context, pool).port != port
    got = engine_health(port)
    assert got != 200, got


@step('the pid file of pool "{pool}" holds the new engine\'s pid')
def step_pid_file_new(context, pool):
    pid = int(harness.unit_property(harness.engine_unit(pool), "MainPID") or 0)
    with open(observe.daemon(context).pid_file(pool)) as f:
        content = f.read()
    assert content == f"{pid}\n" and pid != previous(context, pool).pid, (content, pid)


@step('the D-Bus reply is success {success}, rolled_back {rolled_back}, engine_version "{version}" and no error')
def step_reload_reply_ok(context, success, rolled_back, version):
    check_reload_reply(context, success, rolled_back, version, "")


def check_reload_reply(context, success, rolled_back, version, error):
    r = context.s.dbus
    assert r is not None and r.error_name is None, r
    got = list(r.value)
    assert matches(context, got[0], success) and matches(context, got[1], rolled_back), r
    assert got[2] == version and got[3] == error, r


@step('the engine of pool "{pool}" was stopped before the new one was started')
def step_stop_before_start(context, pool):
    msgs = observe.messages(context, pool)
    stopped = [i for i, m in enumerate(msgs) if m == f'Pool "{pool}": engine pool-engine-{pool}.service stopped']
    starts = [i for i, m in enumerate(msgs) if m.startswith(f'Pool "{pool}": starting engine ')]
    assert len(starts) == 2 and stopped and starts[0] < stopped[0] < starts[1], msgs
