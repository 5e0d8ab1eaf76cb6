#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Start-up correctness (issue 18), against the real daemon inside tests/sandbox: the daemon is
# socket-activated (a .socket and a .service unit of the user manager) and bus-activated (an
# activation file for the session bus with SystemdService=), the way a system installation
# starts it. A request that starts the daemon while engines run must wait until they are
# re-adopted and then be answered with them: never 404 for a running pool, never 500 for a
# preload of a running pool, never an engine left untracked. Engine units without saved state
# are orphan pools. Prints TAP lines like test-http.py.
#
#   test-startup.py [ROUNDS]       ROUNDS kill/activate rounds (default 20)

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

ROUNDS = int(os.environ.get("STARTUP_ROUNDS", "20"))
N_POOLS = 10
SERVICE = "pmd-startup.service"
SOCKET = "pmd-startup.socket"


def user_unit_dir():
    d = os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")), "systemd", "user")
    os.makedirs(d, exist_ok=True)
    return d


def bus_service_dir():
    d = os.path.join(os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "dbus-1", "services")
    os.makedirs(d, exist_ok=True)
    return d


def busctl(*args):
    return subprocess.run(["busctl", "--user", *args], capture_output=True, text=True, timeout=60)


def main_pid(unit):
    return int(th.unit_property(unit, "MainPID") or 0)


