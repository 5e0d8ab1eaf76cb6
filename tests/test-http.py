#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The HTTP API of pool-managerd, end to end, inside tests/sandbox: the daemon runs as a
# Type=notify user unit of a real systemd --user, engines are tests/fake-engine run as transient
# units, and every check goes through HTTP (plus systemctl and files for the facts behind it).
# Each refused request is also checked not to have changed the registry (GET /pools before and
# after). Prints TAP lines on stdout next to unittest's report on stderr. Needs $POOL_MANAGERD
# and $FAKE_ENGINE; exits 77 (skip) outside the sandbox.

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

POOL_MANAGERD = os.environ.get("POOL_MANAGERD")
FAKE_ENGINE = os.environ.get("FAKE_ENGINE")
RUNTIME = os.environ.get("XDG_RUNTIME_DIR")
TOKEN = "s3cret-token-for-the-test"

# The documented error vocabulary (org.llorch.PoolManager1(5), ERRORS): code -> HTTP status.
STATUS_OF_CODE = {
    "INVALID_REQUEST": 400, "INVALID_POOL_ID": 400, "INVALID_PREPARED_ENGINE": 422,
    "BINARY_NOT_FOUND": 422, "BINARY_NOT_EXECUTABLE": 422, "NO_SUCH_POOL": 404,
    "NOT_RUNNING": 409, "ALREADY_RUNNING": 409, "BUSY": 409, "DRAINING": 409, "ORPHAN_UNIT": 409,
    "PORT_IN_USE": 409, "HANDOFF_IN_USE": 409, "GPU_REQUIRED": 409, "INSUFFICIENT_VRAM": 409,
    "CANCELED": 409, "RELOAD_ABORTED": 409, "ENGINE_FAILED": 502, "HEALTH_TIMEOUT": 504,
    "RELOAD_FAILED": 502, "ACCESS_DENIED": 403, "STARTING": 503, "INVALID_CONFIGURATION": 422,
    "INTERNAL": 500, "UNAUTHORIZED": 401, "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408, "BODY_TOO_LARGE": 413, "TOO_MANY_CONNECTIONS": 503,
    "NO_SUCH_DEVICE": 404, "DEVICE_LOST": 409, "FLEET_OFF": 404, "FLEET_UNAVAILABLE": 503,
}


_ports_handed_out = set()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    # Below the ephemeral range, where the daemon's probe connections take their local ports
    # (see tests/free-port). Never the same port twice in one process: a port is free when
    # chosen, not yet bound, and two picked alike (Listen= and an engine's) would collide.
    while True:
        port = random.randrange(20000, 32000)
        if port in _ports_handed_out:
            continue
        _ports_handed_out.add(port)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
                return port
            except OSError:
                pass


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def systemctl(*args):
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True)


def stop_daemon_unit(unit):
    """Stops a unit that runs pool-managerd: SIGTERM alone, then systemctl stop (see tests/stop-daemon:
    systemd's SIGCONT after SIGTERM can hang an ASan build's exit). The CompletedProcess; its stdout
    is the seconds it took."""
    return subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "stop-daemon"), unit],
                          capture_output=True, text=True)


def unit_property(unit, prop):
    return systemctl("show", "-P", prop, unit).stdout.strip()


def journal(unit):
    return subprocess.run(["journalctl", "--no-pager", "-q", "-o", "cat", f"_SYSTEMD_USER_UNIT={unit}"],
                          capture_output=True, text=True, errors="backslashreplace").stdout


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


