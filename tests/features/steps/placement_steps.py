# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: GPUs described to the fake NVML (build/tests/libfake-nvml.so, tests/fake-nvml/README.md),
# a daemon that loads it with NvmlLibrary=, and what placement did: the engine unit's device
# cgroup and environment, the split flags, the inventory's health. The fake NVML is the only
# double: the daemon, systemd and the engines are real.

import json
import os
import subprocess
import sys

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402

GiB = 1 << 30
COMMON_NODES = ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]


def gpu_uuid(i):
    return "GPU-00000000-0000-4000-8000-%012d" % i


def mig_uuid(i):
    return "MIG-00000000-0000-4000-8000-%012d" % (100 + i)


def write_gpus(context):
    path = context.s.path("gpus.json")
    with open(path + ".tmp", "w") as f:
        json.dump(context.s.gpus, f)
    os.rename(path + ".tmp", path)
    return path


def gpu_row(row):
    i = int(row["index"])
    d = {"uuid": gpu_uuid(i), "name": row.get("name") or "NVIDIA L4", "minor": i,
         "pci_bus_id": "00000000:%02X:00.0" % (0x3B + i),
         "memory_total": int(float(row["total GiB"]) * GiB),
         "memory_used": int(float(row.get("used GiB") or 0) * GiB)}
    if row.get("mig") == "yes":
        d["mig_mode"] = True
        d["mig"] = [{"uuid": mig_uuid(i), "name": d["name"] + " MIG 1g.10gb", "gpu_instance_id": 1,
                     "compute_instance_id": 0, "memory_total": 10 * GiB, "memory_used": 0}]
    return d


@step("a node with the fake GPUs")
def step_fake_gpus(context):
    headings = context.table.headings
    rows = [dict(zip(headings, r.cells)) for r in context.table]
    context.s.gpus = {"driver_version": "550.54.15", "devices": [gpu_row(r) for r in rows], "xid_events": []}
    write_gpus(context)


@step("a node with {n:d} fake GPUs of {gib:d} GiB")
def step_fake_gpus_n(context, n, gib):
    rows = [{"index": str(i), "total GiB": str(gib)} for i in range(n)]
    context.s.gpus = {"driver_version": "550.54.15", "devices": [gpu_row(r) for r in rows], "xid_events": []}
    write_gpus(context)


def start_on_fake_gpus(context, settings=None):
    s = {"NvmlLibrary": harness.FAKE_NVML, "RefreshInterval": "100ms", **(settings or {})}
    d = context.h.ensure_daemon(s, env={"FAKE_NVML_CONFIG": write_gpus(context)}, fresh=True)
    assert d.running(), d.log()[-2000:]
    r = d.request("GET", "/devices")
    assert r.status == 200 and r.json["state"] == "ok", r
    return d


@step("a pool-managerd on the fake GPUs")
def step_daemon_fake_gpus(context):
    start_on_fake_gpus(context)


@step("a pool-managerd on the fake GPUs that preloads the pool files")
def step_daemon_pool_files(context):
    start_on_fake_gpus(context, {"PoolsDirectory": context.s.path("pools.d")})


@step('a pool-managerd whose NvmlLibrary= is "{library}"')
def step_daemon_library(context, library):
    d = context.h.ensure_daemon({"NvmlLibrary": library.replace("$FAKE_NVML", harness.FAKE_NVML),
                                 "RefreshInterval": "250ms"},
                                env={"FAKE_NVML_CONFIG": write_gpus(context)}, fresh=True)
    assert d.running(), d.log()[-2000:]


@step('the pool file "{name}" holds a PreparedEngine of pool "{pool}" with device_mask "{mask}"')
def step_pool_file(context, name, pool, mask):
    directory = context.s.path("pools.d")
    os.makedirs(directory, exist_ok=True)
    port = harness.free_port()
    prepared = {"binary_path": harness.FAKE_ENGINE, "flags": ["--port", str(port)], "port": port,
                "pool_id": pool, "device_mask": mask}
    with open(os.path.join(directory, name), "w") as f:
        json.dump(prepared, f)


# ---- changes on the GPUs ----

@step("GPU {i:d} reports XID {xid:d}")
def step_xid(context, i, xid):
    context.s.gpus["xid_events"].append({"device": i, "xid": xid})
    write_gpus(context)


@step("NVML shows {gib:g} GiB used on GPU {i:d}")
def step_used(context, gib, i):
    context.s.gpus["devices"][i]["memory_used"] = int(gib * GiB)
    write_gpus(context)
    d = context.h.daemon
    assert harness.wait_for(lambda: d.request("GET", "/devices").json["devices"][i]["memory_used_bytes"]
                            == int(gib * GiB), timeout=5)


