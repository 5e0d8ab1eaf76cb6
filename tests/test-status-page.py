#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# GET /events (server-sent events) and GET / (the status page) of pool-managerd, end to end,
# inside tests/sandbox. The stream is read with a plain HTTP client (snapshot, events after
# changes, increasing ids, the token, the cap on streams); the page is loaded into a real headless
# Chromium (Debian's chromium package) driven over the DevTools protocol, with a WebSocket client
# written here on the standard library: it must list two fake-engine pools as ready, and show an
# engine's SIGKILL within a second without a reload. A screenshot goes to
# $TEST_ARTEFACTS/status-page.png. Prints TAP lines like test-http.py.

import base64
import http.client
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

TOKEN = th.TOKEN
FAKE_NVML = os.environ.get("FAKE_NVML")
GiB = 1 << 30
ARTEFACTS = os.environ.get("TEST_ARTEFACTS") or os.path.join(os.getcwd(), "test-artefacts")


class EventStream:
    """GET /events on a socket of its own: the answer's head, then events as they come."""

    def __init__(self, port, token=None, headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        h = {"Host": f"127.0.0.1:{port}", "Accept": "text/event-stream", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        self.sock.sendall(("GET /events HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) +
                           "\r\n").encode())
        self.raw = b""
        self.text = ""
        self.comments = []
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        self.chunked = self.headers.get("transfer-encoding") == "chunked"

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the daemon closed the stream")
        self.raw += data

    def _decode(self):
        """Moves complete chunks from raw to text."""
        if not self.chunked:
            self.text += self.raw.decode()
            self.raw = b""
            return
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                raise EOFError("the stream ended")
            if len(rest) < size + 2:
                return
            self.text += rest[:size].decode()
            self.raw = rest[size + 2:]

    def body(self, timeout=5):
        """The whole body of a short answer (an error)."""
        self.sock.settimeout(timeout)
        n = int(self.headers.get("content-length", "0"))
        while len(self.raw) < n:
            self._recv()
        return json.loads(self.raw[:n])

    def next(self, timeout=5):
        """The next event as a dict (event, id, data, retry), comments collected aside."""
        deadline = time.monotonic() + timeout
        while True:
            self._decode()
            if "\n\n" in self.text:
                block, self.text = self.text.split("\n\n", 1)
                ev = {}
                for line in block.split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line)
                        continue
                    field, _, value = line.partition(": ")
                    ev[field] = value
                if not ev:
                    continue
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no event within the timeout")
            self.sock.settimeout(left)
            self._recv()

    def until(self, predicate, timeout=10):
        """Events up to and including the first that satisfies predicate."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            seen.append(self.next(max(0.01, deadline - time.monotonic())))
            if predicate(seen[-1]):
                return seen

    def close(self):
        self.sock.close()


class DevTools:
    """The Chrome DevTools protocol over a WebSocket (RFC 6455, client side, text frames)."""

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"no WebSocket: {head!r}")
        self.id = 0

    def _send(self, opcode, data):
        n = len(data)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                          bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                          bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + masked)

    def _exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("DevTools closed the connection")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _message(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)          # servers do not mask
            opcode = b0 & 0x0f
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0x8:
                raise EOFError("DevTools closed the WebSocket")
            message += payload
            if b0 & 0x80:
                return json.loads(message)

    def call(self, method, **params):
        self.id += 1
        self._send(0x1, json.dumps({"id": self.id, "method": method, "params": params}).encode())
        while True:
            m = self._message()
            if m.get("id") == self.id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self):
        self.sock.close()


def preload(daemon, pool_id, **extra):
    prepared = th.prepared(pool_id, th.free_port(), "--slots", "4", slots_total=4, **extra)
    r = daemon.post(f"/pools/{pool_id}/preload", {"prepared": prepared}, token=TOKEN)
    assert r.status == 200, r


def fake_gpus():
    """Two GPUs of the fake NVML (tests/fake-nvml), for the page's VRAM bars."""
    d = tempfile.mkdtemp(prefix="fake-nvml.", dir=th.RUNTIME)
    path = os.path.join(d, "gpus.json")
    with open(path, "w") as f:
        json.dump({"driver_version": "550.54.15", "xid_events": [], "devices": [
            {"uuid": "GPU-6a1e3c1d-0000-4000-8000-000000000000", "name": "NVIDIA A100-SXM4-80GB",
             "pci_bus_id": "00000000:3B:00.0", "minor": 0, "compute_capability": "8.0",
             "memory_total": 80 * GiB, "memory_used": 30 * GiB},
            {"uuid": "GPU-6a1e3c1d-0000-4000-8000-000000000001", "name": "NVIDIA L4",
             "pci_bus_id": "00000000:5E:00.0", "minor": 1, "compute_capability": "8.9",
             "memory_total": 24 * GiB, "memory_used": 6 * GiB}]}, f)
    return path


class EventsTest(th.HttpTestCase):
    """The stream with a plain client; tests run in name order and build on each other."""

    @classmethod
    def setUpClass(cls):
        # MaxConnections=8: at most 4 streams.
        cls.daemon = th.start_daemon("pool-managerd-events-test", env={"LLORCH_API_TOKEN": TOKEN},
                                     extra_config="[Supervision]\nBackoffInitial=2s\nBackoffJitter=0\n"
                                                  "[HTTP]\nMaxConnections=8\n")

    @classmethod
    def tearDownClass(cls):
        th.stop_daemon(cls.daemon)

    def test_00_token_required(self):
        s = EventStream(self.daemon.port)
        self.assertEqual(s.status, 401)
        self.assertEqual(s.body()["code"], "UNAUTHORIZED")
        s.close()
        s = EventStream(self.daemon.port, token="wrong")
        self.assertEqual(s.status, 401)
        s.close()
        r = self.daemon.post("/events", token=TOKEN)
        self.assert_error(r, 405, "not allowed")

    def test_10_snapshot_then_changes(self):
        s = EventStream(self.daemon.port, token=TOKEN)
        self.assertEqual(s.status, 200)
        self.assertEqual(s.headers.get("content-type"), "text/event-stream")
        self.assertEqual(s.headers.get("cache-control"), "no-store")
        first = s.next()
        self.assertEqual(first["event"], "snapshot")
        self.assertEqual(first["retry"], "1000")
        self.assertEqual(first["data"]["pools"], [])
        self.assertIn("devices", first["data"])
        last = int(first["id"])

        preload(self.daemon, "ea")
        seen = s.until(lambda e: e["event"] == "pool" and e["data"]["state"] == "ready")
        ids = [int(e["id"]) for e in seen]
        self.assertEqual(ids, sorted(set(ids)), "ids increase")
        self.assertGreater(ids[0], last)
        self.assertIn("starting", [e["data"]["state"] for e in seen])
        # The same JSON as GET /pools/<id>/status, heartbeat aside.
        status = self.daemon.get("/pools/ea/status", token=TOKEN).json
        for k in ("pool_id", "ready", "slots_total", "active_leases", "restart_count", "unit", "pid"):
            self.assertEqual(seen[-1]["data"][k], status[k], k)

        # A lease is an event of its own.
        self.assertEqual(self.daemon.post("/pools/ea/leases", token=TOKEN).status, 200)
        e = s.next()
        self.assertEqual((e["event"], e["data"]["active_leases"]), ("pool", 1))
        self.assertGreater(int(e["id"]), ids[-1])
        self.assertEqual(th.request(self.daemon.port, "DELETE", "/pools/ea/leases", token=TOKEN).status, 200)
        self.assertEqual(s.next()["data"]["active_leases"], 0)

        # A crash, within a second, with its reason; then the restart.
        t0 = time.monotonic()
        th.systemctl("kill", "--signal=SIGKILL", "pool-engine-ea.service")
        e = s.next(timeout=1)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(e["event"], "pool")
        self.assertFalse(e["data"]["ready"])
        crash = s.until(lambda e: e["data"]["crash_count"] == 1)[-1]["data"]
        self.assertTrue(crash["last_error"], crash)
        s.until(lambda e: e["data"]["state"] == "ready" and e["data"]["restart_count"] == 1, timeout=15)
        s.close()

    def test_20_last_event_id_gets_a_fresh_snapshot(self):
        s = EventStream(self.daemon.port, token=TOKEN, headers={"Last-Event-ID": "3"})
        e = s.next()
        self.assertEqual(e["event"], "snapshot")
        self.assertGreater(int(e["id"]), 3)
        self.assertEqual([p["pool_id"] for p in e["data"]["pools"]], ["ea"])
        self.assertTrue(e["data"]["pools"][0]["ready"])
        s.close()

    def test_30_streams_are_capped(self):
        # At most 4 streams, and requests still get through.
        streams = [EventStream(self.daemon.port, token=TOKEN) for _ in range(4)]
        for s in streams:
            self.assertEqual(s.status, 200)
            self.assertEqual(s.next()["event"], "snapshot")
        extra = EventStream(self.daemon.port, token=TOKEN)
        self.assertEqual(extra.status, 503)
        self.assertEqual(extra.headers.get("retry-after"), "5")
        self.assertEqual(extra.body()["code"], "TOO_MANY_CONNECTIONS")
        extra.close()
        self.assertEqual(self.daemon.get("/pools", token=TOKEN).status, 200)
        # Every stream gets the next event.
        self.assertEqual(self.daemon.post("/pools/ea/leases", token=TOKEN).status, 200)
        for s in streams:
            self.assertEqual(s.next()["data"]["active_leases"], 1)
        self.assertEqual(th.request(self.daemon.port, "DELETE", "/pools/ea/leases", token=TOKEN).status, 200)
        for s in streams:
            self.assertEqual(s.next()["data"]["active_leases"], 0)
        # Streams closed by their clients free their places at once, without waiting for a write.
        for s in streams:
            s.close()
        reopened = []

        def reopen():
            s = EventStream(self.daemon.port, token=TOKEN)
            if s.status == 200:
                reopened.append(s)
            else:
                s.close()
            return len(reopened) == 4
        self.assertTrue(th.wait_for(reopen, timeout=1, interval=0.05))
        for s in reopened:
            s.close()

    def open(self):
        """A stream, once the places of the ones just closed are free (at once, but asynchronously)."""
        streams = []

        def opened():
            s = EventStream(self.daemon.port, token=TOKEN)
            if s.status == 200:
                streams.append(s)
                return True
            s.close()
            return False
        self.assertTrue(th.wait_for(opened, timeout=2))
        return streams[0]

    def test_40_stream_outlives_the_timeouts_with_keepalives(self):
        # RequestTimeoutSec= (10 s) bounds requests being received, not answers being streamed;
        # a comment comes every 15 s.
        s = self.open()
        s.next()
        time.sleep(16)
        self.assertEqual(self.daemon.post("/pools/ea/leases", token=TOKEN).status, 200)
        self.assertEqual(s.next()["data"]["active_leases"], 1)
        self.assertEqual(s.comments, [": keepalive"])
        s.close()

    def test_50_slow_client_is_dropped(self):
        # A client that does not read (a small receive buffer, nothing read) while events come is
        # dropped once 1 MiB waits for it; a client that reads (in a thread here) goes on.
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", self.daemon.port))
        slow.sendall(f"GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        good = self.open()
        good.next()
        events = []

        def read_good():
            try:
                while True:
                    events.append(good.next(timeout=60))
            except (EOFError, OSError):
                pass
        reader = threading.Thread(target=read_good, daemon=True)
        reader.start()

        def dropped():
            return "reads slower than events come" in self.daemon.log()
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        n = 0
        for n in range(1, 20001):
            conn.request("POST" if n % 2 else "DELETE", "/pools/ea/leases", headers=auth)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            if n % 500 == 0 and dropped():
                break
        conn.close()
        self.assertTrue(th.wait_for(dropped, timeout=5), f"not dropped after {n} events")
        print(f"# the slow client was dropped after {n} events", flush=True)
        # Its connection is closed: what was in the buffers, then the end.
        slow.settimeout(10)
        try:
            while slow.recv(65536):
                pass
        except ConnectionResetError:
            pass
        slow.close()
        # The reading client got every event, and gets the next one.
        leases = self.daemon.post("/pools/ea/leases", token=TOKEN).json["active_leases"]
        self.assertTrue(th.wait_for(lambda: events and events[-1]["data"]["active_leases"] == leases, timeout=10))
        self.assertGreaterEqual(len(events), n)
        good.close()


class PageTest(th.HttpTestCase):
    """GET / itself, and the page in a real headless Chromium."""

    @classmethod
    def setUpClass(cls):
        env, nvml = {"LLORCH_API_TOKEN": TOKEN}, ""
        if FAKE_NVML:
            env["FAKE_NVML_CONFIG"] = fake_gpus()
            nvml = f"NvmlLibrary={FAKE_NVML}\n"
        cls.chromium = None
        cls.daemon = th.start_daemon("pool-managerd-page-test", env=env,
                                     extra_config=nvml + "[Supervision]\nBackoffInitial=3s\nBackoffJitter=0\n")
        gpu = {"alpha": {"device_mask": "GPU0", "vram_required_bytes": 8 * GiB},
               "beta": {"device_mask": "GPU1", "vram_required_bytes": 4 * GiB}} if FAKE_NVML else {}
        for pool_id in ("alpha", "beta"):
            preload(cls.daemon, pool_id, **gpu.get(pool_id, {}))

    @classmethod
    def tearDownClass(cls):
        if cls.chromium:
            cls.chromium.kill()
            cls.chromium.wait()
        th.stop_daemon(cls.daemon)

    def test_00_page_is_public_self_contained_html(self):
        r = self.daemon.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"), "text/html; charset=utf-8")
        csp = r.headers.get("Content-Security-Policy")
        self.assertTrue(csp.startswith("default-src 'none'; script-src 'sha256-"), csp)
        self.assertIn("connect-src 'self'", csp)
        self.assertNotIn("unsafe", csp)
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
        html = r.raw.decode()
        self.assertLess(len(r.raw), 15 * 1024)
        self.assertNotRegex(html, r"""(src|href)\s*=\s*["'](?!data:)""")
        self.assertIn("/events", html)

    def devtools(self):
        if not shutil.which("chromium"):
            self.skipTest("chromium not installed (Debian package chromium)")
        port = th.free_port()
        profile = tempfile.mkdtemp(prefix="chromium.", dir=th.RUNTIME)
        self.__class__.chromium = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--window-size=1280,800",
             f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "chromium.log"), "w"))
        targets = []

        def listening():
            try:
                targets[:] = th.request(port, "GET", "/json/list", timeout=2).json or []
            except OSError:
                return False
            return any(t.get("type") == "page" for t in targets)
        self.assertTrue(th.wait_for(listening, timeout=60, interval=0.2), "chromium's DevTools did not come up")
        page = next(t for t in targets if t.get("type") == "page")
        return DevTools(page["webSocketDebuggerUrl"])

    def wait_js(self, dt, expression, timeout=10):
        seen = []

        def check():
            try:
                seen.append(dt.evaluate(expression))
            except RuntimeError as e:       # the page is not there yet
                seen.append(str(e))
                return False
            return seen[-1] is True
        self.assertTrue(th.wait_for(check, timeout=timeout, interval=0.02), f"{expression}: last {seen[-1:]}")

    def test_10_page_in_chromium_shows_a_crash_live(self):
        dt = self.devtools()
        base = f"http://127.0.0.1:{self.daemon.port}/"
        # Without the token the page says how to give it.
        dt.call("Page.navigate", url=base)
        self.wait_js(dt, "document.getElementById('msg').textContent.includes('#token=')")
        # With it (in the fragment, which leaves the address bar): both pools, ready.
        dt.call("Page.navigate", url=base + "#token=" + TOKEN)
        self.wait_js(dt, "location.hash === '' && document.getElementById('conn').textContent === 'live'")
        self.wait_js(dt, "['alpha', 'beta'].every(id => { const r = document.getElementById('pool-' + id);"
                         " return r && r.dataset.state === 'ready' && r.dataset.ready === 'true'; })")
        self.assertEqual(dt.evaluate("document.querySelector('#pool-alpha .leases').textContent"),
                         "0 leases, slots 4/4 free")
        if FAKE_NVML:
            # The GPUs with their VRAM bars (30 of 80 GiB used), the pools' masks and VRAM.
            self.wait_js(dt, "document.getElementById('devices').textContent.includes('NVIDIA A100-SXM4-80GB')")
            self.assertEqual(dt.evaluate("document.querySelector('#devices .bar span').style.width"), "38%")
            self.assertIn("8.0 GiB", dt.evaluate("document.querySelector('#pool-alpha .devices').textContent"))
        events_before = int(dt.evaluate("document.body.dataset.events"))
        dt.evaluate("window.notReloaded = true")

        # SIGKILL one engine: the page shows it within a second, without a reload.
        t0 = time.monotonic()
        th.systemctl("kill", "--signal=SIGKILL", "pool-engine-beta.service")
        self.wait_js(dt, "document.getElementById('pool-beta').dataset.state !== 'ready'", timeout=1)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 1.0)
        print(f"# the page showed the crash {elapsed * 1000:.0f} ms after the SIGKILL", flush=True)
        self.assertIs(dt.evaluate("window.notReloaded"), True)
        self.assertGreater(int(dt.evaluate("document.body.dataset.events")), events_before)
        self.wait_js(dt, "document.querySelector('#pool-beta .restarts').textContent.startsWith('1 /') && "
                         "document.querySelector('#pool-beta .err').textContent !== ''")
        self.assertEqual(dt.evaluate("document.getElementById('pool-alpha').dataset.state"), "ready")
        self.assertIn("beta: ready \u2192", dt.evaluate("document.getElementById('events').textContent"))

        os.makedirs(ARTEFACTS, exist_ok=True)
        path = os.path.join(ARTEFACTS, "status-page.png")
        shot = dt.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(f"# screenshot: {path}", flush=True)

        # And back to ready after the backoff (3 s), still without a reload.
        self.wait_js(dt, "document.getElementById('pool-beta').dataset.state === 'ready'", timeout=20)
        self.assertIs(dt.evaluate("window.notReloaded"), True)
        dt.close()


if __name__ == "__main__":
    sys.exit(th.run_tap(EventsTest, PageTest))
