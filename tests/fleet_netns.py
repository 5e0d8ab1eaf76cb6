# SPDX-License-Identifier: GPL-3.0-or-later
#
# Several fleet nodes on one machine, each a network of its own (issue 12), shared by
# tests/test-fleet-netns.py and bench/fleet:
#
#   root namespace: bridge pmfleet-<tag> with 10.A.B.1/24, where a real etcd listens
#   node i:         network namespace pmfleet-<tag>-n<i>, a veth pair whose host end
#                   (pmfleet-<tag>h<i>) is a port of the bridge and whose other end is the
#                   namespace's eth0 with 10.A.B.<i+1>/24, and lo up
#
# Each node runs tests/sandbox (a private systemd --user, bus and journald) inside its namespace
# (nsenter --net, which changes nothing but the network namespace: `ip netns exec` would remount
# /sys, cgroups included), and in it this file as an agent: it starts pool-managerd as a user unit
# (NodeName=, Etcd= the bridge's address, LeaseTTL=) and runs what the driver asks, one JSON line
# on stdin, one JSON line ("AGENT {...}") on stdout. So the daemon, its engines and its probes
# all live in the node's namespace, and cutting the node's link (its host end down) cuts the
# node off from etcd and nothing else. Every name starts with pmfleet-; Network.destroy() removes
# them all, and an agent whose stdin closes (the driver gone) stops its daemon and engines.

import concurrent.futures
import importlib.util
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SANDBOX = os.path.join(HERE, "sandbox")
UNIT = "pool-managerd-fleet-node"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


etcd = _load("etcd", os.path.join(HERE, "features", "support", "etcd.py"))


