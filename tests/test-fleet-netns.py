#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The fleet (issue 12) with three nodes: a real etcd in the root network namespace, on a bridge,
# and three pool-managerd, each in a network namespace of its own with its own address (veth to
# the bridge) and its own tests/sandbox (systemd --user, bus, journald); see tests/fleet_netns.py.
# LeaseTTL=2s. Every check reads etcd itself (its JSON gateway) or asks a node's own daemon, from
# inside that node's namespace:
#
#   - every pool of the three nodes registered, each node on a lease of its own, and any node's
#     GET /fleet/pools sees them all;
#   - kill -9 of one daemon: its keys go when the lease runs out (the others' stay), its engines
#     keep running, and a restart writes them again within a second of READY=1;
#   - etcd stopped: the nodes work on (preload, stop, their engines untouched), say
#     disconnected, and write their current state when etcd is back;
#   - one node's link cut (the host end of its veth down): its keys expire, the node serves on,
#     and its keys return once the link is up.
#
# Prints TAP lines (figures as "# " lines). Runs outside tests/sandbox (it starts one per node);
# exits 77 with the reason where it cannot run (not root, no etcd, no network namespaces).

import importlib.util
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleet_netns  # noqa: E402

spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

PREFIX = "/pool-managerd/"
TTL = 2
POOLS = 3       # per node
ACTIVE = []     # the cluster up, for the SIGTERM handler


def figure(text):
    print(f"# {text}", flush=True)
    print(f"figure: {text}", file=sys.stderr, flush=True)


def node_key(node):
    return f"{PREFIX}nodes/{node}"


def pool_key(pool, node):
    return f"{PREFIX}pools/{node}/{pool}"


def keys_of(keys, node):
    return {k: v for k, v in keys.items() if k == node_key(node) or k.startswith(f"{PREFIX}pools/{node}/")}


