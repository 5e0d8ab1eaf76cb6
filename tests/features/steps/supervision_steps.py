# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: supervision (crashes, backoff, the circuit breaker, restart storms) and re-adoption.
# Engines are made to crash by the fake engine's own flags (--crash-after, --exit-after) or from
# outside (a signal to the unit's MainPID); what follows is read back from the daemon's
# structured journal entries, its D-Bus properties and HTTP status, the saved state in
# StateDirectory, and systemd.

import json
import os
import re
import signal
import sys
import time

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
import observe  # noqa: E402
from checks import check_table, substitute  # noqa: E402
from pools import new_run  # noqa: E402


def table_pairs(context, key="field", value="value"):
    return [(row[key], row[value]) for row in context.table]


def settings_from_table(table):
    """As in daemon_steps: (unset) leaves a key out of the configuration."""
    return {row["key"]: None if row["value"] == "(unset)" else row["value"] for row in table}


# ---- the daemon ----

@step("a freshly started pool-managerd configured with")
def step_fresh_configured(context):
    d = context.h.ensure_daemon(settings_from_table(context.table), fresh=True)
    assert d.running(), d.log()[-2000:]


@step("the daemon is killed with SIGKILL")
def step_daemon_killed(context):
    d = observe.daemon(context)
    pid = d.main_pid()
    assert pid > 0 and harness.process_alive(pid), f"the daemon does not run ({pid})"
    d.kill("KILL")
    assert not harness.process_alive(pid), f"daemon pid {pid} survived SIGKILL"


@step("the daemon is stopped")
def step_daemon_stopped(context):
    d = observe.daemon(context)
    pid = d.main_pid()
    d.stop()
    assert not d.running() and not harness.process_alive(pid), f"daemon pid {pid} still runs"


@step("the daemon is started again with the same configuration")
def step_daemon_started_again(context):
    d = observe.daemon(context)
    assert not d.running(), "the daemon still runs"
    t0 = time.monotonic()
    d.start()
    context.s.marks["daemon_started_at"] = time.time()
    assert d.running(), d.log()[-2000:]
    # READY=1 does not wait for the engines (pool-managerd(8), SERVICE MANAGER).
    assert time.monotonic() - t0 < 5, f"start took {time.monotonic() - t0:.1f} s"


@step("the configuration reference gives the defaults")
def step_man_defaults(context):
    page = os.path.join(harness.TOP, "man", "pool-managerd.conf.5.scd")
    with open(page) as f:
        text = f.read()
    problems = []
    for row in context.table:
        key, value = row["key"], row["default"]
        m = re.search(r"^\*" + re.escape(key) + r"=\*\n((?:\t.*\n)+)", text, re.M)
        if not m:
            problems.append(f"no {key}= entry")
            continue
        body = " ".join(m.group(1).split())
        if f"Defaults to {value}." not in body:
            problems.append(f"{key}=: {body!r}")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


# ---- engines: crashes from outside ----

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSEGV": signal.SIGSEGV, "SIGTERM": signal.SIGTERM}


def unit_main_pid(pool):
    return int(harness.unit_property(harness.engine_unit(pool), "MainPID") or 0)


def serving_pid(context, pool):
    """The MainPID of the pool's engine, which must be ready."""
    props = observe.pool_props(context, pool)
    pid = unit_main_pid(pool)
    assert props["State"] == "ready" and pid > 0 and props["MainPID"] == pid, (props, pid)
    return pid


def kill_engine(context, pool, sig):
    pid = serving_pid(context, pool)
    os.kill(pid, SIGNALS[sig])
    context.s.marks.setdefault("killed", {}).setdefault(pool, []).append(pid)
    return pid


@step('the engine of pool "{pool}" is killed with {sig:w}')
def step_kill_engine(context, pool, sig):
    pid = kill_engine(context, pool, sig)
    assert harness.wait_for(lambda: not harness.process_alive(pid), timeout=5), f"pid {pid} survived {sig}"


@step('the engine of pool "{pool}" is frozen with SIGSTOP')
def step_freeze_engine(context, pool):
    pid = serving_pid(context, pool)
    os.kill(pid, signal.SIGSTOP)
    context.s.marks.setdefault("killed", {}).setdefault(pool, []).append(pid)

    def stopped():
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    assert harness.wait_for(stopped, timeout=2), f"pid {pid} is not stopped"


