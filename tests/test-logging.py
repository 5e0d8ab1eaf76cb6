#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The journal entries of pool-managerd, end to end, inside tests/sandbox (its own journald):
# every per-pool entry carries POOL_ID=, ENGINE=, ENGINE_VERSION=, DEVICE_MASK=; restarts
# RESTART_COUNT= and BACKOFF_MS=; failures LAST_ERROR=; the engine's own lines carry POOL_ID=
# (LogExtraFields=); X-Correlation-Id is echoed and logged as CORRELATION_ID= with the
# operation it starts; the API token is in no entry. Prints TAP lines like test-http.py.

import importlib.util
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

TOKEN = th.TOKEN


def entries(*matches):
    """journalctl -o json with field matches, parsed; byte-array values decoded."""
    out = subprocess.run(["journalctl", "--no-pager", "-o", "json", *matches],
                         capture_output=True, text=True, errors="backslashreplace").stdout
    result = []
    for line in out.splitlines():
        e = json.loads(line)
        for k, v in e.items():
            if isinstance(v, list) and all(isinstance(b, int) for b in v):
                e[k] = bytes(v).decode(errors="backslashreplace")
        result.append(e)
    return result


class LoggingTest(th.HttpTestCase):
    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = th.Daemon("pool-managerd-logging-test", env={"LLORCH_API_TOKEN": TOKEN},
                               extra_config="[Supervision]\nBackoffInitial=500ms\nBackoffJitter=0\n")
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())
        cls.port = th.free_port()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        th.stop_all_engines()

    def daemon_entries(self, *matches):
        return [e for e in entries(*matches) if e.get("SYSLOG_IDENTIFIER") == "pool-managerd"]

    def wait_entries(self, predicate, *matches, timeout=10):
        found = []

        def check():
            found[:] = [e for e in entries(*matches) if predicate(e)]
            return bool(found)
        self.assertTrue(th.wait_for(check, timeout=timeout), f"no entry with {matches}")
        return found

    def test_00_correlation_id_echoed_and_checked(self):
        r = self.daemon.get("/health", headers={"X-Correlation-Id": "req-42.a:b"})
        self.assertEqual(r.headers.get("X-Correlation-Id"), "req-42.a:b")
        r = self.daemon.get("/health")
        self.assertRegex(r.headers.get("X-Correlation-Id") or "", r"^[0-9a-f]{32}$")
        self.assertNotEqual(r.headers.get("X-Correlation-Id"), self.daemon.get("/health").headers.get("X-Correlation-Id"))
        for bad in ("with space", "x" * 129, "quote\"d", "new\tline"):
            r = self.daemon.get("/pools", token=TOKEN, headers={"X-Correlation-Id": bad})
            self.assert_error(r, 400, "X-Correlation-Id", code="INVALID_REQUEST")

    def test_10_preload_entries_carry_the_pool_and_the_request(self):
        body = {"prepared": th.prepared("lg", self.port, engine_version="b4242")}
        r = self.daemon.post("/pools/lg/preload", body, token=TOKEN, headers={"X-Correlation-Id": "preload-lg-1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("X-Correlation-Id"), "preload-lg-1")
        ready = self.wait_entries(lambda e: e.get("MESSAGE_ID") == "0c1727b0c5214e3f8210c1af028737e1", "POOL_ID=lg")
        pool_entries = self.daemon_entries("POOL_ID=lg")
        self.assertGreaterEqual(len(pool_entries), 2)
        for e in pool_entries:
            self.assertEqual(e.get("ENGINE"), "llamacpp", e)
            self.assertEqual(e.get("ENGINE_VERSION"), "b4242", e)
            self.assertIn("DEVICE_MASK", e)
            self.assertEqual(e.get("UNIT"), "pool-engine-lg.service", e)
        # The operation's entries, start to ready, carry the request's id; journalctl finds them.
        self.assertEqual(ready[0].get("CORRELATION_ID"), "preload-lg-1")
        by_id = self.daemon_entries("CORRELATION_ID=preload-lg-1")
        self.assertTrue(any(e.get("MESSAGE_ID") == "b27c621a55f7417f8338f85e48bdd652" for e in by_id), by_id)
        self.assertTrue(all(e.get("POOL_ID") == "lg" or "HTTP" in e.get("MESSAGE", "") for e in by_id), by_id)

    def test_11_engine_unit_has_log_extra_fields(self):
        # LogExtraFields=POOL_ID=lg on the engine's unit: under a system manager journald adds it
        # to the engine's own lines, so journalctl POOL_ID=lg shows both (tools/boot-test checks
        # that). journald reads the fields from /run/systemd/units/, which a user manager does
        # not write: here the unit's property is what can be seen.
        self.assertEqual(th.unit_property("pool-engine-lg.service", "LogExtraFields"), "POOL_ID=lg")

    def test_20_restart_entries(self):
        th.systemctl("kill", "--signal=SIGKILL", "pool-engine-lg.service")
        crash = self.wait_entries(lambda e: e.get("MESSAGE_ID") == "a9c67e90bd4f4c2abc598512cf3a98d3", "POOL_ID=lg")[0]
        self.assertEqual(crash.get("CRASH_REASON"), "signal")
        self.assertEqual(crash.get("BACKOFF_MS"), "500")
        self.assertIn("RESTART_COUNT", crash)
        self.assertIn("LAST_ERROR", crash)
        self.assertNotIn("CORRELATION_ID", crash)     # supervision's, not the request's
        starts = self.wait_entries(lambda e: e.get("MESSAGE_ID") == "b27c621a55f7417f8338f85e48bdd652" and
                                   e.get("OPERATION") == "restart", "POOL_ID=lg")
        self.assertEqual(starts[0].get("RESTART_COUNT"), "1")
        self.assertEqual(starts[0].get("BACKOFF_MS"), "500")
        self.assertNotIn("CORRELATION_ID", starts[0])

    def test_30_failure_has_last_error(self):
        port = th.free_port()
        r = self.daemon.post("/pools/lf/preload", {"prepared": th.prepared("lf", port, "--never-ready", "--exit-after=300")},
                             token=TOKEN)
        self.assertIn(r.status, (502, 504), r)
        failed = self.wait_entries(lambda e: e.get("MESSAGE_ID") == "11fb3b6e511549e6bfb033c32882c031", "POOL_ID=lf")
        self.assertTrue(failed[0].get("LAST_ERROR"), failed[0])
        self.assertRegex(failed[0].get("CORRELATION_ID", ""), r"^[0-9a-f]{32}$")

    def test_40_token_never_logged(self):
        # Wrong and right tokens were sent; debug logging is on (test-http.py's Daemon).
        self.daemon.get("/pools", token="wrong-" + TOKEN)
        out = subprocess.run(["journalctl", "--no-pager", "-o", "json"], capture_output=True, text=True,
                             errors="backslashreplace").stdout
        self.assertNotIn(TOKEN, out)
        self.assertIsNone(re.search(r"Bearer \S", out))


if __name__ == "__main__":
    sys.exit(th.run_tap(LoggingTest))