def request(port, method, path, body=None, token=None, headers=None, host="127.0.0.1", timeout=30):
    """One request on a fresh connection. body: bytes, str or a JSON-able object."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def prepared(pool_id, port, *flags, **extra):
    p = {"binary_path": FAKE_ENGINE, "flags": ["--port", str(port), *flags], "port": port,
         "pool_id": pool_id}
    p.update(extra)
    return p


def make_config(prefix, extra=""):
    """A directory with pools.d/ and pool-managerd.conf for a test daemon; returns (dir, conf)."""
    d = tempfile.mkdtemp(prefix=prefix + ".", dir=RUNTIME)
    os.mkdir(os.path.join(d, "pools.d"))
    conf = os.path.join(d, "pool-managerd.conf")
    with open(conf, "w") as f:
        f.write("[Manager]\n"
                f"PoolsDirectory={d}/pools.d\n"
                f"StateDirectory={d}/state\n"
                "GpuOnly=no\n"
                "EngineSandbox=container\n" + extra)
    return d, conf


def run_tap(*cases, needs=("POOL_MANAGERD", "FAKE_ENGINE")):
    """Runs the test cases in this order with TAP lines on stdout; returns the exit status."""
    if not (all(globals()[n] for n in needs) and RUNTIME and os.environ.get("DBUS_SESSION_BUS_ADDRESS")):
        print(f"1..0 # SKIP run inside tests/sandbox with {' and '.join(needs)} set")
        return 77
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for case in cases:
        suite.addTests(loader.loadTestsFromTestCase(case))
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=TapResult)
    result = runner.run(suite)
    print(f"1..{TapResult.n}", flush=True)
    return 0 if result.wasSuccessful() else 1


class Daemon:
    """pool-managerd as a transient Type=notify user unit with its own configuration."""

    def __init__(self, unit, listen=None, env=None, extra_config="", properties=()):
        self.unit = unit
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.env = dict(env or {})
        self.properties = list(properties)     # more unit properties, "Name=value"
        self.dir, self.config = make_config(unit, f"HealthInterval=100ms\nListen={self.listen}\n" + extra_config)

    def start(self):
        """Returns systemd-run's exit status: 0 once the daemon sent READY=1."""
        env = {"POOL_MANAGERD_LOG_LEVEL": "debug", "POOL_MANAGERD_LOG_TARGET": "journal",
               **sanitizer_env(), **self.env}
        args = ["systemd-run", "--user", "--quiet", f"--unit={self.unit}", "-p", "Type=notify",
                "-p", "NotifyAccess=main"]
        for p in self.properties:
            args += ["-p", p]
        for k, v in env.items():
            args += ["-E", f"{k}={v}"]
        args += [POOL_MANAGERD, "--user", f"--config={self.config}"]
        return subprocess.run(args, capture_output=True, text=True).returncode

    def stop(self):
        # A slow stop is reported with the daemon's last lines; one that needed SIGKILL (no exit
        # within 30 s of SIGTERM) fails the test. (ASan rounds used to lose 90 s per such stop to
        # systemd's SIGCONT during LeakSanitizer's exit check, unnoticed: see tests/stop-daemon.)
        t0 = time.monotonic()
        r = stop_daemon_unit(self.unit)
        took = time.monotonic() - t0
        result = unit_property(self.unit, "Result")
        if took > 10 or r.returncode != 0:
            lines = subprocess.run(["journalctl", "--no-pager", "-q", "-n", "40", "-o", "short-monotonic",
                                    f"_SYSTEMD_USER_UNIT={self.unit}.service"], capture_output=True, text=True,
                                   errors="backslashreplace").stdout.splitlines()
            print(f"# {self.unit} took {took:.1f} s to stop (Result={result}); its last journal lines:\n# "
                  + "\n# ".join(lines), flush=True)
        systemctl("reset-failed", self.unit)
        if r.returncode == 124:
            raise AssertionError(f"{self.unit} did not exit within 30 s of SIGTERM: {r.stderr.strip()}")

    def log(self):
        return journal(f"{self.unit}.service")
    def get(self, path, **kw):
        return request(self.port, "GET", path, **kw)

    def post(self, path, body=None, **kw):
        return request(self.port, "POST", path, body=body, **kw)


def start_daemon(unit, **kw):
    """A started Daemon (arguments as Daemon's); RuntimeError with its log when it did not start."""
    d = Daemon(unit, **kw)
    if d.start() != 0:
        raise RuntimeError("daemon did not start:\n" + d.log())
    return d


def stop_daemon(d):
    """Stops the daemon, then the engines it left running (they belong to systemd)."""
    d.stop()
    stop_all_engines()


def sanitizer_env():
    """ASAN_OPTIONS/UBSAN_OPTIONS reach a daemon under systemd only when passed on."""
    return {k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}


def stop_all_engines():
    units = subprocess.run(["systemctl", "--user", "list-units", "--plain", "--no-legend", "--all",
                            "pool-engine-*"], capture_output=True, text=True).stdout.split()
    units = [u for u in units if u.startswith("pool-engine-") and u.endswith(".service")]
    if units:
        systemctl("stop", *units)


class HttpTestCase(unittest.TestCase):
    def assert_json_response(self, r, status, body=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("Content-Type"), "application/json", r.headers)
        self.assertEqual(r.headers.get("Cache-Control"), "no-store", r.headers)
        if body is not None:
            self.assertEqual(r.json, body, r)

    def assert_error(self, r, status, contains, code=None):
        """Every error is {"error": message, "code": CODE}; the code decides the status."""
        self.assert_json_response(r, status)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(list(r.json), ["error", "code"], r)
        self.assertIn(contains, r.json["error"], r)
        self.assertRegex(r.json["code"], r"^[A-Z_]+$", r)
        self.assertEqual(STATUS_OF_CODE[r.json["code"]], status, r)
        if code is not None:
            self.assertEqual(r.json["code"], code, r)