def wait_serving_again(context, pool, timeout):
    """Ready again, with a process other than every one killed in this scenario."""
    killed = set(context.s.marks.get("killed", {}).get(pool, []))

    def again():
        try:
            props = observe.pool_props(context, pool)
        except harness.HarnessError:
            return False
        pid = unit_main_pid(pool)
        return props["State"] == "ready" and pid > 0 and props["MainPID"] == pid and pid not in killed
    ok = harness.wait_for(again, timeout=timeout, interval=0.02)
    assert ok, (observe.pool_props(context, pool), killed)


@step('within {t:g} seconds pool "{pool}" serves again with a new engine process')
def step_serves_again(context, t, pool):
    wait_serving_again(context, pool, t)


@step('the engine of pool "{pool}" is killed with SIGKILL {n:d} times, each time once it serves again')
def step_kill_repeatedly(context, pool, n):
    for i in range(n):
        if i > 0:
            wait_serving_again(context, pool, 10)
        pid = kill_engine(context, pool, "SIGKILL")
        assert harness.wait_for(lambda: not harness.process_alive(pid), timeout=5), f"pid {pid} survived"
        assert harness.wait_for(lambda: observe.pool_prop(context, pool, "CrashCount") >= i + 1, timeout=5), \
            observe.pool_props(context, pool)


@step('the frozen engine of pool "{pool}" is gone')
def step_frozen_gone(context, pool):
    pids = context.s.marks.get("killed", {}).get(pool, [])
    assert pids, "no engine of this pool was frozen or killed"
    assert harness.wait_for(lambda: not any(harness.process_alive(p) for p in pids), timeout=10), pids


# ---- D-Bus properties over time ----

def property_rows(context):
    return [(row["property"], row["value"]) for row in context.table]


@step('within {t:g} seconds the D-Bus properties of pool "{pool}" are')
def step_props_within(context, t, pool):
    rows = property_rows(context)

    def ok():
        try:
            check_table(context, observe.pool_props(context, pool), rows, f"pool {pool}")
            return True
        except (AssertionError, harness.HarnessError):
            return False
    if not harness.wait_for(ok, timeout=t, interval=0.02):
        check_table(context, observe.pool_props(context, pool), rows, f"D-Bus properties of pool {pool} after {t} s")


@step('for {t:g} seconds the D-Bus properties of pool "{pool}" stay')
def step_props_stay(context, t, pool):
    rows = property_rows(context)
    deadline = time.monotonic() + t
    while True:
        check_table(context, observe.pool_props(context, pool), rows, f"D-Bus properties of pool {pool}")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)


@step('the D-Bus property {name:w} of pool "{pool}" lies between {lo:d} and {hi:d}')
def step_prop_between(context, name, pool, lo, hi):
    v = observe.pool_prop(context, pool, name)
    assert lo <= v <= hi, f"{name} = {v}"


@step('the D-Bus property {name:w} of pool "{pool}" starts with "{prefix}"')
def step_prop_prefix(context, name, pool, prefix):
    prefix = substitute(context, prefix)
    v = observe.pool_prop(context, pool, name)
    assert isinstance(v, str) and v.startswith(prefix), f"{name} = {v!r}"


@step('the NextRestartUSec of pool "{pool}" lies {lo:d} to {hi:d} ms after its last crash entry')
def step_next_restart_after_crash(context, pool, lo, hi):
    crash = observe.crash_entries(context, pool)[-1]
    usec = observe.pool_prop(context, pool, "NextRestartUSec")
    assert usec > 0, observe.pool_props(context, pool)
    delta_ms = usec / 1000 - int(crash["__REALTIME_TIMESTAMP"]) / 1000
    assert lo <= delta_ms <= hi, f"NextRestartUSec is {delta_ms:.0f} ms after the crash entry"


# ---- journal ----

@step('within {t:g} seconds the journal has {n:d} crash entries of pool "{pool}"')
def step_n_crash_entries(context, t, n, pool):
    observe.wait_crash_entries(context, pool, n, t)


@step('the journal has exactly {n:d} crash entries of pool "{pool}"')
def step_exactly_n_crash_entries(context, n, pool):
    entries = observe.crash_entries(context, pool)
    assert len(entries) == n, [e.get("MESSAGE") for e in entries]


