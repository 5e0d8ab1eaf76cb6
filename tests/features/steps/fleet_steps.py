# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: the fleet (pool-managerd.conf(5), [Fleet]) against a real etcd of the scenario's own
# (support/etcd.py), read through etcd's gateway and etcdctl, never through the daemon.

import json
import os
import subprocess
import sys
import time

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import etcd  # noqa: E402
import harness  # noqa: E402
from checks import check_table, matches  # noqa: E402

PREFIX = "/pool-managerd/"


def node_key(node):
    return f"{PREFIX}nodes/{node}"


def pool_key(pool, node):
    return f"{PREFIX}pools/{node}/{pool}"


def the_etcd(context):
    e = getattr(context.s, "etcd", None)
    if not e:
        raise harness.HarnessError("no etcd: the scenario must start one first")
    return e


def wait_keys(context, predicate, seconds, what):
    keys = {}

    def check():
        nonlocal keys
        keys = the_etcd(context).range(PREFIX)
        return predicate(keys)
    assert harness.wait_for(check, timeout=seconds), f"{what} within {seconds} s: {json.dumps(keys)[:2000]}"
    return keys


@step("an etcd of the scenario's own")
def step_etcd(context):
    if not etcd.available():
        context.scenario.skip("etcd and etcdctl are not installed (Debian: etcd-server, etcd-client)")
        return
    e = etcd.Etcd(context.s.dir)
    e.start()
    context.s.etcd = e
    context.add_cleanup(e.stop)


@step('a freshly started pool-managerd registered in that etcd as node "{node}" with')
def step_fleet_daemon(context, node):
    settings = {row["key"]: row["value"] for row in context.table}
    settings.update({"Etcd": the_etcd(context).url, "NodeName": node})
    d = context.h.ensure_daemon(settings, fresh=True)
    assert d.running(), d.log()[-2000:]


@step('within {n:g} seconds etcd has the node key of "{node}" on a lease')
def step_node_key(context, n, node):
    keys = wait_keys(context, lambda k: node_key(node) in k, n, f"no key {node_key(node)}")
    assert keys[node_key(node)]["lease"] > 0, keys[node_key(node)]
    assert keys[node_key(node)]["value"]["node"] == node, keys[node_key(node)]


@step('within {n:g} seconds etcd has the key of pool "{pool}" on node "{node}" with')
def step_pool_key(context, n, pool, node):
    rows = [(row["field"], row["value"]) for row in context.table]
    key = pool_key(pool, node)
    keys = wait_keys(context, lambda k: key in k and isinstance(k[key]["value"], dict) and
                     all(matches(context, k[key]["value"].get(f), v) for f, v in rows), n, f"{key} not as wanted")
    check_table(context, keys[key]["value"], rows, key)


@step('the key of pool "{pool}" is on the lease of node "{node}"')
def step_same_lease(context, pool, node):
    keys = the_etcd(context).range(PREFIX)
    assert keys[pool_key(pool, node)]["lease"] == keys[node_key(node)]["lease"] > 0, keys


@step('within {n:g} seconds etcd has no key of pool "{pool}" on node "{node}"')
def step_no_pool_key(context, n, pool, node):
    wait_keys(context, lambda k: pool_key(pool, node) not in k, n, f"{pool_key(pool, node)} still there")


@step('within {n:g} seconds etcd has no key of node "{node}" left')
def step_no_node_keys(context, n, node):
    t0 = time.monotonic()
    wait_keys(context, lambda k: not any(x == node_key(node) or x.startswith(f"{PREFIX}pools/{node}/") for x in k),
              n, f"keys of {node} still there")
    context.s.marks["keys_gone_after"] = time.monotonic() - t0


@step("etcd is stopped")
def step_etcd_stopped(context):
    the_etcd(context).stop()


@step("etcd is started again")
def step_etcd_started(context):
    the_etcd(context).start()


@step('within {n:g} seconds the manager\'s D-Bus property "{name}" is {value}')
def step_manager_property_within(context, n, name, value):
    got = None

    def check():
        nonlocal got
        got = context.h.bus.manager_properties()[name]
        return matches(context, got, value)
    assert harness.wait_for(check, timeout=n), f"{name} is {got!r}, not {value}"


@step('another node "{node}" publishes pool "{pool}" in etcd with')
def step_other_node(context, node, pool):
    e = the_etcd(context)
    lease = e.grant(60)
    value = {row["field"]: json.loads(row["value"]) for row in context.table}
    for key, v in ((node_key(node), {"node": node, "version": "9.9.9", "devices": []}), (pool_key(pool, node), value)):
        r = e.ctl("put", f"--lease={lease}", key, json.dumps(v))
        assert r.returncode == 0, r.stderr


@step('another node writes "{value}" as its pool "{pool}" in etcd')
def step_other_node_bad(context, value, pool):
    r = the_etcd(context).ctl("put", pool_key(pool, "other-node"), value)
    assert r.returncode == 0, r.stderr


@step('within {n:g} seconds GET /fleet/pools lists pool "{pool}" of node "{node}" with')
def step_fleet_pools(context, n, pool, node):
    rows = [(row["field"], row["value"]) for row in context.table]
    found = {}

    def check():
        r = context.h.daemon.request("GET", "/fleet/pools")
        if r.status != 200:
            return False
        found.clear()
        found.update({(p["node"], p["pool_id"]): p for p in r.json["pools"]})
        p = found.get((node, pool))
        return p is not None and all(matches(context, p.get(f), v) for f, v in rows)
    assert harness.wait_for(check, timeout=n), f"{node}/{pool} not as wanted in {sorted(found)}"
    check_table(context, found[(node, pool)], rows, f"{node}/{pool}")


@step('poolctl fleet prints a row for pool "{pool}" of node "{node}" in state "{state}"')
def step_poolctl_fleet(context, pool, node, state):
    r = subprocess.run([harness.POOLCTL, "--user", "fleet"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NODE", "POOL", "STATE"], lines[0]
    assert any(line.split()[:3] == [node, pool, state] for line in lines[1:]), r.stdout


@step('the daemon\'s journal has a line containing "{text}"')
def step_journal_contains(context, text):
    assert harness.wait_for(lambda: text in context.h.daemon.log(), timeout=5), context.h.daemon.log()[-3000:]