class Unavailable(Exception):
    """The host cannot run this (not root, no etcd, no network namespaces): a reason to skip."""


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def check_host():
    """Raises Unavailable with the reason when this host cannot run the nodes."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (network namespaces, veth, tests/sandbox)")
    for tool in ("ip", "nsenter"):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} is not installed")
    if not etcd.available():
        raise Unavailable("etcd and etcdctl are not installed (Debian: etcd-server, etcd-client)")
    for var in ("POOL_MANAGERD", "FAKE_ENGINE"):
        if not os.environ.get(var):
            raise Unavailable(f"${var} is not set")


class Network:
    """A bridge in the root namespace and n namespaces on it."""

    def __init__(self, n):
        self.tag = f"{random.randrange(0x10000):04x}"
        self.bridge = f"pmfleet-{self.tag}"
        self.n = n
        self.namespaces = []
        self.links = []
        routes = ip("-4", "route", "show", "table", "all").stdout + ip("-4", "-o", "addr").stdout
        for _ in range(100):
            a, b = random.randrange(200, 250), random.randrange(1, 255)
            if f"10.{a}.{b}." not in routes:
                break
        self.net = f"10.{a}.{b}"
        self.host_address = f"{self.net}.1"

    def namespace(self, i):
        return f"pmfleet-{self.tag}-n{i}"

    def host_link(self, i):
        return f"pmfleet-{self.tag}h{i}"

    def address(self, i):
        return f"{self.net}.{i + 1}"

    def create(self):
        try:
            ip("link", "add", self.bridge, "type", "bridge")
        except RuntimeError as e:
            raise Unavailable(f"cannot create a bridge: {e}") from e
        self.links.append(self.bridge)
        ip("addr", "add", f"{self.host_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i in range(1, self.n + 1):
            ns, host, peer = self.namespace(i), self.host_link(i), f"pmfleet-{self.tag}p{i}"
            try:
                ip("netns", "add", ns)
            except RuntimeError as e:
                raise Unavailable(f"cannot create a network namespace: {e}") from e
            self.namespaces.append(ns)
            ip("link", "add", host, "type", "veth", "peer", "name", peer)
            self.links.append(host)
            ip("link", "set", peer, "netns", ns)
            ip("link", "set", host, "master", self.bridge, "up")
            ip("-n", ns, "link", "set", peer, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def cut(self, i):
        ip("link", "set", self.host_link(i), "down")

    def restore(self, i):
        ip("link", "set", self.host_link(i), "up")

    def destroy(self):
        # A veth pair goes with either end; the namespaces last (their processes are gone by now).
        for link in reversed(self.links):
            ip("link", "del", link, check=False)
        for ns in self.namespaces:
            ip("netns", "del", ns, check=False)
        self.links, self.namespaces = [], []


class Node:
    """Node i: tests/sandbox in its namespace, running the agent."""

    def __init__(self, network, i, etcd_url, ttl, workdir, extra_config="", log_level="debug"):
        self.network = network
        self.log_level = log_level
        self.i = i
        self.name = f"node-{i}"
        self.proc = None
        self.args = [etcd_url, str(ttl), extra_config]
        self.stderr_path = os.path.join(workdir, f"{self.name}.log")

    def start(self):
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.network.namespace(self.i)}", "--", SANDBOX, "--",
             sys.executable, os.path.abspath(__file__), "--agent", self.name, *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=True,
            env={**os.environ, "FLEET_AGENT_LOG_LEVEL": self.log_level})

    def output(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def call(self, op, timeout=120, **args):
        """Sends one command; returns the agent's answer (a dict). Raises on a timeout, an agent
        that exited (its status in the message) or an error the agent reported."""
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no answer to {op} in {timeout} s\n{self.output()[-3000:]}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if not line:
                status = self.proc.wait(timeout=30)
                if status == 77:
                    raise Unavailable(f"{self.name}: tests/sandbox cannot run here\n{self.output()[-2000:]}")
                raise RuntimeError(f"{self.name}: the agent exited with status {status} during {op}\n"
                                   f"{self.output()[-3000:]}")
            if line.startswith(b"AGENT "):
                answer = json.loads(line[6:])
                if "error" in answer:
                    raise RuntimeError(f"{self.name}: {op}: {answer['error']}")
                return answer

    def close(self):
        if not self.proc:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # The sandbox tears down in order on SIGTERM; its guardian kills what is left.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.stderr.close()
        self.proc = None


class Cluster:
    """etcd on the bridge and n nodes; a context manager that removes everything on exit."""

    def __init__(self, n=3, ttl=2, extra_config="", log_level="debug"):
        self.n, self.ttl, self.extra_config, self.log_level = n, ttl, extra_config, log_level
        self.network = None
        self.etcd = None
        self.nodes = []
        self.dir = None
        self.mounted = False

    def __enter__(self):
        try:
            check_host()
            # Not under /tmp (see tests/sandbox). etcd's data on a tmpfs of its own: /run is one on a
            # booted system but not in every container, and etcd fsyncs its log at each commit
            # (about 10 ms on a shared virtual disk, where etcd's docs ask for a dedicated SSD).
            self.dir = tempfile.mkdtemp(prefix="pmfleet-", dir="/run")
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=256m", "tmpfs", self.dir], check=True)
            self.mounted = True
            self.network = Network(self.n)
            self.network.create()
            self.etcd = etcd.Etcd(self.dir, host=self.network.host_address)
            self.etcd.start()
            self.nodes = [Node(self.network, i, self.etcd.url, self.ttl, self.dir, self.extra_config, self.log_level)
                          for i in range(1, self.n + 1)]
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                node.call("start")
            return self
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc):
        with concurrent.futures.ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(Node.close, self.nodes))
        self.nodes = []
        if self.etcd:
            self.etcd.stop()
        if self.network:
            self.network.destroy()
        if self.mounted:
            subprocess.run(["umount", "--lazy", self.dir])
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def keys(self, prefix="/pool-managerd/"):
        return self.etcd.range(prefix)


# --- the agent, inside a node's sandbox ------------------------------------------------------


def agent(name, etcd_url, ttl, extra_config):
    th = _load("test_http", os.path.join(HERE, "test-http.py"))
    daemon = th.Daemon(UNIT, extra_config=f"[Fleet]\nEtcd={etcd_url}\nNodeName={name}\nLeaseTTL={ttl}s\n"
                                          + extra_config,
                       env={"POOL_MANAGERD_LOG_LEVEL": os.environ.get("FLEET_AGENT_LOG_LEVEL", "debug")})
    logs = os.path.join(daemon.dir, "engine-logs")
    os.mkdir(logs)

    def preload(pool, flags=(), port=None):
        port = port or th.free_port()
        body = th.prepared(pool, port, f"--probe-log={logs}/{pool}.probe", *flags)
        r = daemon.post(f"/pools/{pool}/preload", {"prepared": body}, timeout=120)
        return {"status": r.status, "body": r.json}

    def first_ready_ms(pool):
        """The engine's clock when it first answered a health probe with 200 (--probe-log)."""
        try:
            with open(f"{logs}/{pool}.probe") as f:
                for line in f:
                    realtime_ms, _, status = line.split()
                    if status == "200":
                        return int(realtime_ms)
        except FileNotFoundError:
            pass
        return None

    def kill():
        t = time.time()
        r = th.systemctl("kill", "-s", "KILL", f"{UNIT}.service")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        if not th.wait_for(lambda: th.unit_property(f"{UNIT}.service", "ActiveState") != "active", timeout=30):
            raise RuntimeError("the daemon is still active after SIGKILL")
        th.systemctl("reset-failed", f"{UNIT}.service")
        return {"killed_at": t}

    def preload_many(pools, parallel=1, ready_after=None):
        """ready_after: per pool, ms from its engine's start to its readiness."""
        flags = [[f"--ready-after={ms}"] for ms in ready_after] if ready_after else [[]] * len(pools)
        ports = set()
        while len(ports) < len(pools):      # free_port() alone may pick one port twice
            ports.add(th.free_port())
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            return dict(zip(pools, ex.map(preload, pools, flags, ports)))

    def messages(contains):
        """The daemon's journal lines containing a text: [[realtime us, message], ...]."""
        out = subprocess.run(["journalctl", "--no-pager", "-q", "-o", "json", f"_SYSTEMD_USER_UNIT={UNIT}.service"],
                             capture_output=True, text=True, errors="replace").stdout
        found = []
        for line in out.splitlines():
            e = json.loads(line)
            if isinstance(e.get("MESSAGE"), str) and contains in e["MESSAGE"]:
                found.append([int(e["__REALTIME_TIMESTAMP"]), e["MESSAGE"]])
        return {"messages": found}

    def http(method, path, body=None):
        r = th.request(daemon.port, method, path, body=body, timeout=60)
        return {"status": r.status, "json": r.json}

    def pids(pools):
        return {p: int(th.unit_property(f"pool-engine-{p}.service", "MainPID") or 0) for p in pools}

    ops = {
        "start": lambda: {"rc": daemon.start(), "port": daemon.port},
        "preload": preload_many,
        "first_ready_ms": lambda pools: {p: first_ready_ms(p) for p in pools},
        "kill": kill,
        "http": http,
        "pids": pids,
        "log": lambda: {"log": daemon.log()},
        "messages": messages,
    }
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.pop("op")
            try:
                answer = ops[op](**cmd)
                if op == "start" and answer["rc"] != 0:
                    answer = {"error": f"the daemon did not start: {daemon.log()[-3000:]}"}
            except Exception as e:  # noqa: BLE001 -- reported to the driver, which fails the test
                answer = {"error": f"{type(e).__name__}: {e}"}
            print("AGENT " + json.dumps(answer), flush=True)
    finally:
        daemon.stop()
        th.stop_all_engines()
    return 0


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--agent":
    sys.exit(agent(*sys.argv[2:]))
