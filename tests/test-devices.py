#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The GPU inventory end to end (issue 9), inside tests/sandbox: the real daemon as a Type=notify
# user unit with NvmlLibrary= the fake NVML (build/tests/libfake-nvml.so), which describes GPUs
# from a JSON file the test rewrites while the daemon runs. Checks GET /devices, the Devices and
# DeviceInventoryState properties, poolctl devices / device uncordon, a refresh after the file
# changes, the per-process VRAM of an engine (attributed to its unit), XIDs (application errors
# and others), a lost GPU, NVML that fails to initialise or is missing, and the token rule.
# Prints TAP lines; needs $POOL_MANAGERD, $FAKE_ENGINE, $FAKE_NVML and $POOLCTL; exits 77
# outside the sandbox.

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("test_http", os.path.join(HERE, "test-http.py"))
th = importlib.util.module_from_spec(spec)
spec.loader.exec_module(th)

FAKE_NVML = os.environ.get("FAKE_NVML")
POOLCTL = os.environ.get("POOLCTL")
GiB = 1 << 30
UUID = ["GPU-6a1e3c1d-0000-4000-8000-00000000000%d" % i for i in range(3)]
MIG = "MIG-a1b2c3d4-0000-4000-8000-000000000000"


def gpus():
    """Two plain GPUs and one in MIG mode with one MIG device."""
    return {
        "driver_version": "550.54.15",
        "devices": [
            {"uuid": UUID[0], "name": "NVIDIA A100-SXM4-80GB", "pci_bus_id": "00000000:3B:00.0", "minor": 0,
             "compute_capability": "8.0", "memory_total": 80 * GiB, "memory_used": 1 * GiB},
            {"uuid": UUID[1], "name": "NVIDIA L4", "pci_bus_id": "00000000:5E:00.0", "minor": 1,
             "compute_capability": "8.9", "memory_total": 24 * GiB, "memory_used": 0},
            {"uuid": UUID[2], "name": "NVIDIA H100 80GB HBM3", "pci_bus_id": "00000000:86:00.0", "minor": 2,
             "compute_capability": "9.0", "memory_total": 80 * GiB, "memory_used": 0, "mig_mode": True,
             "mig": [{"uuid": MIG, "name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "gpu_instance_id": 9,
                      "compute_instance_id": 0, "memory_total": 10 * GiB, "memory_used": 2 * GiB}]},
        ],
        "xid_events": [],
    }


class FakeGpus:
    """The fake NVML's JSON file: written whole (rename), so the daemon never reads half of it."""

    def __init__(self, config):
        self.dir = tempfile.mkdtemp(prefix="fake-nvml.", dir=th.RUNTIME)
        self.path = os.path.join(self.dir, "gpus.json")
        self.config = config
        self.write()

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.config, f)
        os.rename(tmp, self.path)


def fake_daemon(unit, gpus, library=None, env=None):
    return th.Daemon(unit, env={"FAKE_NVML_CONFIG": gpus.path, **(env or {})},
                     extra_config=f"NvmlLibrary={library or FAKE_NVML}\n[GPU]\nRefreshInterval=200ms\n")


def busctl(*args):
    return subprocess.run(["busctl", "--user", *args], capture_output=True, text=True)


def poolctl(*args):
    return subprocess.run([POOLCTL, "--user", *args], capture_output=True, text=True)