class ApiTest(HttpTestCase):
    """One daemon without a token; tests run in name order and build on each other."""

    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon("pool-managerd-http-test")
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        stop_all_engines()

    def pools(self):
        r = self.daemon.get("/pools")
        self.assert_json_response(r, 200)
        return r.json

    def assert_refused(self, method, path, body, status, contains, **kw):
        """A refused request: status, error text, and the registry as it was."""
        before = self.pools()
        r = request(self.daemon.port, method, path, body=body, **kw)
        self.assert_error(r, status, contains)
        self.assertEqual(self.pools(), before, f"{method} {path} changed the registry")
        return r

    def preload(self, pool_id, body, **kw):
        return self.daemon.post(f"/pools/{pool_id}/preload", body, **kw)

    # --- basic routes ---

    def test_00_health(self):
        r = self.daemon.get("/health")
        self.assert_json_response(r, 200)
        self.assertEqual(r.json["status"], "ok")
        self.assertRegex(r.json["version"], r"^\d+\.\d+")

    def test_01_pools_empty(self):
        self.assertEqual(self.pools(), [])

    def test_02_status_unknown_pool(self):
        self.assert_refused("GET", "/pools/nope/status", None, 404, "pool nope not found")
        self.assert_refused("POST", "/pools/nope/status", None, 404, "pool nope not found")

    def test_03_unknown_route(self):
        r = self.assert_refused("GET", "/nope", None, 404, "no such route")
        self.assertEqual(r.json["error"], "no such route: GET /nope")
        self.assert_refused("GET", "/pools/x/bogus", None, 404, "no such route: GET /pools/x/bogus")
        self.assert_refused("GET", "/pools/", None, 404, "no such route")

    def test_04_wrong_method(self):
        r = self.assert_refused("PUT", "/pools", None, 405, "method PUT not allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")
        r = self.assert_refused("GET", "/pools/x/preload", None, 405, "not allowed")
        self.assertEqual(r.headers.get("Allow"), "POST")
        r = self.assert_refused("PUT", "/pools/x/leases", None, 405, "not allowed")
        self.assertEqual(r.headers.get("Allow"), "POST, DELETE")
        r = self.assert_refused("DELETE", "/health", None, 405, "not allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")

    # --- bad input ---

    def test_10_bad_json(self):
        r = self.assert_refused("POST", "/pools/p/preload", '{"prepared": ', 400, "invalid JSON at offset")
        self.assertTrue(r.json["error"].startswith("invalid JSON at offset"), r)
        self.assert_refused("POST", "/pools/p/preload", '{"a" 1}', 400, "invalid JSON at offset")
        self.assert_refused("POST", "/pools/p/preload", '{"prepared": {}} trailing', 400, "invalid JSON")
        self.assert_refused("POST", "/pools/p/preload", "", 400, "invalid JSON")
        self.assert_refused("POST", "/pools/p/preload", b'{"a\x00": 1}', 400, "invalid JSON")
        self.assert_refused("POST", "/pools/p/preload", b'{"prepared": "\\u0000"}', 400, "invalid JSON")
        self.assert_refused("POST", "/pools/p/drain", "[", 400, "invalid JSON at offset")

    def test_11_not_an_object(self):
        for body in ("[]", "null", "42", '"prepared"'):
            self.assert_refused("POST", "/pools/p/preload", body, 400, "request body must be a JSON object")
        self.assert_refused("POST", "/pools/p/drain", "[1]", 400, "must be a JSON object")

    def test_12_bad_preload_body(self):
        port = free_port()
        good = prepared("p", port)
        self.assert_refused("POST", "/pools/p/preload", {}, 400, "prepared: is required")
        self.assert_refused("POST", "/pools/p/preload", {"prepared": good, "extra": 1}, 400,
                            'unknown key "extra"')
        self.assert_refused("POST", "/pools/p/preload", {"prepared": 5}, 400, "prepared")
        # A well-formed request whose PreparedEngine is wrong: 422 INVALID_PREPARED_ENGINE.
        for bad, what in ((dict(good, bogus=True), 'prepared: unknown key "bogus"'),
                          (dict(good, port=0), "prepared: port"),
                          (dict(good, port=70000), "prepared: port"),
                          (dict(good, port="80"), "prepared: port"),
                          (dict(good, binary_path="rel/x"), "prepared: binary_path"),
                          (dict(good, health={"timeout_ms": 1}), "health.timeout_ms")):
            r = self.assert_refused("POST", "/pools/p/preload", {"prepared": bad}, 422, what)
            self.assertEqual(r.json["code"], "INVALID_PREPARED_ENGINE")
        # Nothing was asked of systemd.
        self.assertEqual(unit_property("pool-engine-p.service", "LoadState"), "not-found")

    def test_13_bad_pool_id_in_path(self):
        good = prepared("p", free_port())
        for pid in ("..", "a%2Fb", "a" * 70, "-x", "%00", "a%zz", "a%2"):
            self.assert_refused("POST", f"/pools/{pid}/preload", {"prepared": good}, 400, "invalid pool id")
            self.assert_refused("GET", f"/pools/{pid}/status", None, 400, "invalid pool id")
        r = self.assert_refused("GET", "/pools/a%2Fb/status", None, 400, "invalid pool id")
        self.assertIn('"a/b"', r.json["error"])
        self.assert_refused("POST", "/pools/../leases", None, 400, 'invalid pool id ".."')

    def test_14_path_body_mismatch(self):
        r = self.assert_refused("POST", "/pools/p/preload", {"prepared": prepared("q", free_port())}, 422,
                                "differs from prepared.pool_id")
        self.assertIn("(p)", r.json["error"])
        self.assertIn("(q)", r.json["error"])

    def test_15_body_too_large(self):
        big = b'{"prepared": "' + b"a" * (70 * 1024) + b'"}'
        r = self.assert_refused("POST", "/pools/p/preload", big, 413, "request body too large")
        self.assertEqual(r.json, {"error": "request body too large (limit 65536 bytes)", "code": "BODY_TOO_LARGE"})
        self.assert_refused("POST", "/pools/p/stop", b" " * (70 * 1024), 413, "limit 65536 bytes")
        # Exactly at the limit is fine (and then refused for what it is).
        at_limit = b'{"prepared": {}}' + b" " * (65536 - 16)
        self.assert_refused("POST", "/pools/p/preload", at_limit, 422, "prepared")
        # A client that waits for "100 Continue" gets the 413 before sending a huge body.
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as s:
            s.sendall(b"POST /pools/p/preload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            head = b""
            while b"}" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            head = head.decode()
        self.assertTrue(head.startswith("HTTP/1.1 413 "), head)
        self.assertIn('{"error":"request body too large (limit 65536 bytes)","code":"BODY_TOO_LARGE"}', head)
        # A chunked body of 10 MB announces no length: read to its end and answered 413 too.
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=30) as s:
            s.sendall(b"POST /pools/p/preload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"a" * 65536
            for _ in range(160):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
            answer = b""
            while b"}" not in answer:
                got = s.recv(4096)
                if not got:
                    break
                answer += got
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:200])
        self.assertIn(b'{"error":"request body too large (limit 65536 bytes)","code":"BODY_TOO_LARGE"}', answer)
        # The daemon lives on.
        self.assert_json_response(self.daemon.get("/health"), 200)

    def test_16_parameterless_routes_take_no_parameters(self):
        self.assert_refused("POST", "/pools/p/stop", {"force": True}, 400, "takes no parameters")
        self.assert_refused("POST", "/pools/p/leases", "nonsense", 400, "invalid JSON")

    def test_17_bad_drain_body(self):
        for body in ({}, {"deadline_ms": -1}, {"deadline_ms": "5"}, {"deadline_ms": 1.5},
                     {"deadline_ms": 5, "x": 1}):
            self.assert_refused("POST", "/pools/p/drain", body, 400, "deadline_ms" if "x" not in body else "x")

    def test_18_bad_reload_body(self):
        self.assert_refused("POST", "/pools/p/reload", {"prepared": {"pool_id": "p"}}, 422, "prepared:")
        self.assert_refused("POST", "/pools/p/reload", {"prepared": prepared("q", free_port())}, 422,
                            "differs from prepared.pool_id")

    def test_19_unknown_pool_operations(self):
        self.assert_refused("POST", "/pools/ghost/stop", None, 404, "pool ghost not found")
        self.assert_refused("POST", "/pools/ghost/leases", None, 404, "pool ghost not found")
        self.assert_refused("DELETE", "/pools/ghost/leases", None, 404, "pool ghost not found")
        self.assert_refused("POST", "/pools/ghost/drain", {"deadline_ms": 0}, 404, "pool ghost not found")
        self.assert_refused("POST", "/pools/ghost/reload", {"prepared": prepared("ghost", free_port())}, 404,
                            "pool ghost not found")

    # --- preload ---

    def test_20_preload(self):
        port = free_port()
        t0 = time.monotonic()
        r = self.preload("alpha", {"prepared": prepared("alpha", port, "--ready-after=300",
                                                        engine_version="fake-1", slots_total=2)})
        elapsed = time.monotonic() - t0
        self.assert_json_response(r, 200)
        self.assertEqual(sorted(r.json), ["handoff_path", "pid", "pool_id"])
        self.assertEqual(r.json["pool_id"], "alpha")
        self.assertGreaterEqual(elapsed, 0.3, "answered before the engine was ready")
        main_pid = int(unit_property("pool-engine-alpha.service", "MainPID"))
        self.assertEqual(r.json["pid"], main_pid)
        self.assertTrue(os.path.isfile(r.json["handoff_path"]), r.json)
        with open(r.json["handoff_path"]) as f:
            self.assertEqual(json.load(f)["pid"], main_pid)

        r = self.daemon.get("/pools/alpha/status")
        self.assert_json_response(r, 200)
        s = r.json
        self.assertEqual(sorted(s), sorted([
            "pool_id", "live", "ready", "active_leases", "engine_version", "last_error", "draining",
            "slots_total", "slots_free", "device_mask", "unit", "pid", "url", "state", "handoff_path",
            "last_heartbeat_ms", "crash_count", "restart_count", "backoff_ms", "next_restart_usec",
            "circuit_state", "replica_id", "last_drain", "devices", "vram_required_bytes", "vram_used_bytes",
            "tensor_split", "placement_warning"]))
        self.assertIsNone(s["last_drain"])
        # No mask: no placement to show.
        self.assertEqual([s[k] for k in ("devices", "vram_required_bytes", "vram_used_bytes", "tensor_split",
                                         "placement_warning")], [None] * 5)
        self.assertEqual((s["pool_id"], s["live"], s["ready"], s["state"]), ("alpha", True, True, "ready"))
        self.assertEqual((s["engine_version"], s["slots_total"], s["slots_free"]), ("fake-1", 2, 2))
        self.assertEqual((s["pid"], s["unit"]), (main_pid, "pool-engine-alpha.service"))
        self.assertEqual(s["url"], f"http://127.0.0.1:{port}")
        self.assertIsNone(s["last_error"])
        self.assertIsNone(s["device_mask"])
        self.assertFalse(s["draining"])
        self.assertEqual(s["active_leases"], 0)
        self.assertIsInstance(s["last_heartbeat_ms"], int)
        # POST works too, and /pools lists the same object.
        self.assertEqual(self.daemon.post("/pools/alpha/status").json, s)
        self.assertEqual(self.pools(), [s])

    def test_21_double_preload(self):
        r = self.assert_refused("POST", "/pools/alpha/preload",
                                {"prepared": prepared("alpha", free_port())}, 409, "already")
        self.assertEqual(r.json["error"], "pool alpha is already ready")

    def test_22_health_timeout(self):
        r = self.preload("slow", {"prepared": prepared("slow", free_port(), "--never-ready",
                                                       health={"timeout_ms": 500})})
        self.assert_error(r, 504, "health check timed out", "HEALTH_TIMEOUT")
        self.assertTrue(r.json["error"].startswith("preload failed: health check timed out"), r)
        s = self.daemon.get("/pools/slow/status").json
        self.assertEqual((s["state"], s["ready"]), ("failed", False))
        self.assertIn("health check timed out", s["last_error"])
        # The engine that never became ready was stopped before the answer.
        self.assertNotEqual(systemctl("-q", "is-active", "pool-engine-slow.service").returncode, 0)

    def test_23_missing_binary(self):
        body = {"prepared": dict(prepared("nobin", free_port()), binary_path="/nonexistent/engine")}
        r = self.preload("nobin", body)
        # The caller's mistake: 422 with its code, and nothing changed (no pool, no unit).
        self.assert_error(r, 422, "", "BINARY_NOT_FOUND")
        self.assertEqual(r.json["error"], "binary_path: engine binary not found: /nonexistent/engine")
        self.assertEqual(self.daemon.get("/pools/nobin/status").status, 404)
        self.assertEqual(unit_property("pool-engine-nobin.service", "LoadState"), "not-found")

    def test_23b_directory_or_plain_file_as_binary(self):
        # Caught before a unit is created, not by systemd as 203/EXEC.
        plain = os.path.join(self.daemon.dir, "not-executable")
        with open(plain, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(plain, 0o644)
        for pool_id, path, why in (("dirbin", self.daemon.dir, "is a directory, not a program"),
                                   ("plainbin", plain, "is not executable")):
            r = self.preload(pool_id, {"prepared": dict(prepared(pool_id, free_port()), binary_path=path)})
            self.assert_error(r, 422, f"binary_path: engine binary {path} {why}", "BINARY_NOT_EXECUTABLE")
            self.assertEqual(unit_property(f"pool-engine-{pool_id}.service", "LoadState"), "not-found")
            self.assertEqual(self.daemon.get(f"/pools/{pool_id}/status").status, 404)

    def test_24_early_exit(self):
        r = self.preload("quitter", {"prepared": prepared("quitter", free_port(), "--ready-after=5000",
                                                          "--exit-after=200", "--exit-code=3")})
        self.assert_error(r, 502, "before becoming ready", "ENGINE_FAILED")
        self.assertTrue(r.json["error"].startswith("preload failed: engine"), r)
        self.assertEqual(self.daemon.get("/pools/quitter/status").json["state"], "failed")

    def test_25_long_preload_does_not_block(self):
        result = {}

        def run():
            result["r"] = self.preload("lazy", {"prepared": prepared("lazy", free_port(), "--ready-after=5000")})

        t = threading.Thread(target=run)
        t0 = time.monotonic()
        t.start()
        self.assertTrue(wait_for(lambda: (self.daemon.get("/pools/lazy/status").json or {}).get("state")
                                 in ("starting", "probing"), timeout=5))
        latencies = []
        while time.monotonic() - t0 < 4.0:
            for path in ("/health", "/pools/lazy/status"):
                t1 = time.monotonic()
                r = self.daemon.get(path)
                latencies.append(time.monotonic() - t1)
                self.assertEqual(r.status, 200, r)
            time.sleep(0.02)
        self.assertTrue(t.is_alive(), "the preload answered before the engine was ready")
        t.join(30)
        self.assert_json_response(result["r"], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 5.0)
        worst = max(latencies)
        print(f"# long preload: {len(latencies)} requests meanwhile, max latency {worst * 1000:.1f} ms",
              flush=True)
        self.assertLess(worst, 0.1)

    def test_26_client_gone_during_preload(self):
        port = free_port()
        body = json.dumps({"prepared": prepared("gone", port, "--ready-after=700")}).encode()
        with socket.create_connection(("127.0.0.1", self.daemon.port)) as s:
            s.sendall(b"POST /pools/gone/preload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.assertTrue(wait_for(lambda: (self.daemon.get("/pools/gone/status").json or {}).get("state")
                                     in ("starting", "probing"), timeout=5))
        # The preload goes on without its client; the daemon is unharmed.
        self.assertTrue(wait_for(lambda: self.daemon.get("/pools/gone/status").json["state"] == "ready",
                                 timeout=10))
        self.assert_json_response(self.daemon.get("/health"), 200)

    def test_27_stop_during_preload(self):
        result = {}

        def run():
            result["r"] = self.preload("cut", {"prepared": prepared("cut", free_port(), "--ready-after=5000")})

        t = threading.Thread(target=run)
        t.start()
        self.assertTrue(wait_for(lambda: (self.daemon.get("/pools/cut/status").json or {}).get("state")
                                 in ("starting", "probing"), timeout=5))
        r = self.daemon.post("/pools/cut/stop")
        self.assert_json_response(r, 200, {"pool_id": "cut", "stopped": True})
        t.join(10)
        self.assert_error(result["r"], 409, "preload canceled: the pool was stopped", "CANCELED")

    # --- leases, stop, drain, reload ---

    def test_30_leases(self):
        r = self.daemon.post("/pools/alpha/leases")
        self.assert_json_response(r, 200, {"pool_id": "alpha", "active_leases": 1})
        r = self.daemon.post("/pools/alpha/leases", "{}")
        self.assert_json_response(r, 200, {"pool_id": "alpha", "active_leases": 2})
        self.assertEqual(self.daemon.get("/pools/alpha/status").json["active_leases"], 2)
        r = request(self.daemon.port, "DELETE", "/pools/alpha/leases")
        self.assert_json_response(r, 200, {"pool_id": "alpha", "active_leases": 1})
        r = request(self.daemon.port, "DELETE", "/pools/alpha/leases")
        self.assert_json_response(r, 200, {"pool_id": "alpha", "active_leases": 0})
        r = request(self.daemon.port, "DELETE", "/pools/alpha/leases")
        self.assert_json_response(r, 200, {"pool_id": "alpha", "active_leases": 0})

    def test_31_reload_and_rollback(self):
        old_pid = int(unit_property("pool-engine-alpha.service", "MainPID"))
        # A good new engine: 200 once it serves, new version, new process.
        port = free_port()
        r = self.daemon.post("/pools/alpha/reload",
                             {"prepared": prepared("alpha", port, "--ready-after=200", engine_version="fake-2")})
        self.assert_json_response(r, 200, {"pool_id": "alpha", "success": True, "rolled_back": False,
                                           "engine_version": "fake-2", "error": None})
        new_pid = int(unit_property("pool-engine-alpha.service", "MainPID"))
        self.assertNotEqual(new_pid, old_pid)
        s = self.daemon.get("/pools/alpha/status").json
        self.assertEqual((s["ready"], s["engine_version"], s["pid"], s["draining"]), (True, "fake-2", new_pid, False))
        self.assertEqual(request(port, "GET", "/health").status, 200)

        # A bad new engine: it exits before ready, the old one is started again and serves.
        r = self.daemon.post("/pools/alpha/reload",
                             {"prepared": prepared("alpha", free_port(), "--never-ready", "--exit-after=200",
                                                   "--exit-code=3", engine_version="fake-bad")})
        self.assert_json_response(r, 502)
        self.assertEqual((r.json["success"], r.json["rolled_back"], r.json["engine_version"], r.json["code"]),
                         (False, True, "fake-2", "RELOAD_FAILED"), r.json)
        self.assertIn("exited with status 3", r.json["error"])
        s = self.daemon.get("/pools/alpha/status").json
        self.assertEqual((s["ready"], s["engine_version"]), (True, "fake-2"), s)
        self.assertEqual(request(port, "GET", "/health").status, 200, "the old engine does not serve again")

    def test_31_reload_refused(self):
        self.assert_refused("POST", "/pools/ghost/reload", {"prepared": prepared("ghost", free_port())}, 404,
                            "not found")
        self.assert_refused("POST", "/pools/alpha/drain", {"deadline_ms": "soon"}, 400, "deadline_ms")

    def test_32_stop(self):
        r = self.daemon.post("/pools/alpha/stop")
        self.assert_json_response(r, 200, {"pool_id": "alpha", "stopped": True})
        self.assertNotEqual(systemctl("-q", "is-active", "pool-engine-alpha.service").returncode, 0)
        s = self.daemon.get("/pools/alpha/status").json
        self.assertEqual((s["state"], s["live"], s["ready"]), ("stopped", False, False))
        r = self.assert_refused("POST", "/pools/alpha/stop", None, 409, "pool alpha is not running")
        self.assertEqual(r.json["error"], "pool alpha is not running (stopped)")

    def test_33_preload_again_after_stop(self):
        r = self.preload("alpha", {"prepared": prepared("alpha", free_port())})
        self.assert_json_response(r, 200)
        self.assertEqual(r.json["pid"], int(unit_property("pool-engine-alpha.service", "MainPID")))

    def test_34_drain(self):
        self.assert_json_response(self.daemon.post("/pools/alpha/leases"), 200, {"pool_id": "alpha",
                                                                                  "active_leases": 1})
        r = self.daemon.post("/pools/alpha/drain?wait=false", {"deadline_ms": 10000})
        self.assert_json_response(r, 202)
        s = self.daemon.get("/pools/alpha/status").json
        self.assertEqual((s["draining"], s["ready"]), (True, True))
        # New leases refused while draining, releases allowed; the last release stops it.
        self.assert_refused("POST", "/pools/alpha/leases", None, 409, "draining")
        self.assert_json_response(request(self.daemon.port, "DELETE", "/pools/alpha/leases"), 200,
                                  {"pool_id": "alpha", "active_leases": 0})
        self.assertTrue(wait_for(lambda: self.daemon.get("/pools/alpha/status").json["state"] == "stopped",
                                 timeout=10))
        s = self.daemon.get("/pools/alpha/status").json
        self.assertEqual((s["draining"], s["live"], s["ready"]), (False, False, False), s)
        # The outcome is kept as the pool's last drain.
        self.assertEqual((s["last_drain"]["force_stopped"], s["last_drain"]["final_lease_count"]), (False, 0), s)
        # Preload it again for the tests that follow.
        self.assert_json_response(self.preload("alpha", {"prepared": prepared("alpha", free_port())}), 200)
        # A waiting drain answers with the outcome, forced at the deadline.
        self.daemon.post("/pools/alpha/leases")
        r = self.daemon.post("/pools/alpha/drain", {"deadline_ms": 300})
        self.assert_json_response(r, 200)
        self.assertEqual((r.json["force_stopped"], r.json["final_lease_count"]), (True, 1), r.json)
        self.assertGreaterEqual(r.json["duration_ms"], 290)
        self.assert_json_response(self.preload("alpha", {"prepared": prepared("alpha", free_port())}), 200)
        self.assert_json_response(request(self.daemon.port, "DELETE", "/pools/alpha/leases"), 200)

    def test_40_requests_are_logged_at_debug(self):
        self.assertTrue(wait_for(lambda: "HTTP GET /health from 127.0.0.1:" in self.daemon.log(), timeout=5))
        self.assertIn(f"Listening on http://127.0.0.1:{self.daemon.port}", self.daemon.log())

    def test_99_shutdown_with_a_pending_preload(self):
        result = {}

        def run():
            try:
                result["r"] = self.preload("late", {"prepared": prepared("late", free_port(),
                                                                         "--ready-after=10000")})
            except (OSError, http.client.HTTPException) as e:
                result["e"] = e

        t = threading.Thread(target=run)
        t.start()
        self.assertTrue(wait_for(lambda: (self.daemon.get("/pools/late/status").json or {}).get("state")
                                 in ("starting", "probing"), timeout=5))
        stop_daemon_unit(self.daemon.unit)
        t.join(10)
        self.assertFalse(t.is_alive())
        # Either an answer or a closed connection, but the daemon exited cleanly (no MHD panic).
        if "r" in result:
            self.assert_error(result["r"], 409, "daemon shutting down", "CANCELED")
        self.assertEqual(unit_property(self.daemon.unit, "ExecMainStatus"), "0", self.daemon.log()[-3000:])
        self.assertEqual(unit_property(self.daemon.unit, "Result"), "success")


