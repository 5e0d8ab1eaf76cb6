# SPDX-License-Identifier: GPL-3.0-or-later
#
# What the Phase 2 steps read back from the daemon: its structured journal entries (crashes,
# restarts, circuit changes, drains, reloads), pool properties over D-Bus, the saved state in
# StateDirectory, and background requests whose answers come later.

import json
import threading
import time

import harness


def daemon(context):
    if not context.h.daemon:
        raise harness.HarnessError("no daemon: the scenario must start one first")
    return context.h.daemon


# ---- journal ----

def pool_entries(context, pool, *matches):
    """The daemon's journal entries about pool, oldest first (both lives of a restarted daemon:
    the unit keeps its name)."""
    return daemon(context).log_entries(f"POOL_ID={pool}", *matches)


def crash_entries(context, pool):
    """The crash entries of pool (MESSAGE_ID a9c67e90...), in the order they were logged."""
    return pool_entries(context, pool, f"MESSAGE_ID={harness.MESSAGE_ENGINE_CRASHED}")


def wait_crash_entries(context, pool, n, timeout):
    entries = harness.wait_for(lambda: (lambda e: e if len(e) >= n else None)(crash_entries(context, pool)),
                               timeout=timeout, interval=0.05)
    got = crash_entries(context, pool)
    assert entries, f"{len(got)} crash entries of pool {pool} within {timeout} s, wanted {n}: " + \
        repr([e.get("MESSAGE") for e in got])
    return entries


def entries_with(context, pool, wanted):
    """Entries of pool whose fields have all the wanted values (strings, as journald stores them;
    a value ending in "…" is a prefix)."""
    def ok(got, v):
        return got == v or (v.endswith("…") and isinstance(got, str) and got.startswith(v[:-1]))
    return [e for e in pool_entries(context, pool) if all(ok(e.get(k), v) for k, v in wanted.items())]


def realtime(entry):
    """When journald received an entry, in seconds since the epoch."""
    return int(entry["__REALTIME_TIMESTAMP"]) / 1e6


def messages(context, pool):
    return [e.get("MESSAGE") for e in pool_entries(context, pool)]


# ---- D-Bus properties ----

def pool_props(context, pool):
    return context.h.bus.pool_properties(pool)


def pool_prop(context, pool, name):
    return pool_props(context, pool)[name]


# ---- StateDirectory ----

def saved_state(context, pool):
    with open(daemon(context).state_file(pool)) as f:
        return json.load(f)


# ---- requests answered later ----

class Pending:
    """An HTTP request or a D-Bus call running in a thread; .result once it is answered."""

    def __init__(self, what, fn):
        self.what = what
        self.result = None
        self.error = None
        self.sent_at = time.time()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - reported by the step that waits
            self.error = e

    def answered(self):
        return not self.thread.is_alive()

    def wait(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.what}: no answer within {timeout} s"
        if self.error:
            raise self.error
        return self.result


def pending(context, key):
    p = getattr(context.s, "pending", {}).get(key)
    assert p is not None, f"nothing pending for {key}"
    return p


def start_pending(context, key, what, fn):
    if not hasattr(context.s, "pending"):
        context.s.pending = {}
    context.s.pending[key] = Pending(what, fn)
    return context.s.pending[key]
