#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The fleet (issue 12) against a real etcd (Debian's etcd-server, 3.4) inside tests/sandbox: the
# test starts its own etcd on loopback (data directory under the test's directory, free ports),
# the daemon registers there as node "node-a" with LeaseTTL=2s, and every check reads etcd itself
# (its v3 JSON gateway, and etcdctl for what an operator or another node would do): keys with the
# node's lease, a stopped pool's key deleted, coalesced writes, a killed daemon's keys expiring
# while its engines run, re-registration after a restart, an etcd outage and its end, a lease
# revoked from outside, another node's keys in GET /fleet/pools and poolctl fleet, bad values
# refused with a log line; libcurl loaded only with Etcd=, and a daemon that cannot load it
# refusing to start. Prints TAP lines (and the measured figures as "# " lines) like
# test-http.py; exits 77 outside the sandbox or without etcd.

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)
spec = importlib.util.spec_from_file_location("etcd", os.path.join(HERE, "features", "support", "etcd.py"))
etcd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(etcd)

POOLCTL = os.environ.get("POOLCTL")
PREFIX = "/pool-managerd/"
NODE = "node-a"
TTL = 2
UNIT = "pool-managerd-fleet-test"


def figure(text):
    """A measured figure: on stdout as a TAP comment, and on stderr."""
    print(f"# {text}", flush=True)
    print(f"figure: {text}", file=sys.stderr, flush=True)


def node_key(node=NODE):
    return f"{PREFIX}nodes/{node}"


def pool_key(pool, node=NODE):
    return f"{PREFIX}pools/{node}/{pool}"


def maps_libcurl(unit):
    """Whether the unit's main process has libcurl mapped."""
    pid = th.unit_property(f"{unit}.service", "MainPID")
    with open(f"/proc/{pid}/maps") as f:
        return "/libcurl" in f.read()