class DevicesTest(th.HttpTestCase):
    """One daemon on three fake GPUs; tests run in name order and build on each other."""

    @classmethod
    def setUpClass(cls):
        cls.gpus = FakeGpus(gpus())
        cls.daemon = fake_daemon("pool-managerd-devices-test", cls.gpus)
        if cls.daemon.start() != 0:
            raise RuntimeError("daemon did not start:\n" + cls.daemon.log())

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        th.stop_all_engines()

    def devices(self):
        r = self.daemon.get("/devices")
        self.assert_json_response(r, 200)
        return r.json

    def wait_devices(self, predicate, timeout=10):
        """The inventory once predicate(inventory) holds (the refresh runs every 200 ms)."""
        self.assertTrue(th.wait_for(lambda: predicate(self.devices()), timeout=timeout, interval=0.1),
                        json.dumps(self.devices(), indent=1))
        return self.devices()

    def test_00_inventory(self):
        inv = self.devices()
        self.assertEqual(inv["state"], "ok")
        self.assertEqual(inv["nvml_library"], FAKE_NVML)
        self.assertEqual(inv["driver_version"], "550.54.15")
        self.assertEqual(inv["refresh_interval_usec"], 200000)
        d = inv["devices"]
        self.assertEqual([x["index"] for x in d], [0, 1, 2])
        self.assertEqual([x["uuid"] for x in d], UUID)
        self.assertEqual(d[0]["name"], "NVIDIA A100-SXM4-80GB")
        self.assertEqual(d[0]["pci_bus_id"], "00000000:3B:00.0")
        self.assertEqual(d[1]["compute_capability"], "8.9")
        self.assertEqual([x["minor"] for x in d], [0, 1, 2])
        self.assertEqual(d[0]["memory_total_bytes"], 80 * GiB)
        self.assertEqual(d[0]["memory_used_bytes"], 1 * GiB)
        self.assertEqual(d[0]["memory_free_bytes"], 79 * GiB)
        for x in d:
            self.assertEqual((x["health"], x["cordoned"], x["driver_resets"], x["last_xid"]),
                             ("healthy", False, 0, None))
        self.assertFalse(d[0]["mig_enabled"])
        self.assertTrue(d[2]["mig_enabled"])
        mig = d[2]["mig_devices"]
        self.assertEqual(len(mig), 1)
        self.assertEqual((mig[0]["uuid"], mig[0]["gpu_instance_id"], mig[0]["compute_instance_id"]), (MIG, 9, 0))
        self.assertEqual(mig[0]["memory_free_bytes"], 8 * GiB)

    def test_01_bus_properties(self):
        r = busctl("get-property", "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                   "org.llorch.PoolManager1.Manager", "DeviceInventoryState")
        self.assertEqual(r.stdout.strip(), 's "ok"', r)
        r = busctl("--json=short", "get-property", "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                   "org.llorch.PoolManager1.Manager", "Devices")
        self.assertEqual(r.returncode, 0, r)
        v = json.loads(r.stdout)
        self.assertEqual(v["type"], "a(ussssutttbssbuuua(ussuuttt)a(uts))")
        first = v["data"][0]
        self.assertEqual(first[:6], [0, UUID[0], "NVIDIA A100-SXM4-80GB", "00000000:3B:00.0", "8.0", 0])
        self.assertEqual(first[6:9], [80 * GiB, 1 * GiB, 79 * GiB])
        self.assertEqual(first[10], "healthy")
        self.assertEqual(v["data"][2][16][0][1], MIG)

    def test_02_poolctl_devices(self):
        r = poolctl("devices")
        self.assertEqual(r.returncode, 0, r)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^INDEX +NAME +UUID +MEMORY +FREE +HEALTH +XIDS +PROCESSES$")
        self.assertRegex(lines[1], r"^0 +NVIDIA A100-SXM4-80GB +" + UUID[0] + r" +1\.0 GiB / 80\.0 GiB +79\.0 GiB +healthy")
        self.assertEqual(lines[-1], "3 GPUs listed. Inventory: ok.")
        r = poolctl("devices", "--json")
        self.assertEqual(r.returncode, 0, r)
        j = json.loads(r.stdout)
        self.assertEqual(j["state"], "ok")
        # The same document as GET /devices, device by device.
        self.assertEqual(j["devices"], self.devices()["devices"])

    def test_03_refresh_after_change(self):
        self.gpus.config["devices"][1]["memory_used"] = 10 * GiB
        self.gpus.write()
        inv = self.wait_devices(lambda inv: inv["devices"][1]["memory_free_bytes"] == 14 * GiB)
        self.assertEqual(inv["devices"][1]["memory_used_bytes"], 10 * GiB)

    def test_04_engine_process_vram(self):
        # An engine of a pool, and NVML reporting its process on GPU0: the inventory names its unit.
        port = th.free_port()
        r = self.daemon.post("/pools/gpu-a/preload", {"prepared": th.prepared("gpu-a", port, device_mask="GPU0")})
        self.assert_json_response(r, 200)
        pid = r.json["pid"]
        self.gpus.config["devices"][0]["processes"] = [{"pid": pid, "used_memory": 6 * GiB}]
        self.gpus.write()
        inv = self.wait_devices(lambda inv: inv["devices"][0]["processes"] != [])
        self.assertEqual(inv["devices"][0]["processes"],
                         [{"pid": pid, "used_memory_bytes": 6 * GiB, "unit": "pool-engine-gpu-a.service"}])
        self.assert_json_response(self.daemon.post("/pools/gpu-a/stop"), 200)

    def test_05_application_xid(self):
        self.gpus.config["xid_events"].append({"device": 1, "xid": 13})
        self.gpus.write()
        inv = self.wait_devices(lambda inv: inv["devices"][1]["xid_count"] == 1)
        d = inv["devices"][1]
        self.assertEqual((d["health"], d["cordoned"], d["last_xid"], d["driver_resets"]), ("healthy", False, 13, 0))

    def test_06_xid_makes_unhealthy(self):
        self.gpus.config["xid_events"].append({"device": 1, "xid": 79})
        self.gpus.write()
        inv = self.wait_devices(lambda inv: inv["devices"][1]["health"] == "unhealthy")
        d = inv["devices"][1]
        self.assertEqual((d["cordoned"], d["last_xid"], d["xid_count"], d["driver_resets"], d["health_reason"]),
                         (True, 79, 2, 1, "XID 79"))
        self.assertEqual(inv["devices"][0]["health"], "healthy")
        self.assertTrue(th.wait_for(lambda: "GPU1 (" + UUID[1] + ") is unhealthy: XID 79" in self.daemon.log(),
                                    timeout=5))
        r = poolctl("devices")
        self.assertRegex(r.stdout, r"\n1 .* unhealthy,cordoned +2 \(last 79\)")

    def test_07_uncordon(self):
        r = poolctl("device", "uncordon", "1")
        self.assertEqual((r.returncode, r.stdout), (0, "GPU1 uncordoned: it takes new engines again.\n"), r)
        d = self.devices()["devices"][1]
        self.assertEqual((d["health"], d["cordoned"], d["health_reason"], d["driver_resets"]),
                         ("healthy", False, None, 1))
        # Again over HTTP, by UUID: already in service, still 200.
        r = self.daemon.post(f"/devices/{UUID[1]}/uncordon")
        self.assert_json_response(r, 200, {"index": 1, "cordoned": False})
        r = self.daemon.post("/devices/GPU7/uncordon")
        self.assert_error(r, 404, 'unknown device "GPU7"', "NO_SUCH_DEVICE")
        r = poolctl("device", "uncordon", "7")
        self.assertEqual(r.returncode, 3, r)      # NoSuchDevice: "no such object"
        self.assertIn('Failed to uncordon device 7: unknown device "7"', r.stderr)
        r = poolctl("device", "cordon", "1")
        self.assertEqual(r.returncode, 2, r)
        r = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.llorch.PoolManager1",
                            "/org/llorch/PoolManager1", "org.llorch.PoolManager1.Manager.UncordonDevice",
                            "string:nope"], capture_output=True, text=True)
        self.assertIn("org.llorch.PoolManager1.Error.NoSuchDevice", r.stderr)

    def test_08_gpu_lost(self):
        self.gpus.config["devices"][0]["lost"] = True
        self.gpus.write()
        inv = self.wait_devices(lambda inv: inv["devices"][0]["health"] == "lost")
        d = inv["devices"][0]
        # Identity is kept from before the loss.
        self.assertEqual((d["uuid"], d["cordoned"], d["driver_resets"]), (UUID[0], True, 1))
        self.assertIn("GPU is lost", d["health_reason"])
        r = self.daemon.post("/devices/0/uncordon")
        self.assert_error(r, 409, "is lost")
        # Back on the bus: unhealthy until uncordoned, the loss counted once.
        self.gpus.config["devices"][0]["lost"] = False
        self.gpus.write()
        inv = self.wait_devices(lambda inv: inv["devices"][0]["health"] == "unhealthy")
        self.assertEqual((inv["devices"][0]["cordoned"], inv["devices"][0]["driver_resets"]), (True, 1))
        self.assert_json_response(self.daemon.post("/devices/0/uncordon"), 200, {"index": 0, "cordoned": False})
        self.assertEqual(self.devices()["devices"][0]["health"], "healthy")

    def test_09_devices_changed_signal(self):
        # Health changes are announced: PropertiesChanged invalidating Devices.
        mon = subprocess.Popen(["busctl", "--user", "--match",
                                "type='signal',interface='org.freedesktop.DBus.Properties',"
                                "path='/org/llorch/PoolManager1'", "monitor", "--json=short"],
                               stdout=subprocess.PIPE, text=True)
        try:
            th.time.sleep(0.5)
            self.gpus.config["xid_events"].append({"device": 1, "xid": 48})
            self.gpus.write()
            self.wait_devices(lambda inv: inv["devices"][1]["health"] == "unhealthy")
            th.time.sleep(0.5)
        finally:
            mon.terminate()
        out = mon.communicate(timeout=10)[0]
        self.assertIn('"Devices"', out)
        poolctl("device", "uncordon", "1")


    # ---- Placement at preload (device masks, VRAM admission, split, health) ----

    def status(self, pool):
        r = self.daemon.get(f"/pools/{pool}/status")
        self.assert_json_response(r, 200)
        return r.json

    def preload(self, pool, *flags, **extra):
        return self.daemon.post(f"/pools/{pool}/preload",
                                {"prepared": th.prepared(pool, th.free_port(), *flags, **extra)})

    def assert_nothing_registered(self, pool):
        self.assertEqual(self.daemon.get(f"/pools/{pool}/status").status, 404)
        self.assertEqual(th.unit_property(f"pool-engine-{pool}.service", "LoadState"), "not-found")

    def test_10_mask_on_the_unit(self):
        r = self.preload("mask1", device_mask="GPU1")
        self.assert_json_response(r, 200)
        unit = "pool-engine-mask1.service"
        env = th.unit_property(unit, "Environment").split()
        self.assertIn(f"CUDA_VISIBLE_DEVICES={UUID[1]}", env)
        self.assertIn("CUDA_DEVICE_ORDER=PCI_BUS_ID", env)
        self.assertEqual(th.unit_property(unit, "DevicePolicy"), "closed")
        allow = th.unit_property(unit, "DeviceAllow")
        for node in ("/dev/nvidiactl rw", "/dev/nvidia-uvm rw", "/dev/nvidia-uvm-tools rw", "/dev/nvidia1 rw"):
            self.assertIn(node, allow)
        self.assertNotIn("/dev/nvidia0 ", allow + " ")
        self.assertNotIn("char-nvidia", allow)
        st = self.status("mask1")
        self.assertEqual((st["device_mask"], st["devices"]), ("GPU1", UUID[1]))
        missing = [n for n in ("/dev/nvidiactl", "/dev/nvidia1") if not os.path.exists(n)]
        if missing:
            # systemd drops the rule of a node that is missing: said in the status and the log.
            self.assertIn("device nodes missing now: ", st["placement_warning"])
            self.assertIn(missing[-1], st["placement_warning"])
            self.assertIn("device nodes missing now", self.daemon.log())
        self.assert_json_response(self.daemon.post("/pools/mask1/stop"), 200)

    def test_11_bad_masks_refused(self):
        cases = [("GPU7", 404, 'element 1: unknown device "GPU7": this node has GPU0', "NO_SUCH_DEVICE"),
                 ("0,GPU-deadbeef", 404, 'element 2: unknown device "GPU-deadbeef"', "NO_SUCH_DEVICE"),
                 ("0,0", 422, 'element 2 ("0") names GPU0 again', "INVALID_PREPARED_ENGINE"),
                 ("0," + UUID[0], 422, f'element 2 ("{UUID[0]}") duplicates GPU0', "INVALID_PREPARED_ENGINE"),
                 ("0,,1", 422, "element 2 is empty", "INVALID_PREPARED_ENGINE"),
                 ("2", 422, "GPU2 is in MIG mode; name one of its MIG devices", "INVALID_PREPARED_ENGINE")]
        for mask, status, message, code in cases:
            with self.subTest(mask=mask):
                self.assert_error(self.preload("badmask", device_mask=mask), status, message, code)
                self.assert_nothing_registered("badmask")

    def test_12_vram_admission(self):
        # GPU1: 24 GiB, 10 GiB used by NVML (test_03): 14 GiB free.
        r = self.preload("vram1", device_mask="1", vram_required_bytes=4 * GiB)
        self.assert_json_response(r, 200)
        st = self.status("vram1")
        self.assertEqual(st["vram_required_bytes"], 4 * GiB)
        # 4 GiB promised to vram1, whose engine NVML does not show yet: 10 GiB left.
        r = self.preload("vram2", device_mask="1", vram_required_bytes=12 * GiB)
        self.assert_error(r, 409, f"device {UUID[1]} (GPU1) has 10.0 GiB free", "INSUFFICIENT_VRAM")
        self.assertIn("4.0 GiB promised to pools still starting), 12.0 GiB", r.json["error"])
        self.assert_nothing_registered("vram2")
        # NVML sees the engine use its 4 GiB: no longer promised on top of NVML's figure.
        pid = self.status("vram1")["pid"]
        self.gpus.config["devices"][1]["processes"] = [{"pid": pid, "used_memory": 4 * GiB}]
        self.gpus.config["devices"][1]["memory_used"] = 14 * GiB
        self.gpus.write()
        self.assertTrue(th.wait_for(lambda: self.status("vram1")["vram_used_bytes"] == 4 * GiB, timeout=10),
                        self.status("vram1"))
        r = self.preload("vram2", device_mask="1", vram_required_bytes=12 * GiB)
        self.assert_error(r, 409, "has 10.0 GiB free", "INSUFFICIENT_VRAM")
        # Once vram1 stops its promise is gone.
        self.assert_json_response(self.daemon.post("/pools/vram1/stop"), 200)
        self.gpus.config["devices"][1]["processes"] = []
        self.gpus.config["devices"][1]["memory_used"] = 10 * GiB
        self.gpus.write()
        self.wait_devices(lambda inv: inv["devices"][1]["memory_free_bytes"] == 14 * GiB)
        r = self.preload("vram2", device_mask="1", vram_required_bytes=12 * GiB)
        self.assert_json_response(r, 200)
        self.assert_json_response(self.daemon.post("/pools/vram2/stop"), 200)

    def test_13_split_auto(self):
        r = self.preload("split1", device_mask="0,1", vram_required_bytes=20 * GiB, split="auto")
        self.assert_json_response(r, 200)
        st = self.status("split1")
        ratios = [float(x) for x in st["tensor_split"].split(",")]
        self.assertEqual(len(ratios), 2)
        self.assertAlmostEqual(sum(ratios), 1.0, places=4)
        self.assertGreater(ratios[0], ratios[1])        # 80 GiB against 24 GiB
        argv = th.unit_property("pool-engine-split1.service", "ExecStart")
        self.assertIn("--tensor-split " + st["tensor_split"] + " --split-mode layer", argv)
        env = th.unit_property("pool-engine-split1.service", "Environment").split()
        self.assertIn(f"CUDA_VISIBLE_DEVICES={UUID[0]},{UUID[1]}", env)
        self.assert_json_response(self.daemon.post("/pools/split1/stop"), 200)
        # Too big for both together; vLLM cannot split unevenly; a split needs the model's size.
        r = self.preload("split2", device_mask="0,1", vram_required_bytes=200 * GiB, split="auto")
        self.assert_error(r, 409, "split: ", "INSUFFICIENT_VRAM")
        r = self.preload("split2", device_mask="0,1", vram_required_bytes=20 * GiB, split="auto", engine="vllm")
        self.assert_error(r, 422, "split: ", "INVALID_PREPARED_ENGINE")
        r = self.preload("split2", device_mask="0,1", split="auto", engine="vllm")
        self.assert_error(r, 422, "needs the model's size", "INVALID_PREPARED_ENGINE")
        self.assert_nothing_registered("split2")

    def test_14_unhealthy_gpu_drains_its_pools(self):
        self.assert_json_response(self.preload("sick", device_mask="1"), 200)
        self.assert_json_response(self.preload("well", device_mask="0"), 200)
        self.gpus.config["xid_events"].append({"device": 1, "xid": 79})
        self.gpus.write()
        self.assertTrue(th.wait_for(lambda: self.status("sick")["state"] == "stopped", timeout=15),
                        self.status("sick"))
        st = self.status("sick")
        self.assertFalse(st["ready"])
        self.assertIn("GPU1 (" + UUID[1] + ") is unhealthy (XID 79)", st["last_error"])
        self.assertEqual(self.status("well")["state"], "ready")
        # Cordoned: no new engine on it until uncordoned.
        r = self.preload("sick", device_mask="1")
        self.assert_error(r, 409, "is cordoned", "DEVICE_LOST")
        self.assertEqual(poolctl("device", "uncordon", "1").returncode, 0)
        self.assert_json_response(self.preload("sick", device_mask="1"), 200)
        for pool in ("sick", "well"):
            self.assert_json_response(self.daemon.post(f"/pools/{pool}/stop"), 200)

    def test_15_reload_checks_the_new_mask(self):
        self.assert_json_response(self.preload("rel", device_mask="0"), 200)
        body = {"prepared": th.prepared("rel", th.free_port(), device_mask="GPU9")}
        r = self.daemon.post("/pools/rel/reload", body)
        self.assert_error(r, 404, 'unknown device "GPU9"', "NO_SUCH_DEVICE")
        self.assertEqual(self.status("rel")["state"], "ready")
        self.assert_json_response(self.daemon.post("/pools/rel/stop"), 200)


