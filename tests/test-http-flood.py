#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The HTTP facade under connection floods, against the real daemon inside tests/sandbox (issue
# 19): bursts of connections and slow clients past the connection limit, then /health must be
# answered at once; a connection over the limit gets a 503 with Retry-After, never silence.
# Before the fix, libmicrohttpd's listening socket left its epoll set at the limit and never came
# back: the daemon stopped accepting for good. Prints TAP lines like test-http.py.
#
#   test-http-flood.py [RUNS]      RUNS flood rounds per daemon (default 20)

import importlib.util
import os
import resource
import select
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

RUNS = int(os.environ.get("FLOOD_RUNS", "20"))
BURST = 600
SLOW = 400
HEALTH_DEADLINE = 0.100         # seconds: /health after the flood


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = BURST + SLOW + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def connect_nonblocking(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def wait_writable(socks, timeout=5.0):
    """Waits until every socket is connected (writable); returns those that are."""
    pending = set(socks)
    done = []
    deadline = time.monotonic() + timeout
    poller = select.poll()
    fds = {s.fileno(): s for s in socks}
    for s in socks:
        poller.register(s, select.POLLOUT)
    while pending and time.monotonic() < deadline:
        for fd, ev in poller.poll(100):
            s = fds[fd]
            if s in pending:
                pending.discard(s)
                poller.unregister(fd)
                if ev & select.POLLOUT and not ev & (select.POLLERR | select.POLLHUP):
                    done.append(s)
    return done


def read_answers(socks, timeout):
    """Reads until each socket is closed by the daemon or timeout; returns {sock: bytes}."""
    data = {s: b"" for s in socks}
    open_ = set(socks)
    poller = select.poll()
    fds = {s.fileno(): s for s in socks}
    for s in socks:
        poller.register(s, select.POLLIN)
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s = fds[fd]
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                data[s] += chunk
            else:
                open_.discard(s)
                poller.unregister(fd)
    return data


def status_of(raw):
    if not raw.startswith(b"HTTP/1.1 "):
        return None
    return int(raw[9:12])


def close_all(socks):
    for s in socks:
        s.close()


def timed_health(port):
    t0 = time.monotonic()
    r = th.request(port, "GET", "/health", timeout=10)
    return r, time.monotonic() - t0


def get_from(port, source, path="/health"):
    """GET on a fresh connection from the given local address (another client host)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    return status_of(raw), raw, time.monotonic() - t0


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class FloodBase(th.HttpTestCase):
    settings = {}   # [HTTP] keys

    @classmethod
    def setUpClass(cls):
        extra = "[HTTP]\n" + "".join(f"{k}={v}\n" for k, v in cls.settings.items()) if cls.settings else ""
        name = "-".join(f"{k}{v}" for k, v in cls.settings.items()) or "default"
        cls.daemon = th.Daemon(f"pool-managerd-flood-{name.lower()}", extra_config=extra)
        # Under the test's own soft limit (1024 here) the daemon raises its own, as it would
        # under systemd; the log says so if it cannot.
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def room(self):
        """How many connections of one client address the daemon keeps at most."""
        limit = int(self.settings.get("MaxConnections", 1024))
        per = int(self.settings.get("MaxConnectionsPerAddress", 256))
        return min(limit, per) if per else limit

    def flood_round(self):
        port = self.daemon.port
        request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

        # 600 at once: half send a whole request, half nothing at all.
        burst = connect_nonblocking(port, BURST)
        connected = wait_writable(burst)
        self.assertEqual(len(connected), BURST, "the kernel refused connections of the burst")
        talkers = burst[: BURST // 2]
        for s in talkers:
            s.send(request)

        # 400 slow clients: a header byte at a time.
        slow = connect_nonblocking(port, SLOW)
        self.assertEqual(len(wait_writable(slow)), SLOW)
        for i in range(3):
            for s in slow:
                try:
                    s.send(request[i:i + 1])
                except OSError:
                    pass        # answered and closed: fine
            time.sleep(0.1)

        # Every whole request is answered: 200, or 408 when its connection was closed to make
        # room before the request was read, or 503: none is left hanging.
        answers = read_answers(talkers, timeout=10)
        statuses = [status_of(a) for a in answers.values()]
        unanswered = statuses.count(None)
        self.assertEqual(unanswered, 0, f"{unanswered} of {len(talkers)} requests got no answer")
        self.assertTrue(set(statuses) <= {200, 408, 503}, set(statuses))

        # The connections that stay open (the silent half of the burst, the slow clients), all
        # from one address: once the daemon has seen them all, at most room() of them are open;
        # every other one was answered (408: closed to make room; 503) and closed.
        held = burst[BURST // 2:] + slow
        answered = set()

        def sweep():
            for s in held:
                if s in answered:
                    continue
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if status_of(chunk) in (408, 503):
                    answered.add(s)
            return len(answered) >= len(held) - self.room()

        settled = th.wait_for(sweep, timeout=10)
        self.assertTrue(settled, f"{len(answered)} of {len(held)} held connections answered, expected at least "
                        f"{max(len(held) - self.room(), 0)}")

        close_all(burst)
        close_all(slow)

        r, took = timed_health(port)
        self.assert_json_response(r, 200)
        return took, len(answered)


class FloodAtOldLimitTest(FloodBase):
    """MaxConnections=256, the fixed limit that the daemon used to stall at (issue 19)."""

    settings = {"MaxConnections": 256, "MaxConnectionsPerAddress": 0}

    def test_flood_then_health(self):
        worst = 0.0
        for i in range(RUNS):
            took, closed = self.flood_round()
            self.assertGreater(closed, 0, f"round {i}: nothing hit the limit")
            worst = max(worst, took)
            self.assertLess(took, HEALTH_DEADLINE, f"round {i}: /health took {took * 1000:.1f} ms")
        print(f"# {RUNS} rounds at MaxConnections=256: worst /health afterwards {worst * 1000:.1f} ms",
              file=sys.stderr)


class FloodAtDefaultLimitTest(FloodBase):
    """The defaults (1024 connections, 256 per address) with the same floods."""

    def test_flood_then_health(self):
        for i in range(max(RUNS // 4, 1)):
            took, closed = self.flood_round()
            self.assertLess(took, HEALTH_DEADLINE, f"round {i}: /health took {took * 1000:.1f} ms")
        self.assertIn("at most 1024 connections", self.daemon.log())


class AtLimitTest(FloodBase):
    """At MaxConnections=: an idle connection makes room for a newcomer; only when every
    connection is busy with a request is the newcomer answered 503, and served again after."""

    settings = {"MaxConnections": 3, "MaxConnectionsPerAddress": 0}

    def test_idle_connection_makes_room(self):
        port = self.daemon.port
        idle = connect_nonblocking(port, 3)
        self.assertEqual(len(wait_writable(idle)), 3)
        time.sleep(0.2)
        r, took = timed_health(port)
        self.assert_json_response(r, 200)
        # The oldest idle one was closed with a 408 to make room.
        answers = read_answers(idle[:1], timeout=5)
        self.assertEqual(status_of(answers[idle[0]]), 408, answers)
        self.assertIn(b"closed to make room for others", answers[idle[0]])
        close_all(idle)

    def test_503_when_every_connection_is_busy_then_served(self):
        port = self.daemon.port
        # Three preloads of engines that are ready only after 4 s hold every connection.
        threads, results = [], {}

        def preload(i):
            p = th.free_port()
            body = {"prepared": th.prepared(f"busy{i}", p, "--ready-after=4000")}
            results[i] = th.request(port, "POST", f"/pools/busy{i}/preload", body=body, timeout=30)

        for i in range(3):
            t = th.threading.Thread(target=preload, args=(i,))
            t.start()
            threads.append(t)
        time.sleep(1.0)     # the three preloads are in, waiting for their engines

        status, raw, _ = get_from(port, "127.0.0.1")
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertEqual(status, 503, raw)
        self.assertIn(b"\r\nRetry-After: 1\r\n", head)
        self.assertIn(b"\r\nConnection: close\r\n", head)
        self.assertIn(b"\r\nContent-Type: application/json\r\n", head)
        self.assertIn(b"the HTTP connection limit (3) is reached and every connection is busy", body)
        # A client that sends nothing is answered too.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.settimeout(5)
        self.assertEqual(status_of(s.recv(65536)), 503)
        s.close()

        for t in threads:
            t.join(30)
        self.assertEqual(sorted(r.status for r in results.values()), [200, 200, 200], results)
        r, took = timed_health(port)
        self.assert_json_response(r, 200)
        self.assertLess(took, HEALTH_DEADLINE)
        self.assertIn("every connection busy with a request", self.daemon.log())
        th.stop_all_engines()


class SlowClientTest(FloodBase):
    """1000 connections that send a header byte now and then: RequestTimeoutSec= closes them,
    per-address and global limits make room, and /health from another client is answered fast
    all the while (issue 17)."""

    settings = {"RequestTimeoutSec": "2s"}

    def test_slow_clients_do_not_starve_others(self):
        port = self.daemon.port
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        slow = connect_nonblocking(port, 1000)
        self.assertEqual(len(wait_writable(slow)), 1000)
        latencies, statuses = [], []
        t_end = time.monotonic() + 4.0
        byte = 0
        while time.monotonic() < t_end:
            for s in slow:
                try:
                    s.send(request[byte % 4:byte % 4 + 1])
                except OSError:
                    pass
            byte += 1
            for _ in range(5):
                status, _, took = get_from(port, "127.0.0.2")
                statuses.append(status)
                latencies.append(took)
                time.sleep(0.02)
        p99 = percentile(latencies, 99)
        print(f"# /health from 127.0.0.2 beside 1000 slow clients: {len(latencies)} probes, "
              f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms", file=sys.stderr)
        self.assertEqual(set(statuses), {200}, statuses)
        self.assertLess(p99, HEALTH_DEADLINE)
        # Each slow connection got its answer, 408 (too slow, or closed to make room), and was closed.
        answers = read_answers(slow, timeout=5)
        codes = {status_of(a) for a in answers.values()}
        self.assertEqual(codes, {408}, codes)
        close_all(slow)


def main():
    global RUNS
    if len(sys.argv) > 1:
        RUNS = int(sys.argv[1])
    raise_nofile()
    return th.run_tap(AtLimitTest, FloodAtOldLimitTest, FloodAtDefaultLimitTest, SlowClientTest,
                      needs=("POOL_MANAGERD", "FAKE_ENGINE"))


if __name__ == "__main__":
    sys.exit(main())
