# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: the fleet (pool-managerd.conf(5), [Fleet]) against a real etcd of the scenario's own
# (support/etcd.py), read through etcd's gateway and etcdctl, never through the daemon.

import json
import os
import re
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


@step('within {n:g} seconds etcd has the node key of "{node}" with')
def step_node_key_with(context, n, node):
    rows = [(row["field"], row["value"]) for row in context.table]
    key = node_key(node)
    keys = wait_keys(context, lambda k: key in k and isinstance(k[key]["value"], dict) and
                     all(matches(context, k[key]["value"].get(f), v) for f, v in rows), n, f"{key} not as wanted")
    check_table(context, keys[key]["value"], rows, key)


@step('the node key of "{node}" names the daemon\'s HTTP address and the version "pool-managerd --version" prints')
def step_node_key_url(context, node):
    v = the_etcd(context).range(PREFIX)[node_key(node)]["value"]
    assert v["url"] == f"http://127.0.0.1:{context.h.daemon.port}", v
    out = harness.run(harness.POOL_MANAGERD, "--version", check=True).stdout
    assert v["version"] and v["version"] in out.split(), (v, out)


@step('the lease of node "{node}" was granted with a TTL of {n:d} seconds')
def step_lease_ttl(context, node, n):
    e = the_etcd(context)
    lease = e.range(PREFIX)[node_key(node)]["lease"]
    out = e.ctl("lease", "timetolive", format(lease, "x")).stdout
    assert f"granted with TTL({n}s)" in out, out


@step('the key of {what} has "{field}" as a UTC time with milliseconds')
def step_key_timestamp(context, what, field):
    key = key_named(what)
    v = the_etcd(context).range(PREFIX)[key]["value"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v.get(field) or ""), v


@step('the key of pool "{pool}" on node "{node}" has no field "{field}"')
def step_key_no_field(context, pool, node, field):
    v = the_etcd(context).range(PREFIX)[pool_key(pool, node)]["value"]
    assert field not in v, v


def key_named(what):
    """'node "X"' or 'pool "P" on node "X"' -> the key."""
    m = re.fullmatch(r'node "([^"]+)"', what) or re.fullmatch(r'pool "([^"]+)" on node "([^"]+)"', what)
    assert m, what
    return node_key(m.group(1)) if m.lastindex == 1 else pool_key(m.group(1), m.group(2))


@step('the version of the key of pool "{pool}" on node "{node}" is noted')
def step_note_version(context, pool, node):
    context.s.marks["key_version"] = the_etcd(context).range(PREFIX)[pool_key(pool, node)]["version"]


@step('I take {n:d} leases on pool "{pool}" and give {m:d} of them back')
def step_lease_burst(context, n, pool, m):
    t0 = time.monotonic()
    for method in ["POST"] * n + ["DELETE"] * m:
        r = context.h.daemon.request(method, f"/pools/{pool}/leases")
        assert r.status == 200, r
    context.s.marks["burst"] = (n + m, time.monotonic() - t0)


@step('etcd wrote the key of pool "{pool}" on node "{node}" at most once per 50 ms during that, and fewer times '
      'than it changed')
def step_coalesced(context, pool, node):
    changes, took = context.s.marks["burst"]
    writes = the_etcd(context).range(PREFIX)[pool_key(pool, node)]["version"] - context.s.marks["key_version"]
    # From the first change to one interval after the last (10 ms for the timer starting the last write).
    bound = 2 + int((took + 0.01) / 0.05)
    assert 1 <= writes <= bound, f"{writes} writes for {changes} changes in {took:.3f} s (at most {bound})"
    assert writes < changes, f"{writes} writes for {changes} changes"


@step('a key of pool "{pool}" on node "{node}" is put in etcd on a lease of its own')
def step_put_stale(context, pool, node):
    e = the_etcd(context)
    lease = e.grant(60)
    r = e.ctl("put", f"--lease={lease}", pool_key(pool, node), json.dumps({"node": node, "pool_id": pool,
                                                                           "ready": True}))
    assert r.returncode == 0, r.stderr


@step('the lease of node "{node}" is revoked')
def step_revoke(context, node):
    e = the_etcd(context)
    lease = e.range(PREFIX)[node_key(node)]["lease"]
    context.s.marks["revoked_lease"] = lease
    r = e.ctl("lease", "revoke", format(lease, "x"))
    assert r.returncode == 0, r.stderr


@step('within {n:g} seconds etcd has the node key of "{node}" on a new lease')
def step_new_lease(context, n, node):
    old = context.s.marks["revoked_lease"]
    wait_keys(context, lambda k: node_key(node) in k and k[node_key(node)]["lease"] not in (0, old), n,
              f"{node_key(node)} not on a new lease")


@step('within {n:g} seconds GET /fleet/pools lists no pool of node "{node}"')
def step_fleet_pools_none(context, n, node):
    pools = []

    def check():
        nonlocal pools
        r = context.h.daemon.request("GET", "/fleet/pools")
        pools = [(p["node"], p["pool_id"]) for p in r.json["pools"]] if r.status == 200 else ["?"]
        return not any(x[0] == node for x in pools)
    assert harness.wait_for(check, timeout=n), pools