@step("within {n:d} seconds the inventory shows GPU {i:d} {health} and cordoned")
def step_inventory_health(context, n, i, health):
    d = context.h.daemon

    def ok():
        g = d.request("GET", "/devices").json["devices"][i]
        return g["health"] == health and g["cordoned"]
    assert harness.wait_for(ok, timeout=n), d.request("GET", "/devices").json


@step("I uncordon GPU {i:d} with poolctl")
def step_uncordon(context, i):
    r = subprocess.run([harness.POOLCTL, "--user", "device", "uncordon", str(i)], capture_output=True, text=True)
    assert r.returncode == 0, r
    assert r.stdout == f"GPU{i} uncordoned: it takes new engines again.\n", r


# ---- the engine units ----

def unit_props(context, pool):
    props = context.h.bus.unit_properties(harness.engine_unit(pool))
    assert props is not None, f"systemd does not know the unit of pool {pool}"
    return props


@step('the engine of pool "{pool}" may open only the device nodes of GPU "{gpus}"')
def step_device_allow(context, pool, gpus):
    props = unit_props(context, pool)
    assert props["DevicePolicy"] == "closed", props["DevicePolicy"]
    allowed = sorted((str(p), str(r)) for p, r in props["DeviceAllow"])
    wanted = sorted([(n, "rw") for n in COMMON_NODES] + [(f"/dev/nvidia{g}", "rw") for g in gpus.split(",")])
    assert allowed == wanted, f"DeviceAllow={allowed}, wanted {wanted}"
    assert not any("char-" in p for p, _ in allowed), allowed


@step('the engine of pool "{pool}" has no device policy')
def step_no_device_policy(context, pool):
    props = unit_props(context, pool)
    assert props["DevicePolicy"] == "auto" and list(props["DeviceAllow"]) == [], props["DeviceAllow"]


@step('the engine of pool "{pool}" sees the GPUs "{uuids}"')
def step_cuda_visible(context, pool, uuids):
    env = list(unit_props(context, pool)["Environment"])
    names = [gpu_uuid(int(u[3:])) if u.startswith("GPU") and u[3:].isdigit() else
             mig_uuid(int(u[3:])) if u.startswith("MIG") and u[3:].isdigit() else u for u in uuids.split(",")]
    assert f"CUDA_VISIBLE_DEVICES={','.join(names)}" in env, env
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in env, env


@step('the engine of pool "{pool}" was started with "{text}"')
def step_started_with(context, pool, text):
    argv = list(unit_props(context, pool)["ExecStart"][0][1])
    assert text in " ".join(argv), argv


@step('the engine of pool "{pool}" was not started with "{text}"')
def step_not_started_with(context, pool, text):
    argv = list(unit_props(context, pool)["ExecStart"][0][1])
    assert text not in " ".join(argv), argv


@step('the engine of pool "{pool}" was started with its tensor split')
def step_started_with_split(context, pool):
    split = context.h.daemon.status(pool)["tensor_split"]
    step_started_with(context, pool, f"--tensor-split {split} --split-mode layer")


@step('the devices of pool "{pool}" are "{uuids}"')
def step_devices(context, pool, uuids):
    want = ",".join(gpu_uuid(int(u[3:])) if u.startswith("GPU") and u[3:].isdigit() else u
                    for u in uuids.split(","))
    s = context.h.daemon.status(pool)
    assert s["devices"] == want, s


@step('the tensor split of pool "{pool}" is "{ratios}"')
def step_tensor_split(context, pool, ratios):
    s = context.h.daemon.status(pool)
    assert s["tensor_split"] == ratios, s
    assert abs(sum(float(x) for x in ratios.split(",")) - 1.0) < 1e-9


@step('the placement warning of pool "{pool}" names the device nodes of GPU {i:d} that do not exist')
def step_missing_nodes(context, pool, i):
    s = context.h.daemon.status(pool)
    missing = [n for n in COMMON_NODES + [f"/dev/nvidia{i}"] if not os.path.exists(n)]
    if not missing:
        assert s["placement_warning"] is None, s
        return
    assert s["placement_warning"].startswith("device nodes missing now: "), s
    for n in missing:
        assert n in s["placement_warning"], (n, s)
    assert "device nodes missing now" in context.h.daemon.log()


@step('within {n:d} seconds the daemon\'s journal has a line containing "{text}"')
def step_journal_contains(context, n, text):
    d = context.h.daemon
    assert harness.wait_for(lambda: text in d.log(), timeout=n), d.log()[-3000:]


@step("the inventory was read through the fake NVML every {ms:d} ms")
def step_inventory_fake(context, ms):
    r = context.h.daemon.request("GET", "/devices")
    assert r.status == 200, r
    assert (r.json["state"], r.json["nvml_library"]) == ("ok", harness.FAKE_NVML), r.json
    assert r.json["refresh_interval_usec"] == ms * 1000, r.json
    assert [g["uuid"] for g in r.json["devices"]] == [g["uuid"] for g in context.s.gpus["devices"]], r.json
