# SPDX-License-Identifier: GPL-3.0-or-later
#
# A real etcd (Debian's etcd-server) of a test's own for the fleet tests (tests/test-fleet.py and
# tests/features/fleet/): one member on 127.0.0.1, free ports, its data directory under the test's
# directory, restartable with its data. Read through its v3 JSON gateway; etcdctl for what an
# operator or another node does.

import base64
import http.client
import json
import os
import shutil
import subprocess
import time

FREE_PORT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "free-port")


def available():
    return bool(shutil.which("etcd") and shutil.which("etcdctl"))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def prefix_end(prefix):
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Etcd:
    def __init__(self, directory):
        self.dir = directory
        ports = subprocess.run([FREE_PORT, "2"], capture_output=True, text=True, check=True).stdout.split()
        self.client_port, self.peer_port = int(ports[0]), int(ports[1])
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "etcd.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        with open(os.path.join(self.dir, "etcd.log"), "ab") as log:
            self.proc = subprocess.Popen(
                ["etcd", "--name", "fleet-test", "--data-dir", os.path.join(self.dir, "etcd-data"),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"fleet-test={peer}"],
                stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not self.healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("etcd did not come up:\n" + self.log()[-3000:])
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def healthy(self):
        try:
            self.call("/v3/kv/range", {"key": b64("health-check")})
            return True
        except OSError:
            return False

    def call(self, path, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=10)
        try:
            conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def range(self, prefix):
        """{key: {"value": parsed JSON (or the text), "lease": int, "version": int}} under prefix."""
        out = {}
        for kv in self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}).get("kvs", []):
            raw = base64.b64decode(kv.get("value", "")).decode(errors="replace")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            out[base64.b64decode(kv["key"]).decode()] = {"value": value, "lease": int(kv.get("lease", 0)),
                                                          "version": int(kv.get("version", 0))}
        return out

    def ctl(self, *args):
        return subprocess.run(["etcdctl", f"--endpoints={self.url}", *args], capture_output=True, text=True,
                              env={**os.environ, "ETCDCTL_API": "3"}, timeout=30)

    def grant(self, ttl):
        """A lease of ttl seconds, as etcdctl names it (hex)."""
        out = self.ctl("lease", "grant", str(ttl)).stdout
        words = out.split()
        if len(words) < 2 or words[0] != "lease":
            raise RuntimeError(f"etcdctl lease grant: {out}")
        return words[1]
