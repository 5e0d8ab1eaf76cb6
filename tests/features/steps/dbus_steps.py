# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: the daemon's D-Bus API (org.llorch.PoolManager1) and its signals.

import os
import sys

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
from checks import check_table, matches  # noqa: E402


def result(context):
    r = context.s.dbus
    assert r is not None, "no D-Bus call was made"
    return r


@step('I call {method:w}("{arg}") on the manager over D-Bus')
def step_call_manager(context, method, arg):
    context.s.dbus = context.h.bus.manager_call(method, arg)


@step('I call {method:w}() on the object of pool "{pool}" over D-Bus')
def step_call_pool(context, method, pool):
    context.s.dbus = context.h.bus.call(context.h.bus.pool_path(pool), harness.POOL_IFACE, method)


@step('the D-Bus call fails with "{name}"')
def step_call_fails(context, name):
    r = result(context)
    assert r.error_name == name, r


@step('the D-Bus error message is "{message}"')
def step_error_message(context, message):
    r = result(context)
    assert r.error_message == message, r


@step("the D-Bus call returns the pool's object path, the engine's MainPID and the handoff path")
def step_preload_reply(context):
    r = result(context)
    assert r.error_name is None, r
    pool = context.s.last_pool
    path, pid, handoff = r.value
    assert path == context.h.bus.pool_path(pool), r
    assert pid == int(harness.unit_property(harness.engine_unit(pool), "MainPID")) > 0, r
    assert handoff == context.h.daemon.handoff_file(pool) and os.path.isfile(handoff), r


@step("the D-Bus call returns {value:d}")
def step_call_returns(context, value):
    r = result(context)
    assert r.error_name is None and r.value == value, r


@step('the D-Bus properties of pool "{pool}" are')
def step_pool_properties(context, pool):
    props = context.h.bus.pool_properties(pool)
    check_table(context, props, [(row["property"], row["value"]) for row in context.table],
                f"D-Bus properties of pool {pool}")


@step('the manager\'s D-Bus property "{name}" is {value}')
def step_manager_property(context, name, value):
    got = context.h.bus.manager_properties()[name]
    assert matches(context, got, value), got


@step('the D-Bus property LastHeartbeatUSec of pool "{pool}" is its last_heartbeat_ms times 1000')
def step_heartbeat_usec(context, pool):
    usec = context.h.bus.pool_properties(pool)["LastHeartbeatUSec"]
    ms = context.h.daemon.status(pool)["last_heartbeat_ms"]
    assert usec == ms * 1000 and usec > 0, (usec, ms)


@step('the LastError of pool "{pool}" is the D-Bus error message')
def step_last_error_is_message(context, pool):
    r = result(context)
    last = context.h.bus.pool_properties(pool)["LastError"]
    assert last and last == r.error_message, (last, r)


# ---- signals ----

@step("I monitor the daemon's D-Bus signals")
def step_monitor(context):
    context.s.monitor = harness.BusMonitor(context.h.bus)
    assert context.s.monitor.wait_until_listening(), "busctl monitor saw nothing"


def monitor(context):
    assert context.s.monitor, "the scenario does not monitor D-Bus signals"
    return context.s.monitor


@step('the pool object of "{pool}" appeared with the properties')
def step_interfaces_added(context, pool):
    path = context.h.bus.pool_path(pool)
    props = harness.wait_for(lambda: monitor(context).interfaces_added(path), timeout=5)
    assert props, f"no InterfacesAdded for {path}"
    check_table(context, props, [(row["property"], row["value"]) for row in context.table],
                f"InterfacesAdded of {path}")


@step('the {prop:w} property of pool "{pool}" changed only once, to true')
def step_changed_once(context, prop, pool):
    path = context.h.bus.pool_path(pool)
    values = harness.wait_for(lambda: (lambda v: v if v and v[-1] is True else None)(
        monitor(context).pool_property_values(path, prop)), timeout=5)
    assert values == [False, True], monitor(context).pool_property_values(path, prop)


@step('the {prop:w} property of pool "{pool}" went through "{values}"')
def step_went_through(context, prop, pool, values):
    path = context.h.bus.pool_path(pool)
    wanted = [v.strip() for v in values.split(",")]

    def seen():
        got = monitor(context).pool_property_values(path, prop)
        deduped = [v for i, v in enumerate(got) if i == 0 or got[i - 1] != v]
        return deduped if deduped[-1:] == wanted[-1:] else None
    got = harness.wait_for(seen, timeout=5)
    assert got == wanted, monitor(context).pool_property_values(path, prop)
