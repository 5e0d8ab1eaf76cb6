# SPDX-License-Identifier: GPL-3.0-or-later
"""
Shared by bench/crash-detect, bench/readopt and bench/supervisord-baseline: packages and build,
the re-exec inside tests/sandbox, a daemon run as a Type=notify user unit, pools of
tests/fake-engine, bench/crash-watch (the C client that does every timing) and statistics.
Not a benchmark itself.
"""
import json
import os
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAEMON = os.environ.get("POOL_MANAGERD") or os.path.join(TOP, "build/src/pool-managerd")
ENGINE = os.path.join(TOP, "build/tests/fake-engine")
PRELOAD = os.path.join(TOP, "build/bench/preload-client")
WATCH = os.path.join(TOP, "build/bench/crash-watch")
LIB = os.path.join(TOP, "tools/lib.sh")


def ensure_ready(extra_packages=()):
    """Outside the sandbox: install what is missing (tools/lib.sh), build, then re-exec inside
    tests/sandbox (a private systemd --user, bus and journald) unless a user manager is there."""
    if subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True).returncode == 0:
        return
    if os.environ.get("POOL_BENCH_INNER"):
        raise SystemExit("no user manager even inside the sandbox")
    r = subprocess.run(["bash", "-c", 'source "$0" && ensure_packages "${PACKAGES[@]}" "$@" && build_dir build',
                        LIB, *extra_packages])
    if r.returncode != 0:
        raise SystemExit("installing the packages or building failed")
    for binary in (DAEMON, ENGINE, PRELOAD, WATCH):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} missing after the build")
    os.execvp(os.path.join(TOP, "tests/sandbox"),
              ["sandbox", "--", "env", "POOL_BENCH_INNER=1", sys.executable, *sys.argv])


_ports = []


def free_port():
    # tests/free-port: below the ephemeral range, where probe connections take local ports.
    if not _ports:
        _ports.extend(int(p) for p in subprocess.run(
            [os.path.join(TOP, "tests/free-port"), "200"], capture_output=True, text=True,
            check=True).stdout.split())
    return _ports.pop()


def workdir(name, tmpfs=False):
    """Under $XDG_RUNTIME_DIR (the sandbox's), not /tmp: engines run with PrivateTmp=yes. With
    tmpfs, the daemon's RuntimeDirectory and StateDirectory (work/run, work/state) get a tmpfs
    each, mounted in the sandbox's private mount namespace, so that fsync() costs nothing."""
    work = os.path.join(os.environ["XDG_RUNTIME_DIR"], name)
    os.makedirs(os.path.join(work, "pools.d"), exist_ok=True)
    for d in ("run", "state"):
        path = os.path.join(work, d)
        subprocess.run(["umount", "-q", path], capture_output=True)
        subprocess.run(["rm", "-rf", path])
        os.makedirs(path)
        if tmpfs:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path], check=True)
    return work


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def storage_note(work):
    return f"RuntimeDirectory on {fs_type(work + '/run')}, StateDirectory on {fs_type(work + '/state')}"


def write_config(work, listen_port, manager=None, supervision=None):
    """pool-managerd.conf in work, with its own directories; returns (path, text)."""
    m = {"PoolsDirectory": f"{work}/pools.d", "RuntimeDirectory": f"{work}/run",
         "StateDirectory": f"{work}/state", "GpuOnly": "no", "EngineSandbox": "container",
         "Listen": f"127.0.0.1:{listen_port}"}
    m.update(manager or {})
    text = "[Manager]\n" + "".join(f"{k}={v}\n" for k, v in m.items())
    if supervision:
        text += "[Supervision]\n" + "".join(f"{k}={v}\n" for k, v in supervision.items())
    path = os.path.join(work, "pool-managerd.conf")
    with open(path, "w") as f:
        f.write(text)
    return path, text


def systemctl(*args, check=False):
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, check=check)


def daemon_start_argv(unit, conf, properties=()):
    # systemd-run waits for the start job: with Type=notify, for READY=1. CollectMode lets a
    # daemon killed with SIGKILL be started again under the same name.
    return ["systemd-run", "--user", "--quiet", f"--unit={unit}", "-p", "Type=notify", "-p", "NotifyAccess=main",
            "-p", "CollectMode=inactive-or-failed", *(a for p in properties for a in ("-p", p)),
            DAEMON, "--user", f"--config={conf}"]


def daemon_start(unit, conf, properties=()):
    systemctl("stop", unit)
    systemctl("reset-failed", unit)
    subprocess.run(daemon_start_argv(unit, conf, properties), check=True)


def daemon_pid(unit):
    return int(systemctl("show", "-P", "MainPID", unit, check=True).stdout)


def daemon_stop(unit, pool_prefix):
    # SIGTERM alone first: see tests/stop-daemon (systemd's SIGCONT can hang an ASan build's exit).
    subprocess.run([os.path.join(TOP, "tests", "stop-daemon"), unit], capture_output=True)
    systemctl("stop", f"pool-engine-{pool_prefix}*.service")


def make_pools(work, prefix, n, extra_flags=()):
    """n PreparedEngine files of fake engines that answer 200 at once; returns (ids, files)."""
    ids, files = [], []
    for i in range(n):
        pool_id = f"{prefix}{i:02d}"
        port = free_port()
        ids.append(pool_id)
        files.append(os.path.join(work, f"{pool_id}.json"))
        with open(files[-1], "w") as f:
            json.dump({"pool_id": pool_id, "binary_path": ENGINE, "port": port,
                       "flags": ["--port", str(port), *extra_flags]}, f)
    return ids, files


def preload(files):
    r = subprocess.run([PRELOAD, *files], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"Preload failed:\n{r.stdout}{r.stderr}")


def crash_watch_crash(ids, samples, extra=(), timeout=900):
    """Runs crash-watch crash; returns a list of dicts, one per sample."""
    r = subprocess.run([WATCH, "crash", f"--samples={samples}", *extra, *ids], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"crash-watch crash failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr}")
    if r.stderr.strip():
        print(r.stderr.strip(), file=sys.stderr)
    out = []
    for line in r.stdout.splitlines():
        f = line.split()
        if f[0] != "sample":
            continue
        keys = ("dead", "unit", "false", "http", "health", "true")
        out.append({"pool": f[2], "pid": int(f[3]), **{k: float(v) for k, v in zip(keys, f[4:10])},
                    "kill_realtime_us": int(f[10]), "http_requests": int(f[11]), "health_attempts": int(f[12])})
    return out


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def stats(values):
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values), "min": min(values), "mean": statistics.fmean(values)}


def verdict(ok):
    return "PASS" if ok else "MISS"


def header(title):
    print()
    print(title)
    print("-" * len(title))


def now_ms():
    return time.monotonic() * 1000.0
