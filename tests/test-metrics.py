#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# GET /metrics of pool-managerd, end to end, inside tests/sandbox: the exposition checked by
# Debian's promtool and scraped by a real Prometheus server this test starts on loopback (every
# second, with the bearer token); the counters follow preloads, failures, crashes, restarts,
# drains and reloads, and the persisted ones survive a daemon restart. Prints TAP lines like
# test-http.py. Needs $POOL_MANAGERD and $FAKE_ENGINE; promtool/prometheus cases skip without
# them.

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

TOKEN = th.TOKEN
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """{(name, frozenset(labels.items())): value}, and {family: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict((k, v) for k, v in LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class MetricsTest(th.HttpTestCase):
    """One daemon with a token; tests run in name order and build on each other."""

    daemon = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = th.Daemon("pool-managerd-metrics-test", env={"LLORCH_API_TOKEN": TOKEN},
                               extra_config="HealthTimeout=3s\n[Supervision]\nBackoffInitial=2s\n"
                                            "BackoffJitter=0\n")
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())
        cls.port_a = th.free_port()
        cls.port_b = th.free_port()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        th.stop_all_engines()

    def scrape(self):
        r = self.daemon.get("/metrics", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"), CONTENT_TYPE)
        text = r.raw.decode()
        self.last_text = text
        return parse(text)

    def wait_value(self, name, expected, timeout=15, **labels):
        seen = []

        def check():
            samples, _ = self.scrape()
            seen.append(value(samples, name, **labels))
            return seen[-1] == expected
        self.assertTrue(th.wait_for(check, timeout=timeout, interval=0.1),
                        f"{name}{labels}: expected {expected}, last {seen[-1:]}")

    def preload(self, pool_id, port, *flags):
        return self.daemon.post(f"/pools/{pool_id}/preload", {"prepared": th.prepared(pool_id, port, *flags)},
                                token=TOKEN)

    def test_00_token_and_format(self):
        r = self.daemon.get("/metrics")
        self.assert_error(r, 401, "unauthorized")
        r = self.daemon.post("/metrics", token=TOKEN)
        self.assert_error(r, 405, "not allowed")
        self.assertEqual(r.headers.get("Allow"), "GET")
        samples, types = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_build_info", version=self.daemon.get("/health").json["version"]), 1)
        # Every family the man page lists is there with its type, even without pools.
        for name, kind in [("pool_ready", "gauge"), ("pool_live", "gauge"), ("slots_total", "gauge"),
                           ("slots_free", "gauge"), ("active_leases", "gauge"), ("circuit_breaker_state", "gauge"),
                           ("preload_total", "counter"), ("restarts_total", "counter"),
                           ("engine_crashes_total", "counter"), ("drains_total", "counter"),
                           ("reloads_total", "counter"), ("circuit_breaker_opens_total", "counter"),
                           ("restart_storms_total", "counter"), ("driver_resets_total", "counter"),
                           ("preload_duration_seconds", "histogram"), ("drain_duration_seconds", "histogram"),
                           ("reload_duration_seconds", "histogram"), ("backoff_delay_seconds", "histogram"),
                           ("device_vram_total_bytes", "gauge"), ("device_vram_free_bytes", "gauge"),
                           ("engine_memory_bytes", "gauge"), ("engine_cpu_seconds_total", "counter"),
                           ("engine_tasks", "gauge"), ("engine_requests_running", "gauge"),
                           ("engine_requests_waiting", "gauge"), ("engine_kv_cache_usage_ratio", "gauge"),
                           ("build_info", "gauge")]:
            self.assertEqual(types.get("pool_managerd_" + name), kind, name)

    def test_10_preload_counted(self):
        r = self.preload("ma", self.port_a, "--slots", "4")
        self.assertEqual(r.status, 200, r)
        samples, _ = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_pool_ready", pool_id="ma"), 1)
        self.assertEqual(value(samples, "pool_managerd_pool_live", pool_id="ma"), 1)
        self.assertEqual(value(samples, "pool_managerd_preload_total", pool_id="ma", engine="llamacpp",
                               outcome="success", reason=""), 1)
        self.assertEqual(value(samples, "pool_managerd_preload_duration_seconds_count", pool_id="ma"), 1)
        self.assertGreater(value(samples, "pool_managerd_preload_duration_seconds_sum", pool_id="ma"), 0)
        self.assertEqual(value(samples, "pool_managerd_preload_duration_seconds_bucket", pool_id="ma", le="+Inf"), 1)
        self.assertEqual(value(samples, "pool_managerd_circuit_breaker_state", pool_id="ma"), 0)
        self.assertEqual(value(samples, "pool_managerd_active_leases", pool_id="ma"), 0)
        for reason in ("exit_code", "signal", "out_of_memory", "cuda_error", "health_failure", "clean_exit"):
            self.assertEqual(value(samples, "pool_managerd_engine_crashes_total", pool_id="ma", reason=reason), 0)
        # The engine's unit as its cgroup counts it; a file the kernel does not keep there (the
        # controller is off in the sandbox's slice) leaves the sample out, never a 0.
        cg = open(f"/proc/{self.daemon.get('/pools/ma/status', token=TOKEN).json['pid']}/cgroup").read()
        self.assertIn("pool-engine-ma.service", cg)
        v2 = [line[3:] for line in cg.splitlines() if line.startswith("0::")][0]
        base = next(m + v2 for m in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
                    if os.path.exists(m + v2 + "/cgroup.procs"))
        for family, file, check in (("engine_tasks", "pids.current", lambda v: v == 1),
                                    ("engine_memory_bytes", "memory.current", lambda v: v > 100 * 1024),
                                    ("engine_cpu_seconds_total", "cpu.stat", lambda v: 0 <= v < 60)):
            v = value(samples, "pool_managerd_" + family, pool_id="ma")
            if os.path.exists(os.path.join(base, file)):
                self.assertTrue(v is not None and check(v), f"{family} {v}")
            else:
                self.assertIsNone(v, family)
        self.assertTrue(os.path.exists(os.path.join(base, "cpu.stat")))     # always there on cgroup2
        self.assertIsNone(value(samples, "pool_managerd_engine_tasks", pool_id="mb"))

    def test_11_leases(self):
        r = self.daemon.post("/pools/ma/leases", token=TOKEN)
        self.assertEqual(r.status, 200, r)
        samples, _ = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_active_leases", pool_id="ma"), 1)
        r = request_delete(self.daemon.port, "/pools/ma/leases")
        self.assertEqual(r.status, 200, r)

    def test_12_failed_preload_counted_by_code(self):
        r = self.preload("mb", self.port_b, "--never-ready")
        self.assertEqual(r.status, 504, r)
        self.assertEqual(r.json["code"], "HEALTH_TIMEOUT")
        samples, _ = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_preload_total", pool_id="mb", engine="llamacpp",
                               outcome="failure", reason="HEALTH_TIMEOUT"), 1)
        self.assertEqual(value(samples, "pool_managerd_preload_total", pool_id="mb", engine="llamacpp",
                               outcome="success", reason=""), 0)
        self.assertEqual(value(samples, "pool_managerd_pool_ready", pool_id="mb"), 0)

    def test_20_crash_and_restart(self):
        pid = self.daemon.get("/pools/ma/status", token=TOKEN).json["pid"]
        th.systemctl("kill", "--signal=SIGKILL", "pool-engine-ma.service")
        self.wait_value("pool_managerd_engine_crashes_total", 1, pool_id="ma", reason="signal")
        self.wait_value("pool_managerd_restarts_total", 1, pool_id="ma", reason="signal")
        self.wait_value("pool_managerd_pool_ready", 1, pool_id="ma")
        samples, _ = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_backoff_delay_seconds_count", pool_id="ma"), 1)
        self.assertEqual(value(samples, "pool_managerd_backoff_delay_seconds_sum", pool_id="ma"), 2)
        self.assertEqual(value(samples, "pool_managerd_backoff_delay_seconds_bucket", pool_id="ma", le="1"), 0)
        self.assertEqual(value(samples, "pool_managerd_backoff_delay_seconds_bucket", pool_id="ma", le="2.5"), 1)
        self.assertEqual(value(samples, "pool_managerd_restarts_total", pool_id="ma", reason="exit_code"), 0)
        # A restart is not a preload.
        self.assertEqual(value(samples, "pool_managerd_preload_total", pool_id="ma", engine="llamacpp",
                               outcome="success", reason=""), 1)
        self.assertNotEqual(self.daemon.get("/pools/ma/status", token=TOKEN).json["pid"], pid)

    def test_30_promtool(self):
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed")
        self.scrape()
        p = subprocess.run(["promtool", "check", "metrics"], input=self.last_text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_40_counters_survive_a_daemon_restart(self):
        self.daemon.stop()
        self.assertEqual(self.daemon.start(), 0, self.daemon.log())
        samples, _ = self.scrape()
        # Persisted with the pool's state: kept.
        self.assertEqual(value(samples, "pool_managerd_engine_crashes_total", pool_id="ma", reason="signal"), 1)
        self.assertEqual(value(samples, "pool_managerd_restarts_total", pool_id="ma", reason="signal"), 1)
        self.assertEqual(value(samples, "pool_managerd_pool_ready", pool_id="ma"), 1)
        # In memory only (the man page says so): reset.
        self.assertEqual(value(samples, "pool_managerd_preload_total", pool_id="ma", engine="llamacpp",
                               outcome="success", reason=""), 0)

    def test_50_drain_and_reload(self):
        r = self.daemon.post("/pools/ma/reload", {"prepared": th.prepared("ma", self.port_a, engine_version="v2")},
                             token=TOKEN)
        self.assertEqual(r.status, 200, r)
        samples, _ = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_reloads_total", pool_id="ma", outcome="success"), 1)
        self.assertEqual(value(samples, "pool_managerd_reloads_total", pool_id="ma", outcome="rolled_back"), 0)
        self.assertEqual(value(samples, "pool_managerd_reload_duration_seconds_count", pool_id="ma"), 1)
        # The reload drained the old engine first.
        self.assertEqual(value(samples, "pool_managerd_drains_total", pool_id="ma", outcome="completed"), 1)
        r = self.daemon.post("/pools/ma/drain", {"deadline_ms": 5000}, token=TOKEN)
        self.assertEqual(r.status, 200, r)
        samples, _ = self.scrape()
        self.assertEqual(value(samples, "pool_managerd_drains_total", pool_id="ma", outcome="completed"), 2)
        self.assertEqual(value(samples, "pool_managerd_drains_total", pool_id="ma", outcome="forced"), 0)
        self.assertEqual(value(samples, "pool_managerd_drain_duration_seconds_count", pool_id="ma"), 2)
        self.assertEqual(value(samples, "pool_managerd_pool_ready", pool_id="ma"), 0)
        self.assertEqual(value(samples, "pool_managerd_pool_live", pool_id="ma"), 0)


class DeviceMetricsTest(unittest.TestCase):
    """The GPU families from the inventory, with the fake NVML (the one fake: the hardware)."""

    GiB = 1 << 30
    UUIDS = ["GPU-8e0f1a2b-0000-4000-8000-000000000001", "GPU-8e0f1a2b-0000-4000-8000-000000000002"]

    @classmethod
    def setUpClass(cls):
        fake_nvml = os.environ.get("FAKE_NVML")
        if not fake_nvml:
            raise unittest.SkipTest("FAKE_NVML not set")
        cls.dir = tempfile.mkdtemp(prefix="metrics-nvml.", dir=th.RUNTIME)
        cls.gpus = os.path.join(cls.dir, "gpus.json")
        cls.config = {"driver_version": "550.54.15", "xid_events": [], "devices": [
            {"uuid": cls.UUIDS[0], "name": "NVIDIA A100", "pci_bus_id": "00000000:3B:00.0", "minor": 0,
             "compute_capability": "8.0", "memory_total": 80 * cls.GiB, "memory_used": 1 * cls.GiB},
            {"uuid": cls.UUIDS[1], "name": "NVIDIA L4", "pci_bus_id": "00000000:5E:00.0", "minor": 1,
             "compute_capability": "8.9", "memory_total": 24 * cls.GiB, "memory_used": 0}]}
        cls.write()
        cls.daemon = th.Daemon("pool-managerd-metrics-gpu-test", env={"FAKE_NVML_CONFIG": cls.gpus},
                               extra_config=f"NvmlLibrary={fake_nvml}\n[GPU]\nRefreshInterval=200ms\n")
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def write(cls):
        with open(cls.gpus + ".tmp", "w") as f:
            json.dump(cls.config, f)
        os.rename(cls.gpus + ".tmp", cls.gpus)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def scrape(self):
        r = self.daemon.get("/metrics")
        self.assertEqual(r.status, 200, r)
        return parse(r.raw.decode())[0]

    def test_vram_and_driver_resets(self):
        s = self.scrape()
        self.assertEqual(value(s, "pool_managerd_device_vram_total_bytes", device="0", uuid=self.UUIDS[0]), 80 * self.GiB)
        self.assertEqual(value(s, "pool_managerd_device_vram_free_bytes", device="0", uuid=self.UUIDS[0]), 79 * self.GiB)
        self.assertEqual(value(s, "pool_managerd_device_vram_total_bytes", device="1", uuid=self.UUIDS[1]), 24 * self.GiB)
        self.assertEqual(value(s, "pool_managerd_driver_resets_total", device="1", uuid=self.UUIDS[1]), 0)
        # Memory taken on the GPU shows at the next refresh; an XID of the driver (79: fallen off
        # the bus) counts as a driver reset, one of the application's (13) does not.
        self.config["devices"][1]["memory_used"] = 4 * self.GiB
        self.config["xid_events"] += [{"device": 1, "xid": 13}, {"device": 1, "xid": 79}]
        self.write()
        seen = []

        def changed():
            s = self.scrape()
            seen.append((value(s, "pool_managerd_device_vram_free_bytes", device="1", uuid=self.UUIDS[1]),
                         value(s, "pool_managerd_driver_resets_total", device="1", uuid=self.UUIDS[1])))
            return seen[-1] == (20 * self.GiB, 1)
        self.assertTrue(th.wait_for(changed, timeout=10), seen[-1:])


class EngineLoadTest(unittest.TestCase):
    """The engine's own load, read from its /metrics: llama.cpp's names, vLLM's, and none."""

    LOAD = ("pool_managerd_engine_requests_running", "pool_managerd_engine_requests_waiting",
            "pool_managerd_engine_kv_cache_usage_ratio")

    @classmethod
    def setUpClass(cls):
        cls.daemon = th.start_daemon("pool-managerd-engine-load-test",
                                     extra_config="EngineMetricsInterval=200ms\nEngineMetricsTimeout=1s\n")

    @classmethod
    def tearDownClass(cls):
        th.stop_daemon(cls.daemon)

    def scrape(self):
        r = self.daemon.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.last_text = r.raw.decode()
        return parse(self.last_text)[0]

    def preload(self, pool_id, *flags):
        r = self.daemon.post(f"/pools/{pool_id}/preload", {"prepared": th.prepared(pool_id, th.free_port(), *flags)})
        self.assertEqual(r.status, 200, r)

    def wait_load(self, pool_id, expected, timeout=10):
        seen = []

        def check():
            s = self.scrape()
            seen.append(tuple(value(s, name, pool_id=pool_id) for name in self.LOAD))
            return seen[-1] == expected
        self.assertTrue(th.wait_for(check, timeout=timeout, interval=0.1),
                        f"{pool_id}: expected {expected}, last {seen[-1:]}")

    def test_1_llamacpp_vllm_and_none(self):
        self.preload("el-llama", "--metrics-style", "llamacpp", "--requests-running", "3", "--requests-waiting", "2",
                     "--kv-cache-usage", "0.5")
        self.preload("el-vllm", "--metrics-style", "vllm", "--requests-running", "4", "--requests-waiting", "1",
                     "--kv-cache-usage", "0.25")
        self.preload("el-none", "--metrics-style", "none")
        self.wait_load("el-llama", (3, 2, 0.5))
        self.wait_load("el-vllm", (4, 1, 0.25))
        # The engine without metrics: absent, never an error; the pool stays ready.
        time.sleep(0.5)
        s = self.scrape()
        for name in self.LOAD:
            self.assertIsNone(value(s, name, pool_id="el-none"), name)
        self.assertEqual(value(s, "pool_managerd_pool_ready", pool_id="el-none"), 1)
        self.assertEqual(self.daemon.get("/pools/el-none/status").json["state"], "ready")
        # Said once at debug level, not once per scrape (several by now, every 200 ms).
        said = 'Pool "el-none": no engine load from'
        self.assertTrue(th.wait_for(lambda: said in self.daemon.log(), timeout=5), self.daemon.log()[-2000:])
        time.sleep(0.5)
        log = self.daemon.log()
        self.assertEqual(log.count(said), 1, log[-2000:])
        self.assertIn("HTTP 501", log)

    def test_2_promtool(self):
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed")
        self.wait_load("el-llama", (3, 2, 0.5))
        p = subprocess.run(["promtool", "check", "metrics"], input=self.last_text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_3_default_llamacpp_without_kv_cache(self):
        # The fake's default /metrics (llama-server's, no KV-cache ratio): zeros, no ratio.
        self.preload("el-default")
        self.wait_load("el-default", (0, 0, None))

    def test_4_gone_with_the_engine(self):
        r = self.daemon.post("/pools/el-vllm/stop")
        self.assertEqual(r.status, 200, r)
        self.wait_load("el-vllm", (None, None, None), timeout=3)
        # Killed: absent until the restarted engine answers again.
        th.systemctl("kill", "--signal=SIGKILL", "pool-engine-el-llama.service")
        self.wait_load("el-llama", (None, None, None), timeout=5)
        self.wait_load("el-llama", (3, 2, 0.5), timeout=20)

    def test_5_sighup(self):
        # EngineMetricsInterval=0 read again: no engine load; back to 200ms: there again.
        def configure(interval):
            with open(self.daemon.config) as f:
                text = re.sub(r"EngineMetricsInterval=\S+", f"EngineMetricsInterval={interval}", f.read())
            with open(self.daemon.config, "w") as f:
                f.write(text)
            th.systemctl("kill", "-s", "HUP", f"{self.daemon.unit}.service")
        configure("0")
        self.wait_load("el-llama", (None, None, None), timeout=5)
        configure("200ms")
        self.wait_load("el-llama", (3, 2, 0.5), timeout=5)


def request_delete(port, path):
    return th.request(port, "DELETE", path, token=TOKEN)


class PrometheusTest(unittest.TestCase):
    """A real Prometheus server scrapes the daemon every second with the bearer token."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("prometheus"):
            raise unittest.SkipTest("prometheus not installed")
        cls.daemon = th.Daemon("pool-managerd-prometheus-test", env={"LLORCH_API_TOKEN": TOKEN},
                               extra_config="[Supervision]\nBackoffInitial=3s\nBackoffJitter=0\n")
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())
        cls.dir = tempfile.mkdtemp(prefix="prometheus.", dir=th.RUNTIME)
        cls.web = th.free_port()
        conf = os.path.join(cls.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: pool-managerd\n    scrape_interval: 1s\n"
                    "    scrape_timeout: 1s\n"
                    f"    authorization:\n      type: Bearer\n      credentials: {TOKEN}\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{cls.daemon.port}']\n")
        cls.log = open(os.path.join(cls.dir, "prometheus.log"), "w")
        cls.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={conf}", f"--storage.tsdb.path={cls.dir}/data",
             f"--web.listen-address=127.0.0.1:{cls.web}"], stdout=cls.log, stderr=subprocess.STDOUT)

    @classmethod
    def tearDownClass(cls):
        cls.prometheus.kill()           # its database is thrown away anyway
        cls.prometheus.wait()
        cls.log.close()
        cls.daemon.stop()
        th.stop_all_engines()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def query(self, q):
        try:
            r = th.request(self.web, "GET", "/api/v1/query?query=" + urllib.parse.quote(q), timeout=5)
        except OSError:
            return None
        if r.status != 200 or not r.json or r.json.get("status") != "success":
            return None
        result = r.json["data"]["result"]
        return result[0]["value"][1] if result else None

    def wait_query(self, q, expected, timeout=30):
        seen = []

        def check():
            seen.append(self.query(q))
            return seen[-1] == expected
        self.assertTrue(th.wait_for(check, timeout=timeout, interval=0.2),
                        f"{q}: expected {expected}, last {seen[-1:]}; prometheus log:\n" +
                        open(os.path.join(self.dir, "prometheus.log")).read()[-2000:])

    def test_scrape_ready_then_killed(self):
        port = th.free_port()
        r = self.daemon.post("/pools/prom/preload", {"prepared": th.prepared("prom", port)}, token=TOKEN)
        self.assertEqual(r.status, 200, r)
        # The target is up (a scrape Prometheus could not parse would make it 0)...
        self.wait_query('up{job="pool-managerd"}', "1")
        # ... and the pool is ready; killed, Prometheus sees it unready (backoff 3 s), then ready.
        self.wait_query('pool_managerd_pool_ready{pool_id="prom"}', "1")
        th.systemctl("kill", "--signal=SIGKILL", "pool-engine-prom.service")
        self.wait_query('pool_managerd_pool_ready{pool_id="prom"}', "0")
        self.wait_query('pool_managerd_engine_crashes_total{pool_id="prom",reason="signal"}', "1")
        self.wait_query('pool_managerd_pool_ready{pool_id="prom"}', "1")
        self.wait_query('up{job="pool-managerd"}', "1")


if __name__ == "__main__":
    sys.exit(th.run_tap(MetricsTest, EngineLoadTest, DeviceMetricsTest, PrometheusTest))