class AuthTest(HttpTestCase):
    """A second daemon (after the first one is gone: one bus name) with LLORCH_API_TOKEN."""

    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon("pool-managerd-http-auth-test", env={"LLORCH_API_TOKEN": TOKEN})
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        stop_all_engines()

    def assert_unauthorized(self, r):
        self.assert_json_response(r, 401, {"error": "unauthorized", "code": "UNAUTHORIZED"})
        self.assertEqual(r.headers.get("WWW-Authenticate"), "Bearer")

    def test_health_needs_no_token(self):
        self.assert_json_response(self.daemon.get("/health"), 200)
        self.assert_json_response(self.daemon.get("/health", token="wrong"), 200)

    def test_wrong_method_on_health_is_405_without_token(self):
        # /health is public: nothing to hide, so a wrong method is 405 with Allow:, not 401.
        for method in ("POST", "DELETE", "PUT"):
            r = request(self.daemon.port, method, "/health")
            self.assert_error(r, 405, "method %s not allowed for /health (allowed: GET)" % method)
            self.assertEqual(r.headers.get("Allow"), "GET", r.headers)
        # Other paths still reveal nothing without the token.
        self.assert_unauthorized(request(self.daemon.port, "PUT", "/pools"))

    def test_missing_token(self):
        self.assert_unauthorized(self.daemon.get("/pools"))
        self.assert_unauthorized(self.daemon.get("/pools/x/status"))
        self.assert_unauthorized(self.daemon.post("/pools/x/leases"))
        # Nothing is revealed without the token, not even which routes exist.
        self.assert_unauthorized(self.daemon.get("/nope"))
        self.assert_unauthorized(request(self.daemon.port, "PUT", "/pools"))

    def test_wrong_token(self):
        for value in ("Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}",
                      TOKEN, "Bearer ", "Bearer"):
            r = self.daemon.get("/pools", headers={"Authorization": value})
            self.assert_unauthorized(r)

    def test_refused_preload_changes_nothing(self):
        r = self.daemon.post("/pools/x/preload", {"prepared": prepared("x", free_port())})
        self.assert_unauthorized(r)
        self.assert_json_response(self.daemon.get("/pools", token=TOKEN), 200, [])

    def test_right_token(self):
        self.assert_json_response(self.daemon.get("/pools", token=TOKEN), 200, [])
        self.assert_json_response(self.daemon.get("/pools", headers={"Authorization": f"bearer {TOKEN}"}), 200)
        r = self.daemon.get("/pools/x/status", token=TOKEN)
        self.assert_error(r, 404, "pool x not found")
        r = self.daemon.post("/pools/../preload", {}, token=TOKEN)
        self.assert_error(r, 400, "invalid pool id")

    def test_auth_failures_logged_without_the_token(self):
        self.daemon.get("/pools", token=TOKEN + "-guess")
        self.assertTrue(wait_for(lambda: "unauthorized" in self.daemon.log(), timeout=5))
        log = self.daemon.log()
        line = [l for l in log.splitlines() if "unauthorized" in l][-1]
        self.assertIn("from 127.0.0.1:", line)
        self.assertNotIn(TOKEN, log)