class NoNvmlTest(th.HttpTestCase):
    """NVML that fails to initialise, then works; and a library that is not there."""

    def test_init_failure_then_recovery(self):
        gpus = FakeGpus({"init_error": 9, "devices": [{"uuid": UUID[0]}]})
        daemon = fake_daemon("pool-managerd-devices-init-test", gpus)
        try:
            self.assertEqual(daemon.start(), 0, daemon.log())
            inv = daemon.get("/devices").json
            self.assertEqual(inv["state"], "no NVML: nvmlInit_v2() failed: Driver Not Loaded")
            self.assertEqual(inv["devices"], [])
            r = busctl("get-property", "org.llorch.PoolManager1", "/org/llorch/PoolManager1",
                       "org.llorch.PoolManager1.Manager", "DeviceInventoryState")
            self.assertEqual(r.stdout.strip(), 's "no NVML: nvmlInit_v2() failed: Driver Not Loaded"')
            r = poolctl("devices")
            self.assertEqual(r.returncode, 0, r)
            self.assertIn("0 GPUs listed. Inventory: no NVML: nvmlInit_v2() failed: Driver Not Loaded.", r.stdout)
            # The driver comes: NVML is tried again every tenth refresh.
            del gpus.config["init_error"]
            gpus.write()
            self.assertTrue(th.wait_for(lambda: daemon.get("/devices").json["state"] == "ok", timeout=10))
            self.assertEqual(daemon.get("/devices").json["devices"][0]["uuid"], UUID[0])
        finally:
            daemon.stop()

    def test_library_missing(self):
        gpus = FakeGpus({"devices": []})
        daemon = fake_daemon("pool-managerd-devices-nolib-test", gpus, library="/nonexistent/libnvidia-ml.so.1")
        try:
            self.assertEqual(daemon.start(), 0, daemon.log())
            inv = daemon.get("/devices").json
            self.assertRegex(inv["state"], r"^no NVML: /nonexistent/libnvidia-ml.so.1: cannot open shared object")
            self.assertTrue(th.wait_for(lambda: "GPU inventory: no NVML: /nonexistent" in daemon.log(), timeout=5))
        finally:
            daemon.stop()

    def test_token_rule(self):
        gpus = FakeGpus(gpus_config := {"devices": [{"uuid": UUID[1]}]})
        daemon = fake_daemon("pool-managerd-devices-auth-test", gpus, env={"LLORCH_API_TOKEN": th.TOKEN})
        try:
            self.assertEqual(daemon.start(), 0, daemon.log())
            self.assert_json_response(daemon.get("/devices"), 401,
                                      {"error": "unauthorized", "code": "UNAUTHORIZED"})
            self.assert_json_response(daemon.post("/devices/0/uncordon"), 401,
                                      {"error": "unauthorized", "code": "UNAUTHORIZED"})
            r = daemon.get("/devices", token=th.TOKEN)
            self.assert_json_response(r, 200)
            self.assertEqual(r.json["devices"][0]["uuid"], gpus_config["devices"][0]["uuid"])
        finally:
            daemon.stop()


def main():
    return th.run_tap(DevicesTest, NoNvmlTest, needs=("POOL_MANAGERD", "FAKE_ENGINE", "FAKE_NVML", "POOLCTL"))


if __name__ == "__main__":
    th.FAKE_NVML = FAKE_NVML
    th.POOLCTL = POOLCTL
    sys.exit(main())
