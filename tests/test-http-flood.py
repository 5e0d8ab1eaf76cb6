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


class FloodBase(th.HttpTestCase):
    limit = None    # HttpConnectionLimit=, None: the default

    @classmethod
    def setUpClass(cls):
        extra = f"HttpConnectionLimit={cls.limit}\n" if cls.limit else ""
        cls.daemon = th.Daemon(f"pool-managerd-flood-{cls.limit or 'default'}", extra_config=extra)
        # Under the test's own soft limit (1024 here) the daemon raises its own, as it would
        # under systemd; the log says so if it cannot.
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

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
                    pass        # answered 503 and closed: fine
            time.sleep(0.1)

        # Every whole request is answered, 200 or 503: none is left hanging.
        answers = read_answers(talkers, timeout=10)
        statuses = [status_of(a) for a in answers.values()]
        unanswered = statuses.count(None)
        self.assertEqual(unanswered, 0, f"{unanswered} of {len(talkers)} requests got no answer")
        self.assertTrue(set(statuses) <= {200, 503}, set(statuses))

        # The connections that stay open (the silent half of the burst, the slow clients): all
        # but HttpConnectionLimit= of them must have been answered 503 once the daemon has
        # accepted them all; the others are MHD's, waiting for their requests.
        held = burst[BURST // 2:] + slow
        refused = set()

        def sweep():
            for s in held:
                if s in refused:
                    continue
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if status_of(chunk) == 503:
                    refused.add(s)
            return len(refused) >= len(held) - self.effective_limit()

        settled = th.wait_for(sweep, timeout=10)
        self.assertTrue(settled, f"{len(refused)} of {len(held)} held connections answered 503, "
                        f"expected {max(len(held) - self.effective_limit(), 0)}")
        self.assertLessEqual(len(refused), max(len(held) - self.effective_limit(), 0))

        close_all(burst)
        close_all(slow)

        r, took = timed_health(port)
        self.assert_json_response(r, 200)
        return took, statuses.count(503) + len(refused)

    def effective_limit(self):
        return self.limit or 1024


class FloodAtOldLimitTest(FloodBase):
    """HttpConnectionLimit=256, the fixed limit that the daemon used to stall at."""

    limit = 256

    def test_flood_then_health(self):
        worst = 0.0
        for i in range(RUNS):
            took, n503 = self.flood_round()
            # Past the limit: some of the whole requests must have been answered 503.
            self.assertGreater(n503, 0, f"round {i}: nothing hit the limit")
            worst = max(worst, took)
            self.assertLess(took, HEALTH_DEADLINE, f"round {i}: /health took {took * 1000:.1f} ms")
        print(f"# {RUNS} rounds at limit {self.limit}: worst /health afterwards {worst * 1000:.1f} ms",
              file=sys.stderr)
        self.assertIn("HTTP connection limit reached (HttpConnectionLimit=256)", self.daemon.log())


class FloodAtDefaultLimitTest(FloodBase):
    """The default limit (1024) with the same floods: nothing refused, nothing stuck."""

    def test_flood_then_health(self):
        for i in range(max(RUNS // 4, 1)):
            took, n503 = self.flood_round()
            self.assertEqual(n503, 0, f"round {i}: {n503} answered 503 under the default limit")
            self.assertLess(took, HEALTH_DEADLINE, f"round {i}: /health took {took * 1000:.1f} ms")
        self.assertIn("at most 1024 connections", self.daemon.log())


class AtLimitTest(FloodBase):
    """What a client sees at the limit, and that the daemon serves again once below it."""

    limit = 20

    def test_503_at_limit_then_served(self):
        port = self.daemon.port
        idle = connect_nonblocking(port, self.limit)
        self.assertEqual(len(wait_writable(idle)), self.limit)
        # The daemon accepts them in its own time: wait until one more is refused.
        def refused():
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    raw += chunk
                return raw
            finally:
                s.close()

        self.assertTrue(th.wait_for(lambda: status_of(refused()) == 503, timeout=10))
        raw = refused()
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertEqual(status_of(raw), 503, raw)
        self.assertIn(b"\r\nRetry-After: 1\r\n", head)
        self.assertIn(b"\r\nConnection: close\r\n", head)
        self.assertIn(b"\r\nContent-Type: application/json\r\n", head)
        self.assertIn(b"the HTTP connection limit (20) is reached", body)

        # A client that sends nothing is answered too, and closed.
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.settimeout(5)
        first = s.recv(65536)
        self.assertEqual(status_of(first), 503, first)
        s.close()

        close_all(idle)
        r, took = timed_health(port)
        self.assert_json_response(r, 200)
        self.assertLess(took, HEALTH_DEADLINE, f"/health took {took * 1000:.1f} ms after the limit")
        # One warning per 10 s, not one per refused connection.
        self.assertEqual(self.daemon.log().count("HTTP connection limit reached"), 1, self.daemon.log())


def main():
    global RUNS
    if len(sys.argv) > 1:
        RUNS = int(sys.argv[1])
    raise_nofile()
    return th.run_tap(AtLimitTest, FloodAtOldLimitTest, FloodAtDefaultLimitTest, needs=("POOL_MANAGERD",))


if __name__ == "__main__":
    sys.exit(main())