@step('the daemon\'s journal says the pools directory file of pool "{pool}" was kept as the pool runs')
def step_pools_dir_kept(context, pool):
    d = observe.daemon(context)
    path = os.path.join(d.settings["PoolsDirectory"], f"{pool}.json")
    prefix = f'{path}: pool "{pool}" is already '
    suffix = ", kept as it is (use Reload to change its engine)."

    def found():
        return [e for e in d.log_entries() if (e.get("MESSAGE") or "").startswith(prefix)
                and e["MESSAGE"].endswith(suffix)]
    assert harness.wait_for(found, timeout=5), [e.get("MESSAGE") for e in d.log_entries()][-10:]


@step('the journal has no crash entry of pool "{pool}"')
def step_no_crash_entry(context, pool):
    entries = observe.crash_entries(context, pool)
    assert not entries, [e.get("MESSAGE") for e in entries]


@step('the crash entries of pool "{pool}" have {field:w} "{values}"')
def step_crash_values(context, pool, field, values):
    wanted = [v.strip() for v in values.split(",")]
    entries = observe.wait_crash_entries(context, pool, len(wanted), 15)
    got = [e.get(field) for e in entries]
    assert got[:len(wanted)] == wanted, f"{field}: {got}"


@step('the crash entries of pool "{pool}" have {field:w} values within {pct:d} percent of "{values}", not all of them exactly')
def step_crash_values_jitter(context, pool, field, pct, values):
    nominal = [int(v) for v in values.split(",")]
    entries = observe.wait_crash_entries(context, pool, len(nominal), 15)
    got = [int(e.get(field)) for e in entries[:len(nominal)]]
    for g, n in zip(got, nominal):
        assert n * (100 - pct) / 100 - 1 <= g <= n * (100 + pct) / 100, f"{field}: {got} against {nominal}"
    assert got != nominal, f"{field}: {got}: no jitter at all"


def check_entry(context, entry, what):
    check_table(context, entry, table_pairs(context), what)


@step('the last crash entry of pool "{pool}" has the fields')
def step_last_crash_fields(context, pool):
    entries = observe.wait_crash_entries(context, pool, 1, 10)
    check_entry(context, entries[-1], f"last crash entry of pool {pool}")


@step('crash entry {i:d} of pool "{pool}" has the fields')
def step_crash_i_fields(context, i, pool):
    entries = observe.wait_crash_entries(context, pool, i, 15)
    check_entry(context, entries[i - 1], f"crash entry {i} of pool {pool}")


def wanted_fields(context):
    return {k: substitute(context, v) for k, v in table_pairs(context)}


@step('the daemon\'s journal has an entry of pool "{pool}" with')
def step_entry_with(context, pool):
    wanted = wanted_fields(context)
    found = harness.wait_for(lambda: observe.entries_with(context, pool, wanted), timeout=10, interval=0.05)
    assert found, f"no entry with {wanted}; entries of {pool}:\n" + "\n".join(
        repr({k: e.get(k) for k in list(wanted) + ["MESSAGE"]}) for e in observe.pool_entries(context, pool)[-15:])


@step('the daemon\'s journal has {n:d} entries of pool "{pool}" with')
def step_n_entries_with(context, n, pool):
    wanted = wanted_fields(context)
    found = harness.wait_for(lambda: (lambda e: e if len(e) >= n else None)(observe.entries_with(context, pool, wanted)),
                             timeout=15, interval=0.05)
    got = observe.entries_with(context, pool, wanted)
    assert found and len(got) == n, f"{len(got)} entries with {wanted}, wanted {n}"


@step('the daemon\'s journal has the message "{text}" at priority {prio:d}')
def step_message_priority(context, text, prio):
    text = substitute(context, text.replace('\\"', '"'))
    d = observe.daemon(context)

    def found():
        return [e for e in d.log_entries(f"PRIORITY={prio}") if e.get("MESSAGE") == text]
    assert harness.wait_for(found, timeout=10, interval=0.05), \
        [(e.get("PRIORITY"), e.get("MESSAGE")) for e in d.log_entries()][-15:]


@step('the daemon\'s journal has a message starting with "{text}" at priority {prio:d}')
def step_message_prefix_priority(context, text, prio):
    text = substitute(context, text.replace('\\"', '"'))
    d = observe.daemon(context)

    def found():
        return [e for e in d.log_entries(f"PRIORITY={prio}") if (e.get("MESSAGE") or "").startswith(text)]
    assert harness.wait_for(found, timeout=10, interval=0.05), \
        [(e.get("PRIORITY"), e.get("MESSAGE")) for e in d.log_entries()][-15:]


