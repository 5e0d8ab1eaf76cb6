# SPDX-License-Identifier: GPL-3.0-or-later
#
# What the BDD step definitions drive: the real pool-managerd as a Type=notify user unit of the
# sandbox's systemd --user (tests/sandbox), engines that are tests/fake-engine run by the daemon
# as transient units, and the ways to observe them from the outside: HTTP, D-Bus (python3-dbus,
# and busctl monitor for signals), unit properties, files, the journal and /proc. Nothing here
# links or imports daemon code.

import contextlib
import http.client
import io
import json
import os
import runpy
import subprocess
import sys
import tempfile
import threading
import time

import dbus

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _binary(env, default):
    return os.path.abspath(os.environ.get(env) or os.path.join(TOP, default))


POOL_MANAGERD = _binary("POOL_MANAGERD", "build/src/pool-managerd")
FAKE_ENGINE = _binary("FAKE_ENGINE", "build/tests/fake-engine")
POOLCTL = _binary("POOLCTL", "build/src/poolctl")
FAKE_NVML = _binary("FAKE_NVML", "build/tests/libfake-nvml.so")
FREE_PORT = os.path.join(TOP, "tests", "free-port")

BUS_NAME = "org.llorch.PoolManager1"
MANAGER_PATH = "/org/llorch/PoolManager1"
MANAGER_IFACE = "org.llorch.PoolManager1.Manager"
POOL_IFACE = "org.llorch.PoolManager1.Pool"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
SYSTEMD = "org.freedesktop.systemd1"

# The daemon configuration every scenario starts from, unless it says otherwise. A short health
# interval keeps preloads fast; EngineSandbox=container because the full sandbox remounts /proc,
# which some VMs refuse.
BASE_CONFIG = {
    "GpuOnly": "no",
    "HealthInterval": "100ms",
    "EngineSandbox": "container",
}


# The keys of the [Supervision] section (pool-managerd.conf(5)); every other key a scenario sets
# goes to [Manager].
SUPERVISION_KEYS = {
    "BackoffInitial", "BackoffMax", "BackoffMin", "BackoffJitter", "CudaBackoffFactor", "StableAfter",
    "BreakerThreshold", "BreakerTimeout", "BreakerCloseAfter", "StormWindow", "StormWarn", "StormLimit",
    "LivenessInterval", "LivenessFailures",
}

# The keys of the [GPU] section (the inventory).
GPU_KEYS = {"RefreshInterval"}

# The keys of the [Fleet] section (the node's pools in etcd).
FLEET_KEYS = {
    "Etcd", "NodeName", "LeaseTTL", "KeyPrefix", "TrustedCertificateFile", "CertificateFile", "KeyFile",
    "CredentialsFile",
}

# The crash entry of the journal (pool-managerd(8), SUPERVISION).
MESSAGE_ENGINE_CRASHED = "a9c67e90bd4f4c2abc598512cf3a98d3"


class HarnessError(AssertionError):
    pass


def in_sandbox():
    return bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS") and os.environ.get("XDG_RUNTIME_DIR")
                and os.environ.get("SANDBOX"))


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Polls predicate until it returns something true; returns that, or the last result."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


_ports_handed_out = set()


def free_port():
    """A port from tests/free-port (below the ephemeral range, where the daemon's probes take
    their local ports), run in this interpreter: a new python3 per port costs more than the
    rest of a preload. Never the same port twice in one process: a port is free when chosen,
    not yet bound, and the daemon's Listen= and an engine's port picked alike would otherwise
    collide now and then (the preload refused: "port ... is in use")."""
    while True:
        out = io.StringIO()
        argv = sys.argv
        sys.argv = [FREE_PORT]
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_path(FREE_PORT, run_name="__main__")
        finally:
            sys.argv = argv
        port = int(out.getvalue().split()[0])
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


def run(*args, check=False, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kw)


def systemctl(*args):
    return run("systemctl", "--user", *args)


