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
import ssl
import subprocess
import time

FREE_PORT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "free-port")


def available():
    return bool(shutil.which("etcd") and shutil.which("etcdctl"))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def prefix_end(prefix):
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl; returns
    {"ca", "server_cert", "server_key", "client_cert", "client_key"} (paths)."""
    paths = {name: os.path.join(directory, f"{name.replace('_', '-')}.pem")
             for name in ("ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key")}

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fleet-test-ca",
            "-keyout", paths["ca_key"], "-out", paths["ca"])
    # The server certificate allows client authentication too: etcd 3.4's JSON gateway dials the
    # member's own gRPC port with it, and --client-cert-auth checks it there as a client's.
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        csr = os.path.join(directory, f"{who}.csr")
        extfile = os.path.join(directory, f"{who}.ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=fleet-test-{who}",
                "-keyout", paths[f"{who}_key"], "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", paths["ca_key"], "-CAcreateserial",
                "-days", "2", "-extfile", extfile, "-out", paths[f"{who}_cert"])
    return paths


class Etcd:
    """tls: make_certificates()'s paths: https with client certificates required.
    user: (name, password) for reading once auth is enabled. host: the address it listens on
    (tests/fleet_netns.py: a bridge that network namespaces reach)."""

    def __init__(self, directory, tls=None, host="127.0.0.1"):
        self.dir = directory
        self.host = host
        ports = subprocess.run([FREE_PORT, "2"], capture_output=True, text=True, check=True).stdout.split()
        self.client_port, self.peer_port = int(ports[0]), int(ports[1])
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://{host}:{self.client_port}"
        self.user = None
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "etcd.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        peer = f"http://{self.host}:{self.peer_port}"
        with open(os.path.join(self.dir, "etcd.log"), "ab") as log:
            self.proc = subprocess.Popen(
                ["etcd", "--name", "fleet-test", "--data-dir", os.path.join(self.dir, "etcd-data"),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"fleet-test={peer}", *self.tls_arguments()],
                stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not self.healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("etcd did not come up:\n" + self.log()[-3000:])
            time.sleep(0.05)

    def tls_arguments(self):
        if not self.tls:
            return []
        return ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"],
                "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]

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

    def connection(self):
        if not self.tls:
            return http.client.HTTPConnection(self.host, self.client_port, timeout=10)
        ctx = ssl.create_default_context(cafile=self.tls["ca"])
        ctx.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        return http.client.HTTPSConnection(self.host, self.client_port, timeout=10, context=ctx)

    def call(self, path, body, token=None):
        headers = {"Content-Type": "application/json"}
        if self.user and not token and path != "/v3/auth/authenticate":
            headers["Authorization"] = self.call("/v3/auth/authenticate", {"name": self.user[0],
                                                                           "password": self.user[1]})["token"]
        conn = self.connection()
        try:
            conn.request("POST", path, body=json.dumps(body), headers=headers)
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
        extra = []
        if self.tls:
            extra += ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"], "--key", self.tls["client_key"]]
        if self.user:
            extra += ["--user", f"{self.user[0]}:{self.user[1]}"]
        return subprocess.run(["etcdctl", f"--endpoints={self.url}", *extra, *args], capture_output=True, text=True,
                              env={**os.environ, "ETCDCTL_API": "3"}, timeout=30)

    def enable_auth(self, name, password):
        """Users "root" (all rights) and name; authentication on."""
        for args in (("user", "add", "root:rootpw"), ("user", "add", f"{name}:{password}"),
                     ("user", "grant-role", name, "root"), ("auth", "enable")):
            r = self.ctl(*args)
            if r.returncode != 0:
                raise RuntimeError(f"etcdctl {' '.join(args)}: {r.stderr}")
        self.user = (name, password)

    def grant(self, ttl):
        """A lease of ttl seconds, as etcdctl names it (hex)."""
        out = self.ctl("lease", "grant", str(ttl)).stdout
        words = out.split()
        if len(words) < 2 or words[0] != "lease":
            raise RuntimeError(f"etcdctl lease grant: {out}")
        return words[1]