@step('the daemon\'s journal says pool "{pool}" is ready again, its engine re-adopted with the same pid')
def step_readopted_entry(context, pool):
    pid, _ = context.s.marks[f"unit:{pool}"]

    def found():
        return [e for e in observe.pool_entries(context, pool, "MESSAGE_ID=0c1727b0c5214e3f8210c1af028737e1")
                if e.get("ENGINE_PID") == str(pid) and e.get("MESSAGE", "").endswith(" (re-adopted)")]
    assert harness.wait_for(found, timeout=5), observe.messages(context, pool)


@step('the D-Bus signals announced {prop:w} of pool "{pool}" as {values}')
def step_announced(context, prop, pool, values):
    """The successive values (repeats folded) of a property in PropertiesChanged signals, as
    JSON; waits until the last one has been announced."""
    mon = context.s.monitor
    assert mon, "the scenario does not monitor D-Bus signals"
    wanted = json.loads(values)
    path = context.h.bus.pool_path(pool)

    def seen():
        got = mon.pool_property_values(path, prop)
        folded = [v for i, v in enumerate(got) if i == 0 or got[i - 1] != v]
        return folded if folded[-1:] == wanted[-1:] else None
    got = harness.wait_for(seen, timeout=10, interval=0.05)
    assert got == wanted, mon.pool_property_values(path, prop)


@step('the D-Bus signals announced {prop:w} of pool "{pool}" passing through {value}')
def step_announced_through(context, prop, pool, value):
    mon = context.s.monitor
    assert mon, "the scenario does not monitor D-Bus signals"
    wanted = json.loads(value)
    path = context.h.bus.pool_path(pool)
    assert harness.wait_for(lambda: wanted in mon.pool_property_values(path, prop), timeout=10, interval=0.05), \
        mon.pool_property_values(path, prop)


@step('pool "{pool}" was started again each time its BACKOFF_MS after the crash, give or take {tol:d} ms')
def step_restart_timing(context, pool, tol):
    entries = observe.pool_entries(context, pool)
    crashes = [e for e in entries if e.get("MESSAGE_ID") == harness.MESSAGE_ENGINE_CRASHED]
    starts = [e for e in entries if (e.get("MESSAGE") or "").startswith(f'Pool "{pool}": starting engine ')]
    checked = []
    for c in crashes:
        delay = int(c["BACKOFF_MS"])
        if delay == 0:
            continue
        later = [s for s in starts if observe.realtime(s) > observe.realtime(c)]
        if not later:
            continue
        gap = (observe.realtime(later[0]) - observe.realtime(c)) * 1000
        checked.append((delay, round(gap)))
    assert len(checked) >= 2, f"too few restarts: {checked}"
    bad = [(d, g) for d, g in checked if not d - tol <= g <= d + tol]
    assert not bad, f"(BACKOFF_MS, measured ms): {checked}"


@step('pool "{pool}" serves for {t:g} seconds without a restart')
def step_serves_stably(context, pool, t):
    pid = serving_pid(context, pool)
    deadline = time.monotonic() + t
    while time.monotonic() < deadline:
        props = observe.pool_props(context, pool)
        assert props["State"] == "ready" and props["MainPID"] == pid, props
        time.sleep(0.05)


@step('the daemon\'s journal has {n:d} lines matching "{pattern}"')
def step_n_lines(context, n, pattern):
    """pattern: a Python regular expression, matched from the start of each line."""
    pattern = pattern.replace('\\"', '"')
    d = observe.daemon(context)

    def lines():
        return [l for l in d.log().splitlines() if re.match(pattern, l)]
    harness.wait_for(lambda: len(lines()) >= n, timeout=5, interval=0.05)
    assert len(lines()) == n, lines()


@step('no engine of pool "{pool}" was started after its circuit opened')
def step_no_start_after_open(context, pool):
    entries = observe.pool_entries(context, pool)
    opened = [i for i, e in enumerate(entries) if e.get("NEW_STATE") == "open"]
    assert opened, "the circuit never opened"
    later = [e.get("MESSAGE") for e in entries[opened[-1] + 1:] if (e.get("MESSAGE") or "").startswith(
        f'Pool "{pool}": starting engine')]
    assert not later, later


def circuit_changes(context, pool, new_state):
    return [e for e in observe.pool_entries(context, pool) if e.get("NEW_STATE") == new_state]