def unit_property(unit, prop):
    return systemctl("show", "-P", prop, unit).stdout.strip()


def engine_unit(pool):
    return f"pool-engine-{pool}.service"


def journal_text(*matches):
    """The journal entries matching all of matches (journalctl syntax, "+" for OR), text only."""
    return run("journalctl", "--no-pager", "-q", "-o", "cat", *matches).stdout


def journal_json(*matches):
    out = run("journalctl", "--no-pager", "-q", "-o", "json", *matches).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def process_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")[:-1]]


# ---- HTTP ----

class Response:
    def __init__(self, status, headers, raw, elapsed):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.elapsed = elapsed
        self.answered_at = time.time()
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<HTTP {self.status} {self.raw[:400]!r}>"


def http_request(port, method, path, body=None, headers=None, timeout=60):
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read(), time.monotonic() - t0)
    finally:
        conn.close()


# ---- D-Bus ----

def unwrap(v):
    """python-dbus values as plain Python values."""
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64, dbus.Byte)):
        return int(v)
    if isinstance(v, dbus.Double):
        return float(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath, dbus.Signature)):
        return str(v)
    if isinstance(v, (dbus.Array, list)):
        return [unwrap(x) for x in v]
    if isinstance(v, (dbus.Struct, tuple)):
        return tuple(unwrap(x) for x in v)
    if isinstance(v, (dbus.Dictionary, dict)):
        return {unwrap(k): unwrap(x) for k, x in v.items()}
    return v


class DBusResult:
    def __init__(self, value=None, error_name=None, error_message=None, elapsed=0.0):
        self.value = value
        self.error_name = error_name
        self.error_message = error_message
        self.elapsed = elapsed

    def __repr__(self):
        if self.error_name:
            return f"<D-Bus error {self.error_name}: {self.error_message}>"
        return f"<D-Bus reply {self.value!r}>"


class Bus:
    """Synchronous calls on the sandbox's session bus (no main loop needed for calls)."""

    def __init__(self):
        self._bus = None

    @property
    def bus(self):
        if self._bus is None:
            self._bus = dbus.SessionBus()
        return self._bus

    def _object(self, name, path):
        return self.bus.get_object(name, path, introspect=False)

    def call(self, path, iface, method, *args, timeout=60):
        t0 = time.monotonic()
        try:
            v = self._object(BUS_NAME, path).get_dbus_method(method, iface)(*args, timeout=timeout)
            return DBusResult(value=unwrap(v), elapsed=time.monotonic() - t0)
        except dbus.exceptions.DBusException as e:
            return DBusResult(error_name=e.get_dbus_name(), error_message=e.get_dbus_message(),
                              elapsed=time.monotonic() - t0)

    def manager_call(self, method, *args, timeout=60):
        return self.call(MANAGER_PATH, MANAGER_IFACE, method, *args, timeout=timeout)

    def pool_path(self, pool):
        r = self.manager_call("GetPool", pool)
        if r.error_name:
            raise HarnessError(f"GetPool({pool}) failed: {r}")
        return r.value

    def properties(self, path, iface):
        return unwrap(self._object(BUS_NAME, path).GetAll(iface, dbus_interface=PROPERTIES_IFACE))

    def pool_properties(self, pool):
        return self.properties(self.pool_path(pool), POOL_IFACE)

    def manager_properties(self):
        return self.properties(MANAGER_PATH, MANAGER_IFACE)

    def unit_properties(self, unit):
        """Every property of a systemd unit (Unit and Service interfaces), read from systemd over
        D-Bus; None when systemd does not know the unit."""
        systemd = self._object(SYSTEMD, "/org/freedesktop/systemd1")
        try:
            path = systemd.GetUnit(unit, dbus_interface=SYSTEMD + ".Manager")
        except dbus.exceptions.DBusException as e:
            if e.get_dbus_name() == SYSTEMD + ".NoSuchUnit":
                return None
            raise
        obj = self._object(SYSTEMD, path)
        props = {}
        for iface in (SYSTEMD + ".Unit", SYSTEMD + ".Service"):
            try:
                props.update(unwrap(obj.GetAll(iface, dbus_interface=PROPERTIES_IFACE)))
            except dbus.exceptions.DBusException:
                pass
        return props