class StartupTest(HttpTestCase):
    """Start-up refusals: clear errors naming the address or the file."""

    def start_failing(self, daemon):
        try:
            self.assertNotEqual(daemon.start(), 0)
            self.assertTrue(wait_for(lambda: "Refusing" in daemon.log() or "token file" in daemon.log(),
                                     timeout=5))
            return daemon.log()
        finally:
            daemon.stop()

    def test_non_loopback_without_token(self):
        d = Daemon("pool-managerd-http-open", listen=f"0.0.0.0:{free_port()}")
        log = self.start_failing(d)
        self.assertIn(f"Refusing to listen on {d.listen} without an API token", log)

    def test_empty_token_file(self):
        d = Daemon("pool-managerd-http-empty-token", extra_config="")
        path = os.path.join(d.dir, "token")
        open(path, "w").write("\n")
        with open(d.config, "a") as f:
            f.write(f"ApiTokenFile={path}\n")
        log = self.start_failing(d)
        self.assertIn(f"API token file {path} is empty", log)

    def test_missing_token_file(self):
        d = Daemon("pool-managerd-http-no-token-file")
        path = os.path.join(d.dir, "absent")
        with open(d.config, "a") as f:
            f.write(f"ApiTokenFile={path}\n")
        log = self.start_failing(d)
        self.assertIn(f"Failed to read API token file {path}", log)

    def test_token_file_allows_any_address(self):
        d = Daemon("pool-managerd-http-token-file", listen=None)
        d.listen = f"0.0.0.0:{d.port}"
        path = os.path.join(d.dir, "token")
        open(path, "w").write(TOKEN + "\n")
        with open(d.config, "w") as f:
            f.write(f"[Manager]\nPoolsDirectory={d.dir}/pools.d\nStateDirectory={d.dir}/state\n"
                    f"GpuOnly=no\nListen={d.listen}\n"
                    f"ApiTokenFile={path}\n")
        try:
            self.assertEqual(d.start(), 0, d.log())
            self.assert_json_response(d.get("/pools", token=TOKEN), 200, [])
            self.assertEqual(d.get("/pools").status, 401)
        finally:
            d.stop()

    def test_ipv6_listen(self):
        try:
            port = free_port(socket.AF_INET6, "::1")
        except OSError:
            self.skipTest("no IPv6 loopback here")
        d = Daemon("pool-managerd-http-ipv6", listen=f"[::1]:{port}")
        d.port = port
        try:
            self.assertEqual(d.start(), 0, d.log())
            self.assert_json_response(request(port, "GET", "/health", host="::1"), 200)
            self.assertTrue(wait_for(lambda: f"Listening on http://[::1]:{port}" in d.log(), timeout=5))
        finally:
            d.stop()