@step('the circuit of pool "{pool}" turned half-open between {lo:g} and {hi:g} seconds after it opened')
def step_half_open_delay(context, pool, lo, hi):
    half = harness.wait_for(lambda: circuit_changes(context, pool, "half-open"), timeout=hi + 5, interval=0.05)
    assert half, observe.messages(context, pool)
    opened = circuit_changes(context, pool, "open")
    gap = observe.realtime(half[0]) - observe.realtime(opened[0])
    assert lo <= gap <= hi, f"half-open {gap:.3f} s after open"


@step('after it opened again, the circuit of pool "{pool}" turned half-open between {lo:g} and {hi:g} seconds later')
def step_half_open_again(context, pool, lo, hi):
    half = harness.wait_for(lambda: (lambda h: h if len(h) >= 2 else None)(circuit_changes(context, pool, "half-open")),
                            timeout=hi + 5, interval=0.05)
    assert half, observe.messages(context, pool)
    opened = circuit_changes(context, pool, "open")
    assert len(opened) >= 2, observe.messages(context, pool)
    gap = observe.realtime(half[1]) - observe.realtime(opened[1])
    assert lo <= gap <= hi, f"second half-open {gap:.3f} s after the second open"


@step('the restart entry of pool "{pool}" announces the NextRestartUSec the daemon published')
def step_restart_entry_matches(context, pool):
    mon = context.s.monitor
    assert mon, "the scenario does not monitor D-Bus signals"
    path = context.h.bus.pool_path(pool)
    values = harness.wait_for(lambda: [v for v in mon.pool_property_values(path, "NextRestartUSec") if v], timeout=5)
    assert values, mon.pool_property_values(path, "NextRestartUSec")
    entries = [e for e in observe.pool_entries(context, pool) if e.get("NEXT_RESTART_AT")]
    assert entries, observe.messages(context, pool)
    at = entries[0]["NEXT_RESTART_AT"]
    usec = values[0]
    announced = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(usec // 1000000)) + f".{usec // 1000 % 1000:03d}Z"
    assert at == announced, f"NEXT_RESTART_AT {at}, NextRestartUSec {usec} ({announced})"
    crash = observe.crash_entries(context, pool)[0]
    delta_ms = usec / 1000 - int(crash["__REALTIME_TIMESTAMP"]) / 1000
    backoff = int(entries[0]["BACKOFF_MS"])
    assert backoff - 50 <= delta_ms <= backoff + 5, f"next restart {delta_ms:.0f} ms after the crash entry"


@step('the engine of pool "{pool}" was started again no earlier than its NextRestartUSec')
def step_started_after_next_restart(context, pool):
    usec = context.s.marks.get(f"next_restart:{pool}")
    assert usec, "NextRestartUSec was not read"
    starts = [e for e in observe.pool_entries(context, pool)
              if (e.get("MESSAGE") or "").startswith(f'Pool "{pool}": starting engine')]
    later = [e for e in starts if int(e["__REALTIME_TIMESTAMP"]) >= usec - 5000]
    assert later, [(e["__REALTIME_TIMESTAMP"], e["MESSAGE"]) for e in starts]
    early = [e for e in starts if int(e["__REALTIME_TIMESTAMP"]) > context.s.marks["daemon_started_at"] * 1e6
             and int(e["__REALTIME_TIMESTAMP"]) < usec - 5000]
    assert not early, early


@step('pool "{pool}" is in backoff with a NextRestartUSec at least {ms:d} ms ahead')
def step_in_backoff_ahead(context, pool, ms):
    props = observe.pool_props(context, pool)
    assert props["State"] == "backoff", props
    ahead = props["NextRestartUSec"] / 1000 - time.time() * 1000
    assert ahead >= ms, f"NextRestartUSec is {ahead:.0f} ms ahead"
    context.s.marks[f"next_restart:{pool}"] = props["NextRestartUSec"]


@step('the NextRestartUSec of pool "{pool}" is the next_restart_at of its saved state')
def step_next_restart_is_saved(context, pool):
    props = observe.pool_props(context, pool)
    saved = observe.saved_state(context, pool)["supervisor"]["next_restart_at"]
    assert props["NextRestartUSec"] == saved == context.s.marks[f"next_restart:{pool}"], (props, saved)


# ---- StateDirectory ----

@step('the unit of pool "{pool}" is stopped behind the daemon\'s back')
def step_stop_unit_behind(context, pool):
    unit = harness.engine_unit(pool)
    assert not observe.daemon(context).running(), "the daemon runs"
    harness.systemctl("stop", unit)
    harness.systemctl("reset-failed", unit)
    assert harness.wait_for(lambda: context.h.bus.unit_properties(unit) is None, timeout=5), \
        context.h.bus.unit_properties(unit)


@step('the saved state of pool "{pool}" has')
def step_saved_state(context, pool):
    rows = [(row["key"], row["value"]) for row in context.table]

    def ok():
        try:
            check_table(context, observe.saved_state(context, pool), rows, f"saved state of {pool}")
            return True
        except (AssertionError, OSError, ValueError):
            return False
    if not harness.wait_for(ok, timeout=5):
        check_table(context, observe.saved_state(context, pool), rows, f"saved state of {pool}")


@step('the saved state of pool "{pool}" is a private file in the state directory')
def step_saved_state_file(context, pool):
    path = observe.daemon(context).state_file(pool)
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


@step('the saved state of pool "{pool}" remembers {n:d} restarts, all within {t:g} seconds')
def step_saved_restarts(context, pool, n, t):
    restarts = observe.saved_state(context, pool)["supervisor"]["restarts"]
    assert len(restarts) == n, restarts
    assert (restarts[-1] - restarts[0]) / 1e6 <= t, restarts


# ---- the status over HTTP ----

@step('the status of pool "{pool}" agrees with its D-Bus properties on the supervision state')
def step_status_agrees(context, pool):
    s = observe.daemon(context).status(pool)
    p = observe.pool_props(context, pool)
    pairs = [("crash_count", "CrashCount"), ("restart_count", "RestartCount"), ("backoff_ms", "BackoffMSec"),
             ("circuit_state", "CircuitState"), ("state", "State")]
    problems = [f"{a}={s[a]!r} but {b}={p[b]!r}" for a, b in pairs if s[a] != p[b]]
    next_usec = s["next_restart_usec"]
    if (next_usec or 0) != p["NextRestartUSec"]:
        problems.append(f"next_restart_usec={next_usec!r} but NextRestartUSec={p['NextRestartUSec']}")
    assert not problems, problems


# ---- leases ----

def hold_leases(context, pool, n):
    d = observe.daemon(context)
    for _ in range(n):
        r = d.request("POST", f"/pools/{pool}/leases")
        assert r.status == 200, r
    s = d.status(pool)
    assert s["active_leases"] == n, s


@step('pool "{pool}" holds {n:d} leases')
def step_holds_leases(context, pool, n):
    hold_leases(context, pool, n)


@step('pool "{pool}" holds 1 lease')
def step_holds_lease(context, pool):
    hold_leases(context, pool, 1)


# ---- poolctl ----

@step('I run poolctl {args}')
def step_poolctl(context, args):
    r = harness.run(harness.POOLCTL, "--user", *args.split())
    context.s.poolctl = r
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)


