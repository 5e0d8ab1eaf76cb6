#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Readiness without polling lag (issue 13), against the real daemon inside tests/sandbox: while a
# pool probes, each line its engine writes to the journal triggers a probe besides the fixed
# HealthInterval grid, so an engine that turns ready and says so is found ready long before the
# next grid slot; a line alone never makes a pool ready (HTTP 200 does); with EngineLogs=file the
# grid alone probes. The grid is set to seconds here so that the difference cannot be luck.
# Prints TAP lines like test-http.py. Needs $POOL_MANAGERD and $FAKE_ENGINE.

import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

LLAMA_READY = "main: server is listening on http://127.0.0.1 - starting the main loop"


def read_ready_log(path):
    """The engine's own record of the moment it turned ready (CLOCK_REALTIME, seconds)."""
    with open(path) as f:
        return int(f.read().split()[0]) / 1e6


def probes(path):
    """The statuses of the /health requests the engine answered (--probe-log)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(line.split()[2]) for line in f if line.strip()]


class TriggeredReadiness(th.HttpTestCase):
    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = th.Daemon("pool-managerd-readiness-test", extra_config="HealthInterval=2s\n")
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        th.stop_all_engines()

    def preload(self, pool_id, *flags, **extra):
        port = th.free_port()
        r = self.daemon.post(f"/pools/{pool_id}/preload", {"prepared": th.prepared(pool_id, port, *flags, **extra)})
        return r, time.time()

    def stop(self, pool_id):
        self.daemon.post(f"/pools/{pool_id}/stop")

    def test_1_ready_line_is_found_long_before_the_grid(self):
        ready_log = os.path.join(self.daemon.dir, "ready-1.log")
        probe_log = os.path.join(self.daemon.dir, "probes-1.log")
        r, answered = self.preload("trig1", "--ready-after=300", "--log-every=40", f"--ready-line={LLAMA_READY}",
                                   f"--ready-log={ready_log}", f"--probe-log={probe_log}")
        self.assert_json_response(r, 200)
        lag = answered - read_ready_log(ready_log)
        # The grid's next probe after the first (at once, 503) is 2 s after probing began, that
        # is about 1.7 s after the engine turned ready. The line finds it within milliseconds;
        # 1 s leaves room for a busy machine.
        self.assertGreaterEqual(lag, 0, "ready before the engine answered 200")
        self.assertLess(lag, 1.0, f"ready {lag:.3f} s after the engine: the grid, not the line, found it")
        seen = probes(probe_log)
        self.assertEqual(seen[-1], 200, seen)
        # The loading lines (every 40 ms) triggered probes that saw 503, which the grid alone
        # (one probe before 2 s) would not have sent.
        self.assertGreaterEqual(seen.count(503), 2, seen)
        s = self.daemon.get("/pools/trig1/status").json
        self.assertEqual((s["state"], s["ready"]), ("ready", True), s)
        # Ready: the journal watch is released (no pool probes), so an idle daemon is not woken.
        self.assertTrue(th.wait_for(lambda: self.daemon.log().count("Engine journal watch closed.") >= 1,
                                    timeout=10), self.daemon.log()[-2000:])
        print(f"# ready detected {lag * 1000:.0f} ms after the engine turned ready "
              f"(HealthInterval=2s); {len(seen)} probes", flush=True)
        self.stop("trig1")

    def test_2_a_line_without_200_is_not_ready(self):
        # Lines every 20 ms and a ready line right away, but the engine answers 503 forever:
        # many triggered probes, every one 503, and the preload times out.
        probe_log = os.path.join(self.daemon.dir, "probes-2.log")
        r, _ = self.preload("trig2", "--never-ready", "--log-every=20", f"--stdout-line={LLAMA_READY}",
                            f"--probe-log={probe_log}", health={"timeout_ms": 1500})
        self.assert_error(r, 504, "health check timed out", code="HEALTH_TIMEOUT")
        seen = probes(probe_log)
        self.assertGreaterEqual(len(seen), 5, f"the lines triggered no probes: {seen}")
        self.assertEqual(set(seen), {503}, seen)
        # The rate limit: at most one triggered probe per 10 ms (plus the grid's), however many
        # lines (1500 ms: at most ~150 + 1).
        self.assertLessEqual(len(seen), 160, len(seen))

    def test_3_ready_line_before_the_port_listens(self):
        # The ready line comes 1 s before the engine listens: probes then find nobody, and the
        # pool turns ready only once a probe answers 200, not at the line.
        ready_log = os.path.join(self.daemon.dir, "ready-3.log")
        r, answered = self.preload("trig3", "--ready-after=200", "--delay-bind=1200", f"--ready-line={LLAMA_READY}",
                                   f"--ready-log={ready_log}")
        self.assert_json_response(r, 200)
        self.assertGreaterEqual(answered - read_ready_log(ready_log), 0.95,
                                "ready at the line, before the engine listened")
        self.stop("trig3")


class GridOnlyWithLogFiles(th.HttpTestCase):
    def test_file_logs_keep_the_grid(self):
        daemon = th.Daemon("pool-managerd-readiness-file", extra_config="HealthInterval=1s\nEngineLogs=file\n")
        if daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + daemon.log())
        try:
            ready_log = os.path.join(daemon.dir, "ready-f.log")
            probe_log = os.path.join(daemon.dir, "probes-f.log")
            port = th.free_port()
            r = daemon.post("/pools/filelog/preload", {"prepared": th.prepared(
                "filelog", port, "--ready-after=300", "--log-every=20", f"--ready-line={LLAMA_READY}",
                f"--ready-log={ready_log}", f"--probe-log={probe_log}")})
            answered = time.time()
            self.assert_json_response(r, 200)
            # The first probe at once (503), the next on the grid, 1 s later.
            self.assertGreater(answered - read_ready_log(ready_log), 0.4, "found before the grid's probe")
            seen = probes(probe_log)
            self.assertLessEqual(len(seen), 3, f"probes off the grid: {seen}")
            self.assertEqual(seen[-1], 200, seen)
        finally:
            daemon.stop()
            th.stop_all_engines()


if __name__ == "__main__":
    sys.exit(th.run_tap(TriggeredReadiness, GridOnlyWithLogFiles))