def socket_activate(address, config):
    """systemd-socket-activate gives the program a minimal environment: pass what it needs."""
    args = ["systemd-socket-activate", "-l", address, "-E", "POOL_MANAGERD_LOG_TARGET=console",
            "-E", "POOL_MANAGERD_LOG_LEVEL=debug"]
    for var in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
                "PATH", *sanitizer_env()):
        if var in os.environ:
            args += ["-E", var]
    return args + [POOL_MANAGERD, "--user", f"--config={config}"]


class SocketActivationTest(HttpTestCase):
    """systemd-socket-activate binds the port and execs the daemon on the first connection,
    passing the socket (LISTEN_FDS=1); Listen= is then ignored."""

    def test_health_on_activated_socket(self):
        d = Daemon("pool-managerd-http-activated")       # its Listen= port stays unused
        port = free_port()
        log = tempfile.TemporaryFile(mode="w+")
        p = subprocess.Popen(socket_activate(f"127.0.0.1:{port}", d.config), stdout=log,
                             stderr=subprocess.STDOUT)
        try:
            def listening():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return True
                except OSError:
                    return False

            self.assertTrue(wait_for(listening, timeout=10))
            r = request(port, "GET", "/health", timeout=20)
            self.assert_json_response(r, 200)
            self.assertEqual(r.json["status"], "ok")
            self.assert_json_response(request(port, "GET", "/pools"), 200, [])
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", d.port), timeout=1).close()
        finally:
            p.terminate()
            rc = p.wait(20)
            log.seek(0)
            output = log.read()
        self.assertIn(f"Listening on http://127.0.0.1:{port} (socket passed by systemd)", output)
        self.assertEqual(rc, 0, output[-3000:])

    def test_activated_non_loopback_without_token(self):
        d = Daemon("pool-managerd-http-activated-open")
        port = free_port(host="0.0.0.0")
        p = subprocess.Popen(socket_activate(f"0.0.0.0:{port}", d.config), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        try:
            def poke():
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        return True
                except OSError:
                    return False

            self.assertTrue(wait_for(poke, timeout=10))
            output, _ = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"Refusing to serve HTTP on 0.0.0.0:{port} (passed by systemd) without an API token",
                      output)