# ---- the pools directory ----

@step('the pools directory holds the PreparedEngine of pool "{pool}"')
def step_pools_dir(context, pool):
    run = new_run(context, pool)
    d = observe.daemon(context)
    os.makedirs(d.settings["PoolsDirectory"], exist_ok=True)
    path = os.path.join(d.settings["PoolsDirectory"], f"{pool}.json")
    with open(path, "w") as f:
        json.dump(run.prepared, f)
    with open(path) as f:
        assert json.load(f)["pool_id"] == pool


@step('the unit of pool "{pool}" is the one noted before')
def step_same_unit(context, pool):
    noted = context.s.marks.get(f"unit:{pool}")
    assert noted, "nothing was noted"
    now = (unit_main_pid(pool), harness.unit_property(harness.engine_unit(pool), "InvocationID"))
    assert now == noted, f"MainPID/InvocationID {now}, noted {noted}"


@step('the engine of pool "{pool}" runs as the main process of its unit, noted')
def step_note_unit(context, pool):
    pid = serving_pid(context, pool)
    inv = harness.unit_property(harness.engine_unit(pool), "InvocationID")
    assert re.fullmatch(r"[0-9a-f]{32}", inv), inv
    assert harness.process_alive(pid)
    context.s.marks[f"unit:{pool}"] = (pid, inv)


@step('the engine of pool "{pool}" survived the daemon')
def step_engine_survived(context, pool):
    pid, inv = context.s.marks[f"unit:{pool}"]
    assert harness.process_alive(pid), f"engine pid {pid} is gone"
    assert harness.unit_property(harness.engine_unit(pool), "ActiveState") == "active"