def libcurl_files():
    """The files behind libcurl's sonames, where the dynamic loader finds them."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    paths = re.findall(r"\s(libcurl(?:-gnutls)?\.so\.4) .*=> (\S+)", out)
    return sorted({os.path.realpath(p) for _, p in paths})


def busctl_property(name):
    r = subprocess.run(["busctl", "--user", "get-property", "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                        "org.llorch.PoolManager1.Manager", name], capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


class FleetTest(th.HttpTestCase):
    """One etcd, one daemon (node-a); tests run in name order and build on each other."""

    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(th.RUNTIME, "fleet-test")
        shutil.rmtree(cls.dir, ignore_errors=True)
        os.makedirs(cls.dir)
        cls.etcd = etcd.Etcd(cls.dir)
        cls.etcd.start()
        cls.daemon = th.Daemon(UNIT, extra_config=f"[Fleet]\nEtcd={cls.etcd.url}\nNodeName={NODE}\n"
                                                  f"LeaseTTL={TTL}s\n")
        cls.engines = {}

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        th.stop_all_engines()
        cls.etcd.stop()

    # --- helpers ---

    def keys(self):
        return self.etcd.range(PREFIX)

    def wait_keys(self, predicate, timeout=10.0, interval=0.01):
        """Polls etcd until predicate(keys) holds; returns (keys, seconds waited)."""
        t0 = time.monotonic()
        ok = th.wait_for(lambda: predicate(self.keys()), timeout=timeout, interval=interval)
        took = time.monotonic() - t0
        keys = self.keys()
        self.assertTrue(ok, f"etcd never got there in {timeout} s: {json.dumps(keys, indent=1)[:3000]}\n"
                            f"{self.daemon.log()[-3000:]}")
        return keys, took

    def preload(self, pool, **extra):
        port = th.free_port()
        self.engines[pool] = th.prepared(pool, port, **extra)
        r = self.daemon.post(f"/pools/{pool}/preload", {"prepared": self.engines[pool]}, timeout=60)
        self.assert_json_response(r, 200)

    def stop_pool(self, pool):
        r = self.daemon.post(f"/pools/{pool}/stop", timeout=60)
        self.assert_json_response(r, 200)

    def health(self):
        r = self.daemon.get("/health")
        self.assert_json_response(r, 200)
        return r.json

    def wait_fleet_state(self, state, timeout=15.0):
        t0 = time.monotonic()
        ok = th.wait_for(lambda: self.health()["fleet"] == state, timeout=timeout, interval=0.02)
        self.assertTrue(ok, f"fleet never {state}: {self.health()}\n{self.daemon.log()[-3000:]}")
        return time.monotonic() - t0

    def fleet_pools(self):
        r = self.daemon.get("/fleet/pools")
        self.assert_json_response(r, 200)
        return r.json

    def engine_pid(self, pool):
        return int(th.unit_property(f"pool-engine-{pool}.service", "MainPID") or 0)

    # --- the tests ---

    def test_00_off_without_etcd(self):
        d = th.Daemon(UNIT + "-off")
        self.assertEqual(d.start(), 0, d.log())
        try:
            r = d.get("/health")
            self.assertEqual(r.json["fleet"], "off", r.json)
            r = d.get("/fleet/pools")
            self.assert_error(r, 404, "the fleet is off: no Etcd= in [Fleet]")
            self.assertEqual(busctl_property("FleetState"), 's "off"')
            # Loaded when first needed (src/curl-dl.c): without Etcd= and pools, never.
            self.assertFalse(maps_libcurl(UNIT + "-off"))
            if POOLCTL:
                p = subprocess.run([POOLCTL, "--user", "fleet"], capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 1, p)
                self.assertIn("the fleet is off", p.stderr)
        finally:
            d.stop()

    def test_00_refuses_to_start_without_libcurl(self):
        files = libcurl_files()
        if not files:
            self.skipTest("no libcurl in ldconfig's cache")
        # /dev/null over the library, for the daemon alone (InaccessiblePaths= needs
        # /run/systemd/inaccessible, which the sandbox's /run/systemd lacks).
        d = th.Daemon(UNIT + "-nocurl", extra_config=f"[Fleet]\nEtcd={self.etcd.url}\nNodeName={NODE}\n",
                      properties=["BindReadOnlyPaths=" + " ".join(f"/dev/null:{f}" for f in files)])
        try:
            self.assertNotEqual(d.start(), 0, d.log())
            self.assertTrue(th.wait_for(lambda: "Fleet: cannot reach etcd" in d.log(), timeout=10), d.log())
            self.assertIn("Failed to load libcurl (libcurl-gnutls.so.4 or libcurl.so.4)", d.log())
        finally:
            d.stop()

    def test_01_node_registered_with_lease(self):
        self.assertEqual(self.daemon.start(), 0, self.daemon.log())
        self.wait_fleet_state("connected")
        self.assertEqual(busctl_property("FleetState"), 's "connected"')
        self.assertTrue(maps_libcurl(UNIT))
        keys, _ = self.wait_keys(lambda k: node_key() in k)
        node = keys[node_key()]
        self.assertGreater(node["lease"], 0)
        v = node["value"]
        self.assertEqual(v["node"], NODE)
        self.assertRegex(v["version"], r"^\d+\.\d+")
        self.assertEqual(v["url"], f"http://127.0.0.1:{self.daemon.port}")
        self.assertEqual(v["devices"], [])
        self.assertRegex(v["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # The lease has the TTL asked for.
        ttl = self.etcd.ctl("lease", "timetolive", format(node["lease"], "x")).stdout
        self.assertRegex(ttl, r"granted with TTL\(2s\)")

    def test_02_pool_key(self):
        self.preload("p0", engine_version="fake-1.0", device_mask="GPU0", slots_total=4, engine="vllm")
        keys, _ = self.wait_keys(lambda k: pool_key("p0") in k and k[pool_key("p0")]["value"].get("ready"))
        p = keys[pool_key("p0")]
        self.assertEqual(p["lease"], keys[node_key()]["lease"], "pool key not on the node's lease")
        v = p["value"]
        for k, want in (("node", NODE), ("pool_id", "p0"), ("ready", True), ("live", True),
                        ("engine", "vllm"), ("engine_version", "fake-1.0"), ("device_mask", "GPU0"),
                        ("slots_total", 4), ("slots_free", 4), ("active_leases", 0), ("last_error", None),
                        ("state", "ready")):
            self.assertEqual(v.get(k), want, f"{k}: {v}")
        self.assertEqual(v["url"], f"http://127.0.0.1:{self.engines['p0']['port']}")
        self.assertRegex(v["updated_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertNotIn("last_heartbeat_ms", v)

    def test_03_stopped_pool_key_deleted(self):
        self.preload("p-stop")
        self.wait_keys(lambda k: pool_key("p-stop") in k)
        self.stop_pool("p-stop")
        _, took = self.wait_keys(lambda k: pool_key("p-stop") not in k)
        figure(f"stopped pool's key deleted {took * 1000:.0f} ms after the stop answered")

    def test_04_coalescing(self):
        self.preload("p-coal", slots_total=1000)
        keys, _ = self.wait_keys(lambda k: pool_key("p-coal") in k and k[pool_key("p-coal")]["value"].get("ready"))
        time.sleep(0.2)
        before = self.keys()[pool_key("p-coal")]["version"]
        changes = 0
        t0 = time.monotonic()
        for _ in range(300):
            r = self.daemon.post("/pools/p-coal/leases")
            self.assertEqual(r.status, 200, r)
            changes += 1
        for _ in range(100):
            r = th.request(self.daemon.port, "DELETE", "/pools/p-coal/leases")
            self.assertEqual(r.status, 200, r)
            changes += 1
        took = time.monotonic() - t0
        self.assertEqual(r.json["active_leases"], 200)
        keys, _ = self.wait_keys(lambda k: k[pool_key("p-coal")]["value"]["active_leases"] == 200, timeout=5)
        time.sleep(0.3)     # anything still coming would come now
        after = self.keys()[pool_key("p-coal")]
        writes = after["version"] - before
        # Writes at least 50 ms apart from the first change to one interval after the last: at most
        # 2 + T/50ms, T with 10 ms for the timer that starts the last write.
        bound = 2 + int((took + 0.01) / 0.05)
        figure(f"coalescing: {changes} registry changes in {took * 1000:.0f} ms -> {writes} writes "
               f"(bound 2 + (T + 10 ms)/50 ms = {bound}); final active_leases {after['value']['active_leases']}")
        self.assertLessEqual(writes, bound)
        self.assertGreaterEqual(writes, 1)
        self.assertEqual(after["value"]["active_leases"], 200, "the newest state did not win")

    def test_05_fleet_pools_and_other_nodes(self):
        fake_lease = self.etcd.grant(60)
        remote = {"node": "fake-node", "pool_id": "remote-1", "ready": True, "live": True,
                  "url": "http://10.9.9.9:8080", "engine": "vllm", "engine_version": "0.5.0", "state": "ready",
                  "slots_total": 8, "slots_free": 6, "active_leases": 2, "last_error": None}
        for key, value in ((node_key("fake-node"), {"node": "fake-node", "version": "9.9.9", "devices": []}),
                           (pool_key("remote-1", "fake-node"), remote)):
            r = self.etcd.ctl("put", f"--lease={fake_lease}", key, json.dumps(value))
            self.assertEqual(r.returncode, 0, r.stderr)

        def has_remote():
            f = self.fleet_pools()
            return any(p["node"] == "fake-node" and p["pool_id"] == "remote-1" for p in f["pools"])
        self.assertTrue(th.wait_for(has_remote, timeout=5), self.fleet_pools())
        f = self.fleet_pools()
        self.assertEqual(f["fleet"], "connected")
        self.assertEqual(f["node"], NODE)
        self.assertGreater(f["revision"], 0)
        self.assertEqual([n["node"] for n in f["nodes"]], ["fake-node", NODE])
        pools = {(p["node"], p["pool_id"]): p for p in f["pools"]}
        self.assertIn((NODE, "p0"), pools)
        self.assertIn((NODE, "p-coal"), pools)
        self.assertEqual(pools[("fake-node", "remote-1")]["engine"], "vllm")
        self.assertEqual(pools[("fake-node", "remote-1")]["slots_free"], 6)

        # poolctl fleet: the table with a NODE column, and --json.
        if POOLCTL:
            p = subprocess.run([POOLCTL, "--user", "fleet"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p)
            lines = p.stdout.splitlines()
            self.assertRegex(lines[0], r"^NODE +POOL +STATE +READY +LIVE +LEASES +SLOTS +ENGINE +UNIT +PID +LAST ERROR")
            self.assertTrue(any(re.match(r"^fake-node +remote-1 +ready +yes +yes +2 +6/8 +0\.5\.0 ", l)
                                for l in lines), p.stdout)
            self.assertTrue(any(re.match(rf"^{NODE} +p0 +ready +yes +yes ", l) for l in lines), p.stdout)
            self.assertRegex(lines[-1], r"^\d+ pools listed, 2 nodes registered\.$")
            p = subprocess.run([POOLCTL, "--user", "fleet", "--json"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p)
            j = json.loads(p.stdout)
            self.assertIn(("fake-node", "remote-1"), [(x["node"], x["pool_id"]) for x in j])

        # Bad values from etcd: logged by key, and the cache keeps what it had.
        bad = [(pool_key("remote-1", "fake-node"), '{"ready":"yes"}', "ready must be a boolean"),
               (pool_key("remote-2", "fake-node"), "{not json", "value: invalid JSON at offset"),
               (pool_key("huge", "fake-node"), json.dumps({"x": "a" * 100000}), "more than the 65536"),
               (f"{PREFIX}pools/fake-node", "{}", "expected pools/<node>/<pool id>")]
        for key, value, _ in bad:
            r = self.etcd.ctl("put", f"--lease={fake_lease}", key, value)
            self.assertEqual(r.returncode, 0, r.stderr)
        for key, _, problem in bad:
            self.assertTrue(th.wait_for(lambda: f'Fleet: ignoring key "{key}"' in self.daemon.log(), timeout=5),
                            self.daemon.log()[-3000:])
            self.assertIn(problem, [l for l in self.daemon.log().splitlines() if f'ignoring key "{key}"' in l][-1])
        pools = {(p["node"], p["pool_id"]): p for p in self.fleet_pools()["pools"]}
        self.assertEqual(pools[("fake-node", "remote-1")]["ready"], True, "a bad value replaced a good one")
        self.assertNotIn(("fake-node", "remote-2"), pools)
        self.assertNotIn(("fake-node", "huge"), pools)

        # The other node's lease ends: its keys go from the cache.
        self.etcd.ctl("lease", "revoke", fake_lease)
        self.assertTrue(th.wait_for(lambda: not any(p["node"] == "fake-node" for p in self.fleet_pools()["pools"])
                                    and [n["node"] for n in self.fleet_pools()["nodes"]] == [NODE], timeout=5),
                        self.fleet_pools())

    def test_06_lease_revoked_is_granted_again(self):
        keys = self.keys()
        old = keys[node_key()]["lease"]
        mine = {k for k in keys if k.startswith(f"{PREFIX}pools/{NODE}/")}
        r = self.etcd.ctl("lease", "revoke", format(old, "x"))
        self.assertEqual(r.returncode, 0, r.stderr)
        t0 = time.monotonic()
        keys, _ = self.wait_keys(lambda k: node_key() in k and k[node_key()]["lease"] not in (0, old) and
                                 mine <= set(k), timeout=10)
        took = time.monotonic() - t0
        new = keys[node_key()]["lease"]
        for k in mine:
            self.assertEqual(keys[k]["lease"], new, k)
        figure(f"lease revoked from outside: new lease and every key rewritten after {took * 1000:.0f} ms "
               f"(keepalive every {TTL * 1000 // 3} ms)")
        self.assertIn("is gone (the keepalive said TTL 0): granting a new one", self.daemon.log())
        self.assertEqual(self.health()["fleet"], "connected")

    def test_07_etcd_outage(self):
        self.preload("p-out-stop")
        self.wait_keys(lambda k: pool_key("p-out-stop") in k)
        log_before = self.daemon.log()
        self.etcd.stop()
        took = self.wait_fleet_state("disconnected", timeout=10)
        figure(f"etcd stopped: FleetState disconnected after {took * 1000:.0f} ms")
        self.assertEqual(busctl_property("FleetState"), 's "disconnected"')

        # Local operation goes on.
        t0 = time.monotonic()
        self.preload("p-out-new")
        self.stop_pool("p-out-stop")
        figure(f"during the outage: a preload and a stop took {(time.monotonic() - t0) * 1000:.0f} ms")
        r = self.daemon.get("/pools")
        self.assert_json_response(r, 200)
        self.assertEqual({p["pool_id"]: p["state"] for p in r.json}["p-out-new"], "ready")
        r = subprocess.run(["busctl", "--user", "call", "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                            "org.llorch.PoolManager1.Manager", "ListPools"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The cache still answers, saying it is stale.
        self.assertEqual(self.fleet_pools()["fleet"], "disconnected")
        time.sleep(1.5)

        self.etcd.start()
        took = self.wait_fleet_state("connected", timeout=15)
        figure(f"etcd back: FleetState connected after {took * 1000:.0f} ms")
        keys, _ = self.wait_keys(lambda k: pool_key("p-out-new") in k and pool_key("p-out-stop") not in k and
                                 pool_key("p0") in k and node_key() in k)
        self.assertTrue(keys[pool_key("p-out-new")]["value"]["ready"])
        log = self.daemon.log()[len(log_before):]
        self.assertEqual(log.count("is not registered. Local operation continues"), 1, log)
        self.assertEqual(log.count(f'Fleet: node "{NODE}" registered in etcd'), 1, log)
        # And /fleet/pools is current again.
        self.assertTrue(th.wait_for(lambda: (NODE, "p-out-new") in
                                    [(p["node"], p["pool_id"]) for p in self.fleet_pools()["pools"]], timeout=5))

    def test_08_killed_daemon_keys_expire_engines_run(self):
        keys = self.keys()
        mine = {k for k in keys if k.startswith(f"{PREFIX}pools/{NODE}/")} | {node_key()}
        pools = [k.rsplit("/", 1)[1] for k in mine if "/pools/" in k]
        pids = {p: self.engine_pid(p) for p in pools}
        self.assertTrue(all(pids.values()), pids)
        th.systemctl("kill", "-s", "KILL", f"{UNIT}.service")
        t0 = time.monotonic()
        _, took = self.wait_keys(lambda k: not (mine & set(k)), timeout=TTL + 10, interval=0.02)
        took = time.monotonic() - t0
        figure(f"daemon SIGKILLed: its {len(mine)} keys vanished after {took * 1000:.0f} ms (LeaseTTL={TTL}s)")
        self.assertGreater(took, TTL * 0.5, "keys went before the lease could have expired")
        self.assertLess(took, TTL + 3)
        self.assertEqual({p: self.engine_pid(p) for p in pools}, pids, "an engine did not survive")
        self.__class__.pids = pids

    def test_09_restart_registers_again_within_a_second(self):
        th.systemctl("reset-failed", f"{UNIT}.service")
        pools = sorted(self.pids)
        wanted = {node_key()} | {pool_key(p) for p in pools}
        t0 = time.monotonic()
        self.assertEqual(self.daemon.start(), 0, self.daemon.log())
        t_ready = time.monotonic()
        keys, _ = self.wait_keys(lambda k: wanted <= set(k) and
                                 all(k[pool_key(p)]["value"].get("ready") for p in pools), timeout=10, interval=0.005)
        t_keys = time.monotonic()
        m = re.findall(r"Start-up complete after (\d+) ms", self.daemon.log())
        figure(f"restart: {len(pools)} pools re-registered (ready) {(t_keys - t_ready) * 1000:.0f} ms after READY=1, "
               f"{(t_keys - t0) * 1000:.0f} ms after launch (start-up itself: {m[-1] if m else '?'} ms)")
        self.assertLess(t_keys - t_ready, 1.0)
        self.assertEqual({p: self.engine_pid(p) for p in pools}, self.pids, "an engine was restarted")
        lease = keys[node_key()]["lease"]
        for k in wanted:
            self.assertEqual(keys[k]["lease"], lease, k)

    def test_10_exits_cleanly(self):
        # SIGTERM with requests in flight and the watch open: everything released (under ASan, a
        # leak or an error would make the exit status non-zero and print a report).
        self.assertEqual(th.stop_daemon_unit(f"{UNIT}.service").returncode, 0)
        log = self.daemon.log()
        self.assertNotRegex(log, r"Sanitizer|runtime error:", log[-3000:])
        status = th.unit_property(f"{UNIT}.service", "ExecMainStatus")
        self.assertIn(status, ("0", ""), log[-3000:])


class SecureTest(th.HttpTestCase):
    """etcd over TLS with client certificates, and etcd with authentication: TrustedCertificateFile=,
    CertificateFile=, KeyFile=, CredentialsFile= (and a KeyPrefix= of its own)."""

    def setUp(self):
        self.dir = os.path.join(th.RUNTIME, f"fleet-{self._testMethodName}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.etcd = self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.stop()
        th.stop_all_engines()
        if self.etcd:
            self.etcd.stop()

    def start_daemon(self, fleet):
        self.daemon = th.Daemon(UNIT + "-secure", extra_config="[Fleet]\nLeaseTTL=2s\nKeyPrefix=/llorch-test/\n" + fleet)
        self.assertEqual(self.daemon.start(), 0, self.daemon.log())

    def wait_connected(self, timeout=10):
        ok = th.wait_for(lambda: self.daemon.get("/health").json["fleet"] == "connected", timeout=timeout)
        self.assertTrue(ok, self.daemon.log()[-3000:])

    def preload_and_wait(self, pool, node):
        port = th.free_port()
        r = self.daemon.post(f"/pools/{pool}/preload", {"prepared": th.prepared(pool, port)}, timeout=60)
        self.assert_json_response(r, 200)
        key = f"/llorch-test/pools/{node}/{pool}"
        ok = th.wait_for(lambda: self.etcd.range("/llorch-test/").get(key, {}).get("value", {}).get("ready"),
                         timeout=5)
        self.assertTrue(ok, f"{self.etcd.range('/llorch-test/')}\n{self.daemon.log()[-3000:]}")

    def test_tls_client_certificate(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl is not installed")
        certs = etcd.make_certificates(self.dir)
        self.etcd = etcd.Etcd(self.dir, tls=certs)
        self.etcd.start()
        self.start_daemon(f"Etcd={self.etcd.url}\nNodeName=node-tls\nTrustedCertificateFile={certs['ca']}\n"
                          f"CertificateFile={certs['client_cert']}\nKeyFile={certs['client_key']}\n")
        self.wait_connected()
        self.preload_and_wait("p-tls", "node-tls")
        # The watch runs over TLS too.
        self.assertTrue(th.wait_for(lambda: ("node-tls", "p-tls") in
                                    [(p["node"], p["pool_id"]) for p in self.daemon.get("/fleet/pools").json["pools"]],
                                    timeout=5))

    def test_tls_without_client_certificate_is_refused(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl is not installed")
        certs = etcd.make_certificates(self.dir)
        self.etcd = etcd.Etcd(self.dir, tls=certs)
        self.etcd.start()
        self.start_daemon(f"Etcd={self.etcd.url}\nNodeName=node-tls\nTrustedCertificateFile={certs['ca']}\n")
        self.assertTrue(th.wait_for(lambda: "is not registered. Local operation continues" in self.daemon.log(),
                                    timeout=10), self.daemon.log()[-3000:])
        self.assertEqual(self.daemon.get("/health").json["fleet"], "disconnected")
        r = self.daemon.get("/fleet/pools")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.headers.get("Retry-After"), "1")

    def test_authentication(self):
        self.etcd = etcd.Etcd(self.dir)
        self.etcd.start()
        self.etcd.enable_auth("fleet", "s3cret")
        creds = os.path.join(self.dir, "credentials")
        with open(os.open(creds, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("fleet:s3cret\n")
        self.start_daemon(f"Etcd={self.etcd.url}\nNodeName=node-auth\nCredentialsFile={creds}\n")
        self.wait_connected()
        self.preload_and_wait("p-auth", "node-auth")

        # etcd's simple tokens live in its memory: after a restart the daemon's is refused, and it
        # authenticates again.
        self.etcd.stop()
        self.etcd.start()
        self.assertTrue(th.wait_for(lambda: "no longer takes our auth token" in self.daemon.log(), timeout=15),
                        self.daemon.log()[-3000:])
        self.wait_connected(timeout=15)
        self.daemon.post("/pools/p-auth/stop", timeout=60)
        self.assertTrue(th.wait_for(lambda: "/llorch-test/pools/node-auth/p-auth" not in
                                    self.etcd.range("/llorch-test/"), timeout=5))

        # A wrong password: disconnected, and the journal says why.
        self.daemon.stop()
        with open(creds, "w") as f:
            f.write("fleet:wrong\n")
        self.start_daemon(f"Etcd={self.etcd.url}\nNodeName=node-auth\nCredentialsFile={creds}\n")
        self.assertTrue(th.wait_for(lambda: "authentication failed, invalid user ID or password" in self.daemon.log(),
                                    timeout=10), self.daemon.log()[-3000:])
        self.assertEqual(self.daemon.get("/health").json["fleet"], "disconnected")


def main():
    if not etcd.available():
        print("1..0 # SKIP etcd and etcdctl are not installed (Debian: etcd-server, etcd-client)")
        return 77
    return th.run_tap(FleetTest, SecureTest)


if __name__ == "__main__":
    sys.exit(main())