class TapResult(unittest.TextTestResult):
    """unittest's report on stderr, plus "ok N - name" lines on stdout."""

    n = 0

    def tap(self, ok, test, note=""):
        TapResult.n += 1
        name = f"{type(test).__name__}.{getattr(test, '_testMethodName', str(test))}"
        print(f"{'ok' if ok else 'not ok'} {TapResult.n} - {name}{note}", flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.tap(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.tap(False, test)

    def addError(self, test, err):
        super().addError(test, err)
        self.tap(False, test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.tap(True, test, f" # SKIP {reason}")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.tap(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.tap(False, test)


def main():
    if not (POOL_MANAGERD and FAKE_ENGINE and RUNTIME and os.environ.get("DBUS_SESSION_BUS_ADDRESS")):
        print("1..0 # SKIP run inside tests/sandbox with POOL_MANAGERD and FAKE_ENGINE set")
        return 77

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    # Order matters: one daemon at a time (they share a bus name).
    for case in (ApiTest, AuthTest, StartupTest, SocketActivationTest):
        suite.addTests(loader.loadTestsFromTestCase(case))
    if len(sys.argv) > 1:
        suite = unittest.TestSuite(t for t in _flatten(suite) if any(a in t.id() for a in sys.argv[1:]))

    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=TapResult)
    result = runner.run(suite)
    print(f"1..{TapResult.n}", flush=True)
    return 0 if result.wasSuccessful() else 1


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


if __name__ == "__main__":
    sys.exit(main())