class ActivatedDaemon:
    """pool-managerd as a socket- and bus-activated Type=notify service of the user manager."""

    def __init__(self, extra_config=""):
        self.port = th.free_port()
        self.dir, self.config = th.make_config("pmd-startup", "HealthInterval=50ms\n" + extra_config)
        env = {"POOL_MANAGERD_LOG_LEVEL": "debug", "POOL_MANAGERD_LOG_TARGET": "journal", **th.sanitizer_env()}
        env_lines = "".join(f"Environment={k}={v}\n" for k, v in env.items())
        units = user_unit_dir()
        with open(os.path.join(units, SOCKET), "w") as f:
            f.write(f"[Socket]\nListenStream=127.0.0.1:{self.port}\n")
        with open(os.path.join(units, SERVICE), "w") as f:
            f.write("[Unit]\nRequires=pmd-startup.socket\nAfter=pmd-startup.socket\n"
                    "[Service]\nType=notify\nNotifyAccess=main\nBusName=org.llorch.PoolManager1\n"
                    f"{env_lines}ExecStart={th.POOL_MANAGERD} --user --config={self.config}\n")
        with open(os.path.join(bus_service_dir(), "org.llorch.PoolManager1.service"), "w") as f:
            f.write("[D-BUS Service]\nName=org.llorch.PoolManager1\nExec=/bin/false\n"
                    f"SystemdService={SERVICE}\n")
        th.systemctl("daemon-reload")
        busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ReloadConfig")
        r = th.systemctl("start", SOCKET)
        if r.returncode != 0:
            raise RuntimeError(f"cannot start {SOCKET}: {r.stderr}")

    def kill(self):
        """kill -9 of the daemon; its socket stays with systemd, its engines keep running."""
        pid = main_pid(SERVICE)
        if pid:
            th.systemctl("kill", "-s", "KILL", SERVICE)
            th.wait_for(lambda: th.unit_property(SERVICE, "ActiveState") in ("failed", "inactive"), timeout=10)
        th.systemctl("reset-failed", SERVICE)
        assert th.unit_property(SERVICE, "ActiveState") in ("failed", "inactive"), th.unit_property(SERVICE, "ActiveState")

    def cleanup(self):
        th.stop_daemon_unit(SERVICE)
        th.systemctl("stop", SOCKET)
        th.systemctl("reset-failed", SERVICE, SOCKET)
        for path in (os.path.join(user_unit_dir(), SOCKET), os.path.join(user_unit_dir(), SERVICE),
                     os.path.join(bus_service_dir(), "org.llorch.PoolManager1.service")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        th.systemctl("daemon-reload")

    def log(self):
        return th.journal(SERVICE)

    def get(self, path, **kw):
        return th.request(self.port, "GET", path, **kw)

    def post(self, path, body=None, **kw):
        return th.request(self.port, "POST", path, body=body, **kw)


class StartupTest(th.HttpTestCase):
    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = ActivatedDaemon()
        cls.engines = {}
        for i in range(N_POOLS):
            pid = f"p{i}"
            port = th.free_port()
            cls.engines[pid] = th.prepared(pid, port, engine_version=f"fake-{i}")
            # The first one starts the daemon through its socket.
            r = cls.daemon.post(f"/pools/{pid}/preload", {"prepared": cls.engines[pid]})
            if r.status != 200:
                raise RuntimeError(f"preload of {pid}: {r}\n{cls.daemon.log()[-3000:]}")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()
        th.stop_all_engines()

    def engine_pids(self):
        return {pid: main_pid(f"pool-engine-{pid}.service") for pid in self.engines}

    def assert_all_tracked(self, pids):
        r = self.daemon.get("/pools")
        self.assert_json_response(r, 200)
        pools = {p["pool_id"]: p for p in r.json}
        for pid, engine_pid in pids.items():
            self.assertIn(pid, pools, r.json)
            self.assertEqual(pools[pid]["state"], "ready", pools[pid])
            self.assertEqual(pools[pid]["pid"], engine_pid, pools[pid])
            self.assertEqual(pools[pid]["engine_version"], self.engines[pid]["engine_version"], pools[pid])

    def test_1_activating_status_request_waits_for_readoption(self):
        pids = self.engine_pids()
        self.assertTrue(all(pids.values()), pids)
        for i in range(ROUNDS):
            self.daemon.kill()
            pool = f"p{i % N_POOLS}"
            r = self.daemon.get(f"/pools/{pool}/status", timeout=30)
            self.assert_json_response(r, 200)
            self.assertEqual(r.json["state"], "ready", f"round {i}: {r.json}")
            self.assertTrue(r.json["ready"], r.json)
            self.assertEqual(r.json["pid"], pids[pool], r.json)
        self.assert_all_tracked(pids)
        self.assertEqual(self.engine_pids(), pids, "an engine was restarted")

    def test_2_activating_preload_of_a_running_pool_is_409(self):
        pids = self.engine_pids()
        state_dir = os.path.join(self.daemon.dir, "state", "pools")
        for i in range(ROUNDS):
            self.daemon.kill()
            pool = f"p{i % N_POOLS}"
            with open(os.path.join(state_dir, f"{pool}.json")) as f:
                saved = json.load(f)
            other = dict(self.engines[pool], engine_version="rejected-version")
            r = self.daemon.post(f"/pools/{pool}/preload", {"prepared": other}, timeout=30)
            self.assert_error(r, 409, f"pool {pool} is already ready")
            with open(os.path.join(state_dir, f"{pool}.json")) as f:
                now = json.load(f)
            # (Re-adoption itself may refresh the supervision timestamps.)
            self.assertEqual((now["prepared"], now["running"]), (saved["prepared"], saved["running"]),
                             "the refused preload changed the saved state")
            r = self.daemon.get(f"/pools/{pool}/status")
            self.assertEqual(r.json["engine_version"], self.engines[pool]["engine_version"], r.json)
            self.assertEqual(r.json["pid"], pids[pool], r.json)
        self.assert_all_tracked(pids)
        # And stop still works: the engine was never lost.
        r = self.daemon.post("/pools/p0/stop", timeout=30)
        self.assert_json_response(r, 200)
        self.assertTrue(th.wait_for(lambda: not main_pid("pool-engine-p0.service"), timeout=10))
        r = self.daemon.post("/pools/p0/preload", {"prepared": self.engines["p0"]}, timeout=30)
        self.assert_json_response(r, 200)

    def test_3_bus_activating_call_lists_every_pool(self):
        pids = self.engine_pids()
        for i in range(max(ROUNDS // 4, 1)):
            self.daemon.kill()
            r = busctl("--json=short", "call", "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                       "org.llorch.PoolManager1.Manager", "ListPools")
            self.assertEqual(r.returncode, 0, r.stderr)
            paths = json.loads(r.stdout)["data"][0]
            self.assertEqual(len(paths), N_POOLS, f"round {i}: the activating ListPools returned {paths}")
        self.assertEqual(self.engine_pids(), pids)

    def test_4_orphan_unit_without_state(self):
        port = th.free_port()
        self.daemon.kill()
        subprocess.run(["systemd-run", "--user", "--quiet", "--unit=pool-engine-stray.service",
                        "-p", "Slice=pool-engines.slice", th.FAKE_ENGINE, "--port", str(port)], check=True)
        stray_pid = main_pid("pool-engine-stray.service")
        r = self.daemon.get("/pools/stray/status", timeout=30)
        self.assert_json_response(r, 200)
        self.assertEqual(r.json["state"], "orphan", r.json)
        self.assertEqual(r.json["pid"], stray_pid, r.json)
        self.assertEqual(r.json["unit"], "pool-engine-stray.service", r.json)
        self.assertFalse(r.json["ready"], r.json)
        self.assertIn("has no saved state", r.json["last_error"])
        # A preload of it is refused and changes nothing.
        r = self.daemon.post("/pools/stray/preload", {"prepared": th.prepared("stray", port)})
        self.assert_error(r, 409, "orphan engine unit pool-engine-stray.service")
        self.assertEqual(main_pid("pool-engine-stray.service"), stray_pid)
        self.assertFalse(os.path.exists(os.path.join(self.daemon.dir, "state", "pools", "stray.json")))
        # Stoppable like any pool.
        r = self.daemon.post("/pools/stray/stop", timeout=30)
        self.assert_json_response(r, 200)
        self.assertTrue(th.wait_for(lambda: th.unit_property("pool-engine-stray.service", "ActiveState")
                                    in ("inactive", "failed", ""), timeout=10))
        r = self.daemon.get("/pools/stray/status")
        self.assertEqual(r.json["state"], "stopped", r.json)
        # Now it can be preloaded.
        r = self.daemon.post("/pools/stray/preload", {"prepared": th.prepared("stray", port)}, timeout=30)
        self.assert_json_response(r, 200)
        th.systemctl("stop", "pool-engine-stray.service")

    def test_4b_damaged_saved_state_is_named(self):
        # A running unit whose saved state is damaged: an orphan whose LastError names the file;
        # a damaged state without a unit: a warning naming the file.
        port = th.free_port()
        state = os.path.join(self.daemon.dir, "state", "pools")
        self.daemon.kill()
        subprocess.run(["systemd-run", "--user", "--quiet", "--unit=pool-engine-dmg.service",
                        "-p", "Slice=pool-engines.slice", th.FAKE_ENGINE, "--port", str(port)], check=True)
        with open(os.path.join(state, "dmg.json"), "w") as f:
            f.write("{not json")
        with open(os.path.join(state, "ghost.json"), "w") as f:
            f.write('{"prepared": {"pool_id": "ghost"}}')
        try:
            r = self.daemon.get("/pools/dmg/status", timeout=30)
            self.assert_json_response(r, 200)
            self.assertEqual(r.json["state"], "orphan", r.json)
            self.assertIn(f"its saved state is unusable: {state}/dmg.json: ", r.json["last_error"])
            self.assertTrue(th.wait_for(lambda: f'Ignoring saved state of pool "ghost": {state}/ghost.json: '
                                        in self.daemon.log(), timeout=5), self.daemon.log()[-2000:])
        finally:
            th.systemctl("stop", "pool-engine-dmg.service")
            for name in ("dmg.json", "ghost.json"):
                os.unlink(os.path.join(state, name))

    def test_5_unit_that_appears_under_a_preload(self):
        # A unit of the pool's name that someone else started after start-up: the preload is
        # refused (409), the unit tracked as an orphan, no state written.
        port, own_port = th.free_port(), th.free_port()
        subprocess.run(["systemd-run", "--user", "--quiet", "--unit=pool-engine-late.service",
                        th.FAKE_ENGINE, "--port", str(own_port)], check=True)
        late_pid = main_pid("pool-engine-late.service")
        r = self.daemon.post("/pools/late/preload", {"prepared": th.prepared("late", port)}, timeout=30)
        self.assert_error(r, 409, "engine unit pool-engine-late.service is already loaded")
        self.assertEqual(main_pid("pool-engine-late.service"), late_pid)
        self.assertFalse(os.path.exists(os.path.join(self.daemon.dir, "state", "pools", "late.json")))
        r = self.daemon.get("/pools/late/status")
        self.assertEqual((r.json["state"], r.json["pid"]), ("orphan", late_pid), r.json)
        th.systemctl("stop", "pool-engine-late.service")
        self.assertTrue(th.wait_for(lambda: self.daemon.get("/pools/late/status").json["state"] == "stopped",
                                    timeout=10))

    def test_6_startup_timeout_answers_503_then_serves(self):
        # Re-adoption cannot finish while an engine's first probe hangs (SIGSTOPped engine: the
        # kernel still accepts its connections, nobody answers; a probe gives up after 1 s).
        th.stop_daemon_unit(SERVICE)
        with open(self.daemon.config, "a") as f:
            f.write("StartupTimeout=200ms\n")
        self.daemon.kill()
        frozen = main_pid("pool-engine-p5.service")
        os.kill(frozen, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            r = self.daemon.get("/pools/p1/status", timeout=30)
            took = time.monotonic() - t0
            self.assert_error(r, 503, "pool-managerd is starting")
            self.assertEqual(r.headers.get("Retry-After"), "1")
            self.assertGreaterEqual(took, 0.15, "answered before StartupTimeout=")
            self.assertTrue(th.wait_for(lambda: self.daemon.get("/pools/p1/status").status == 200, timeout=10))
            self.assertIn("Start-up not complete after StartupTimeout=200 ms", self.daemon.log())
        finally:
            os.kill(frozen, signal.SIGCONT)
        with open(self.daemon.config) as f:
            text = f.read().replace("StartupTimeout=200ms\n", "")
        with open(self.daemon.config, "w") as f:
            f.write(text)


def main():
    global ROUNDS
    if len(sys.argv) > 1:
        ROUNDS = int(sys.argv[1])
    return th.run_tap(StartupTest)


if __name__ == "__main__":
    sys.exit(main())