class FleetNetnsTest(unittest.TestCase):
    """Three nodes; the tests run in name order and build on each other."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.cluster = fleet_netns.Cluster(n=3, ttl=TTL).__enter__()
        except fleet_netns.Unavailable as e:
            raise unittest.SkipTest(str(e)) from e
        ACTIVE.append(cls.cluster)
        cls.nodes = cls.cluster.nodes
        # What each node should run: pool id -> True; kept current by the tests.
        cls.pools = {n.name: {} for n in cls.nodes}

    @classmethod
    def tearDownClass(cls):
        ACTIVE.remove(cls.cluster)
        cls.cluster.__exit__(None, None, None)

    # --- helpers ---

    def keys(self):
        return self.cluster.keys()

    def wait_keys(self, predicate, what, timeout=10.0, interval=0.01):
        """Polls etcd until predicate(keys) holds; returns (keys, seconds waited)."""
        t0 = time.monotonic()
        keys = {}

        def check():
            nonlocal keys
            keys = self.keys()
            return predicate(keys)
        ok = th.wait_for(check, timeout=timeout, interval=interval)
        took = time.monotonic() - t0
        self.assertTrue(ok, f"{what}: not within {timeout} s; etcd has {sorted(keys)}")
        return keys, took

    def registered(self, keys, node):
        """node's key and exactly the pools it should run, all ready, all on the node's lease."""
        mine = keys_of(keys, node.name)
        wanted = {node_key(node.name)} | {pool_key(p, node.name) for p in self.pools[node.name]}
        if set(mine) != wanted:
            return False
        lease = mine[node_key(node.name)]["lease"]
        return lease > 0 and all(v["lease"] == lease for v in mine.values()) and \
            all(mine[pool_key(p, node.name)]["value"].get("ready") is True for p in self.pools[node.name])

    def all_registered(self, keys):
        return all(self.registered(keys, n) for n in self.nodes)

    def preload(self, node, pools):
        answers = node.call("preload", pools=pools, parallel=len(pools))
        for pool, a in answers.items():
            self.assertEqual(a["status"], 200, f"{node.name} {pool}: {a}")
            self.pools[node.name][pool] = True

    def stop_pool(self, node, pool):
        a = node.call("http", method="POST", path=f"/pools/{pool}/stop")
        self.assertEqual(a["status"], 200, a)
        del self.pools[node.name][pool]

    def health(self, node):
        a = node.call("http", method="GET", path="/health")
        self.assertEqual(a["status"], 200, a)
        return a["json"]

    def wait_fleet(self, node, state, timeout=15.0):
        t0 = time.monotonic()
        ok = th.wait_for(lambda: self.health(node)["fleet"] == state, timeout=timeout, interval=0.05)
        self.assertTrue(ok, f"{node.name} never {state}: {self.health(node)}")
        return time.monotonic() - t0

    def pids(self, node):
        pids = node.call("pids", pools=sorted(self.pools[node.name]))
        self.assertTrue(all(pids.values()), pids)
        return pids

    def fleet_pools(self, node):
        a = node.call("http", method="GET", path="/fleet/pools")
        self.assertEqual(a["status"], 200, a)
        return {(p["node"], p["pool_id"]) for p in a["json"]["pools"]}

    def assert_serving(self, node):
        """GET /pools on the node: the pools it should run ready, the others stopped."""
        a = node.call("http", method="GET", path="/pools")
        self.assertEqual(a["status"], 200, a)
        self.assertEqual({p["pool_id"]: p["state"] for p in a["json"] if p["state"] != "stopped"},
                         {p: "ready" for p in self.pools[node.name]})

    def every_pool(self):
        return {(n, p) for n, pools in self.pools.items() for p in pools}

    # --- the tests ---

    def test_01_every_pool_of_three_nodes_registered(self):
        for node in self.nodes:
            self.preload(node, [f"{node.name}-p{k}" for k in range(POOLS)])
        keys, took = self.wait_keys(self.all_registered, "every node and pool registered")
        figure(f"3 nodes x {POOLS} pools registered (ready), all in etcd {took * 1000:.0f} ms after the last "
               "preload answered")
        leases = {keys[node_key(n.name)]["lease"] for n in self.nodes}
        self.assertEqual(len(leases), 3, "the nodes share a lease")
        for i, node in enumerate(self.nodes, 1):
            v = keys[node_key(node.name)]["value"]
            self.assertEqual(v["node"], node.name)
            self.assertRegex(v["url"], r"^http://127\.0\.0\.1:\d+$")
            self.assertEqual(self.health(node)["fleet"], "connected")
        # Each node's watch cache, reached over its own link, has everybody's pools.
        for node in self.nodes:
            self.assertTrue(th.wait_for(lambda: self.fleet_pools(node) == self.every_pool(), timeout=5),
                            f"{node.name}: {sorted(self.fleet_pools(node))}")

    def test_02_killed_daemon_keys_expire_engines_run_restart_within_a_second(self):
        victim, others = self.nodes[1], [self.nodes[0], self.nodes[2]]
        before = self.keys()
        pids = self.pids(victim)
        killed = victim.call("kill")["killed_at"]
        keys, _ = self.wait_keys(lambda k: not keys_of(k, victim.name), f"{victim.name}'s keys gone",
                                 timeout=TTL + 10, interval=0.02)
        took = time.time() - killed
        figure(f"{victim.name}'s daemon SIGKILLed: its {len(keys_of(before, victim.name))} keys gone after "
               f"{took * 1000:.0f} ms (LeaseTTL={TTL}s)")
        self.assertGreater(took, TTL / 3, "keys went before the lease could have expired")
        self.assertLess(took, TTL + 3)
        for node in others:
            self.assertEqual(keys_of(keys, node.name), keys_of(before, node.name), f"{node.name} was disturbed")
        self.assertEqual(self.pids(victim), pids, "an engine did not survive its daemon")

        victim.call("start")
        t_ready = time.monotonic()
        keys, _ = self.wait_keys(self.all_registered, f"{victim.name} registered again", interval=0.005)
        took = time.monotonic() - t_ready
        figure(f"{victim.name} restarted: node and {POOLS} pools back in etcd {took * 1000:.0f} ms after READY=1")
        self.assertLess(took, 1.0)
        self.assertEqual(self.pids(victim), pids, "an engine was restarted")

    def setUp(self):
        if not self.cluster.etcd.proc:        # a failed test_03 left it stopped
            self.cluster.etcd.start()

    def test_03_etcd_outage(self):
        pids = {n.name: self.pids(n) for n in self.nodes}
        logs_before = {n.name: len(n.call("log")["log"]) for n in self.nodes}
        self.cluster.etcd.stop()
        for node in self.nodes:
            took = self.wait_fleet(node, "disconnected")
            figure(f"etcd stopped: {node.name} disconnected after {took * 1000:.0f} ms")

        # Local operation goes on: a preload and a stop on every node, the other engines untouched.
        for node in self.nodes:
            t0 = time.monotonic()
            self.preload(node, [f"{node.name}-outage"])
            stopped = f"{node.name}-p0"
            self.stop_pool(node, stopped)
            figure(f"during the outage: {node.name} preloaded a pool and stopped one in "
                   f"{(time.monotonic() - t0) * 1000:.0f} ms")
            del pids[node.name][stopped]
            now = node.call("pids", pools=sorted(pids[node.name]))
            self.assertEqual(now, pids[node.name], f"{node.name}: an engine was disturbed")
            self.assert_serving(node)
            # The cache answers, saying it is stale.
            a = node.call("http", method="GET", path="/fleet/pools")
            self.assertEqual(a["json"]["fleet"], "disconnected", a)

        t0 = time.monotonic()
        self.cluster.etcd.start()
        keys, _ = self.wait_keys(self.all_registered, "the current state written again", timeout=20)
        figure(f"etcd back: every node's current state in etcd {(time.monotonic() - t0) * 1000:.0f} ms after "
               "etcd answered")
        for node in self.nodes:
            self.wait_fleet(node, "connected")
            log = node.call("log")["log"][logs_before[node.name]:]
            self.assertEqual(log.count("is not registered. Local operation continues"), 1,
                             f"{node.name} logged the outage more (or less) than once:\n{log[-3000:]}")
            self.assertTrue(th.wait_for(lambda: self.fleet_pools(node) == self.every_pool(), timeout=5),
                            f"{node.name}: {sorted(self.fleet_pools(node))}")

    def test_04_link_cut(self):
        victim, others = self.nodes[2], self.nodes[:2]
        before = self.keys()
        pids = self.pids(victim)
        t0 = time.monotonic()
        self.cluster.network.cut(victim.i)
        try:
            keys, _ = self.wait_keys(lambda k: not keys_of(k, victim.name), f"{victim.name}'s keys gone",
                                     timeout=TTL + 10, interval=0.02)
            took = time.monotonic() - t0
            figure(f"{victim.name}'s link cut: its keys gone after {took * 1000:.0f} ms (LeaseTTL={TTL}s)")
            self.assertGreater(took, TTL / 3, "keys went before the lease could have expired")
            self.assertLess(took, TTL + 3)
            for node in others:
                self.assertEqual(keys_of(keys, node.name), keys_of(before, node.name),
                                 f"{node.name} was disturbed")
            # The node itself serves on: its pools ready, its engines the same, its fleet state honest.
            self.wait_fleet(victim, "disconnected")
            self.assert_serving(victim)
            self.assertEqual(self.pids(victim), pids)
            # The others' caches drop the node.
            for node in others:
                self.assertTrue(th.wait_for(lambda: not any(n == victim.name for n, _ in self.fleet_pools(node)),
                                            timeout=5), f"{node.name}: {sorted(self.fleet_pools(node))}")
        finally:
            t0 = time.monotonic()
            self.cluster.network.restore(victim.i)
        keys, _ = self.wait_keys(self.all_registered, f"{victim.name} registered again", timeout=20)
        figure(f"{victim.name}'s link back: its keys in etcd again after {(time.monotonic() - t0) * 1000:.0f} ms")
        self.assertNotEqual(keys[node_key(victim.name)]["lease"], before[node_key(victim.name)]["lease"],
                            "the expired lease is in use again")
        self.wait_fleet(victim, "connected")
        self.assertEqual(self.pids(victim), pids)
        for node in self.nodes:
            self.assertTrue(th.wait_for(lambda: self.fleet_pools(node) == self.every_pool(), timeout=5),
                            f"{node.name}: {sorted(self.fleet_pools(node))}")


def on_sigterm(signum, frame):
    # meson's timeout: remove the namespaces, etcd and the sandboxes before going.
    for cluster in ACTIVE:
        cluster.__exit__(None, None, None)
    os._exit(128 + signum)


def main():
    try:
        fleet_netns.check_host()
    except fleet_netns.Unavailable as e:
        print(f"1..0 # SKIP {e}")
        return 77
    signal.signal(signal.SIGTERM, on_sigterm)
    suite = unittest.TestLoader().loadTestsFromTestCase(FleetNetnsTest)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=th.TapResult)
    result = runner.run(suite)
    print(f"1..{th.TapResult.n}", flush=True)
    if result.wasSuccessful() and result.skipped and len(result.skipped) == th.TapResult.n:
        return 77
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