class BusMonitor:
    """Records the daemon's signals through `busctl --user --json=short monitor`."""

    def __init__(self, bus):
        self.bus = bus
        self.messages = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(["busctl", "--user", "--json=short", "monitor", BUS_NAME],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                m = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.messages.append(m)

    def wait_until_listening(self, timeout=5):
        """Pings the daemon until the monitor sees the ping: from then on nothing is missed."""
        def seen():
            self.bus.call(MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping")
            with self.lock:
                return any(m.get("member") == "Ping" for m in self.messages)
        return wait_for(seen, timeout=timeout, interval=0.05)

    def signals(self):
        with self.lock:
            return [m for m in self.messages if m.get("type") == "signal"]

    def pool_property_values(self, pool_path, prop):
        """The successive values of one pool property: from InterfacesAdded, then each
        PropertiesChanged that carries it."""
        values = []
        for m in self.signals():
            data = (m.get("payload") or {}).get("data") or []
            if m.get("member") == "InterfacesAdded" and data and data[0] == pool_path:
                p = data[1].get(POOL_IFACE, {})
                if prop in p:
                    values.append(p[prop]["data"])
            elif (m.get("member") == "PropertiesChanged" and m.get("path") == pool_path and data
                  and data[0] == POOL_IFACE and prop in data[1]):
                values.append(data[1][prop]["data"])
        return values

    def interfaces_added(self, pool_path):
        for m in self.signals():
            data = (m.get("payload") or {}).get("data") or []
            if m.get("member") == "InterfacesAdded" and data and data[0] == pool_path:
                return {k: v["data"] for k, v in data[1].get(POOL_IFACE, {}).items()}
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the daemon ----

def sanitizer_env():
    """ASAN_OPTIONS and friends reach a daemon under systemd only when passed on."""
    return {k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}


def nvml_libraries():
    """Paths of an installed NVML, to hide from daemons that must see no CUDA."""
    out = run("ldconfig", "-p").stdout
    paths = set()
    for line in out.splitlines():
        if "libnvidia-ml.so" in line and "=>" in line:
            p = line.split("=>", 1)[1].strip()
            paths.add(p)
            paths.add(os.path.realpath(p))
    return sorted(paths)


def daemon_key(settings, env, hide_nvml):
    """What makes two daemons interchangeable: the same configuration and environment."""
    return (tuple(sorted((settings or {}).items())), tuple(sorted((env or {}).items())), hide_nvml)


class Daemon:
    """One pool-managerd as a transient Type=notify user unit, with its own configuration file
    and directories under $XDG_RUNTIME_DIR (not /tmp: engines run with PrivateTmp=yes)."""

    serial = 0

    def __init__(self, settings=None, env=None, hide_nvml=False):
        Daemon.serial += 1
        self.unit = f"pool-managerd-bdd-{Daemon.serial}.service"
        self.dir = tempfile.mkdtemp(prefix="bdd-daemon.", dir=os.environ["XDG_RUNTIME_DIR"])
        self.port = free_port()
        self.settings = dict(BASE_CONFIG)
        self.settings.update({
            "PoolsDirectory": os.path.join(self.dir, "pools.d"),
            "RuntimeDirectory": os.path.join(self.dir, "run"),
            "StateDirectory": os.path.join(self.dir, "state"),
            "Listen": f"127.0.0.1:{self.port}",
        })
        for k, v in (settings or {}).items():
            if v is None:
                self.settings.pop(k, None)
            else:
                self.settings[k] = v
        self.env = dict(env or {})
        self.token = self.env.get("LLORCH_API_TOKEN")
        self.hide_nvml = hide_nvml
        self.key = daemon_key(settings, env, hide_nvml)
        self.config = os.path.join(self.dir, "pool-managerd.conf")
        with open(self.config, "w") as f:
            f.write("[Manager]\n")
            for k, v in self.settings.items():
                if k not in SUPERVISION_KEYS | FLEET_KEYS | GPU_KEYS:
                    f.write(f"{k}={v}\n")
            for section, keys in (("Supervision", SUPERVISION_KEYS), ("Fleet", FLEET_KEYS), ("GPU", GPU_KEYS)):
                values = {k: v for k, v in self.settings.items() if k in keys}
                if values:
                    f.write(f"\n[{section}]\n")
                    for k, v in values.items():
                        f.write(f"{k}={v}\n")

    @property
    def runtime_dir(self):
        return self.settings.get("RuntimeDirectory") or os.path.join(os.environ["XDG_RUNTIME_DIR"],
                                                                     "pool-managerd")

    def start(self):
        env = {"POOL_MANAGERD_LOG_TARGET": "journal", "POOL_MANAGERD_LOG_LEVEL": "debug",
               **sanitizer_env(), **self.env}
        args = ["systemd-run", "--user", "--quiet", f"--unit={self.unit}", "-p", "Type=notify",
                "-p", "NotifyAccess=main"]
        if self.hide_nvml:
            for lib in nvml_libraries():
                args += ["-p", f"InaccessiblePaths=-{lib}"]
        for k, v in env.items():
            args += ["-E", f"{k}={v}"]
        args += [POOL_MANAGERD, "--user", f"--config={self.config}"]
        r = run(*args)
        if r.returncode != 0:
            raise HarnessError(f"pool-managerd did not start ({r.stderr.strip()}):\n{self.log()[-3000:]}")

    def running(self):
        return systemctl("-q", "is-active", self.unit).returncode == 0

    def stop(self):
        # SIGTERM alone first: see tests/stop-daemon (systemd's SIGCONT can hang an ASan build's exit).
        r = run(os.path.join(TOP, "tests", "stop-daemon"), self.unit)
        systemctl("reset-failed", self.unit)
        if r.returncode == 124:
            raise HarnessError(f"pool-managerd did not exit within 30 s of SIGTERM:\n{self.log()[-3000:]}")

    def kill(self, signal="KILL"):
        """Kills the daemon's unit with a signal (the engines, units of their own, live on) and
        waits until systemd sees it gone."""
        r = systemctl("kill", "-s", signal, self.unit)
        if r.returncode != 0:
            raise HarnessError(f"systemctl kill {self.unit}: {r.stderr.strip()}")
        if not wait_for(lambda: not self.running(), timeout=10):
            raise HarnessError(f"{self.unit} still runs after SIG{signal}")
        systemctl("reset-failed", self.unit)

    def main_pid(self):
        return int(unit_property(self.unit, "MainPID") or 0)

    def state_file(self, pool):
        return os.path.join(self.settings["StateDirectory"], "pools", f"{pool}.json")

    def log(self):
        return journal_text(f"_SYSTEMD_USER_UNIT={self.unit}")

    def log_entries(self, *matches):
        return journal_json(f"_SYSTEMD_USER_UNIT={self.unit}", *matches)

    def request(self, method, path, body=None, **kw):
        return http_request(self.port, method, path, body=body, **kw)

    def status(self, pool):
        r = self.request("GET", f"/pools/{pool}/status")
        return r.json if r.status == 200 else None

    def pools(self):
        r = self.request("GET", "/pools")
        if r.status != 200:
            raise HarnessError(f"GET /pools failed: {r}")
        return r.json

    def pid_file(self, pool):
        return os.path.join(self.runtime_dir, f"{pool}.pid")

    def handoff_file(self, pool, replica="r0"):
        return os.path.join(self.runtime_dir, "engines", f"{pool}-{replica}.json")

    def log_file(self, pool):
        return os.path.join(self.runtime_dir, "logs", f"{pool}.log")


# ---- engines ----

class PoolRun:
    """One preload of a pool in a scenario, with where its fake engine logs its probes."""

    def __init__(self, pool, prepared, probe_log, ready_log):
        self.pool = pool
        self.prepared = prepared
        self.probe_log = probe_log
        self.ready_log = ready_log
        self.response = None            # HTTP Response
        self.dbus = None                # DBusResult
        self.thread = None
        self.sent_at = None             # time.time() when the request went out
        self.pid = None

    @property
    def port(self):
        return self.prepared["port"]

    def probes(self):
        """[(realtime_ms, monotonic_ms, status)] of the /health requests the engine received."""
        try:
            with open(self.probe_log) as f:
                return [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def ready_at(self):
        """Realtime (s) at which the engine's /health turned 200, or None."""
        try:
            with open(self.ready_log) as f:
                lines = [line for line in f if line.strip()]
        except FileNotFoundError:
            return None
        return int(lines[0]) / 1e6 if lines else None


class Scenario:
    """Per-scenario state: a work directory, the pools preloaded, the last answers."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="bdd-work.", dir=os.environ["XDG_RUNTIME_DIR"])
        self.runs = {}
        self.response = None
        self.dbus = None
        self.monitor = None
        self.extra_units = []
        self.marks = {}

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_of(self, pool):
        if pool not in self.runs:
            raise HarnessError(f"pool {pool!r} was not preloaded in this scenario")
        return self.runs[pool]


class Harness:
    def __init__(self):
        self.daemon = None
        self.bus = Bus()
        self.scenario = None

    # daemons

    def ensure_daemon(self, settings=None, env=None, fresh=False, hide_nvml=False):
        key = daemon_key(settings, env, hide_nvml)
        if not fresh and self.daemon and self.daemon.key == key and self.daemon.running():
            return self.daemon
        self.stop_daemon()
        wanted = Daemon(settings, env, hide_nvml)
        wanted.start()
        self.daemon = wanted
        return wanted

    def stop_daemon(self):
        if self.daemon:
            self.stop_pools()
            self.daemon.stop()
            self.daemon = None

    # scenarios

    def begin_scenario(self, name):
        self.scenario = Scenario(name)
        return self.scenario

    def end_scenario(self):
        s = self.scenario
        if not s:
            return
        if s.monitor:
            s.monitor.stop()
        # Stopping first answers the preloads still waiting (canceled), so the threads end.
        self.stop_pools()
        if s.extra_units:
            systemctl("stop", *s.extra_units)
            systemctl("reset-failed", *s.extra_units)
        if getattr(s, "extra_cleanup", None):
            s.extra_cleanup()
        for r in s.runs.values():
            if r.thread:
                r.thread.join(30)
        for p in getattr(s, "pending", {}).values():
            p.thread.join(30)
        self.scenario = None

    def stop_pools(self):
        """Stops every engine: through the daemon where it is running (so that it sees the stop),
        then whatever pool-engine-* unit is left (ours, or started by a scenario to collide)."""
        d = self.daemon
        if d and d.running():
            auth = {"Authorization": f"Bearer {d.token}"} if d.token else {}
            try:
                r = d.request("GET", "/pools", headers=auth)
                for p in (r.json if r.status == 200 else []):
                    # Anything not stopped: a pool in backoff would otherwise be restarted.
                    if p["state"] != "stopped":
                        d.request("POST", f"/pools/{p['pool_id']}/stop", headers=auth, timeout=30)
            except (OSError, http.client.HTTPException, HarnessError):
                pass
        units = systemctl("list-units", "--all", "--plain", "--no-legend", "pool-engine-*").stdout.split()
        units = [u for u in units if u.startswith("pool-engine-") and u.endswith(".service")]
        if units:
            systemctl("kill", "--signal=SIGKILL", *units)
            systemctl("stop", *units)
            systemctl("reset-failed", *units)

    def teardown(self):
        self.end_scenario()
        self.stop_daemon()
