# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: the engines' systemd units (read over D-Bus from systemd), and the files the daemon
# writes: pid files, handoff files, engine log files.

import datetime
import glob
import json
import os
import re
import sys
import time

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
from checks import ABSENT, check_table, dotted  # noqa: E402


# ---- units ----

def unit_props(context, unit):
    props = context.h.bus.unit_properties(unit)
    assert props is not None, f"systemd does not know {unit}"
    return props


@step('the unit "{unit}" has the properties')
def step_unit_properties(context, unit):
    props = unit_props(context, unit)
    # For StandardOutput=append:PATH the bus says only "append" (systemd 252); the path is in
    # the transient unit file systemd wrote from the daemon's request.
    for stream in ("StandardOutput", "StandardError"):
        if props.get(stream) == "append":
            with open(props["FragmentPath"]) as f:
                lines = [l.strip() for l in f if l.startswith(stream + "=append:")]
            assert len(lines) == 1, lines
            props[stream] = lines[0].split("=", 1)[1]
    check_table(context, props, [(row["property"], row["value"]) for row in context.table],
                f"properties of {unit}", contains_for_lists=True)


@step('the unit "{unit}" runs the fake engine binary as ExecStart')
def step_unit_exec(context, unit):
    exec_start = unit_props(context, unit)["ExecStart"]
    assert len(exec_start) == 1 and exec_start[0][0] == harness.FAKE_ENGINE, exec_start
    assert exec_start[0][1][0] == harness.FAKE_ENGINE, exec_start


@step('the ExecStart of unit "{unit}" is the binary_path of pool "{pool}" followed by its flags')
def step_unit_argv(context, unit, pool):
    prepared = context.s.run_of(pool).prepared
    exec_start = unit_props(context, unit)["ExecStart"]
    assert list(exec_start[0][1]) == [prepared["binary_path"]] + prepared["flags"], exec_start


@step('the unit "{unit}" is still active')
def step_unit_active(context, unit):
    assert unit_props(context, unit)["ActiveState"] == "active"


@step('systemd has no unit "{unit}"')
def step_no_unit(context, unit):
    assert harness.wait_for(lambda: context.h.bus.unit_properties(unit) is None, timeout=5), \
        context.h.bus.unit_properties(unit)


@step('a unit "{unit}" started with systemd-run that is not the daemon\'s')
def step_foreign_unit(context, unit):
    r = harness.run("systemd-run", "--user", "--quiet", f"--unit={unit}", "sleep", "600")
    assert r.returncode == 0, r.stderr
    assert unit_props(context, unit)["ActiveState"] == "active"


@step('the journal of unit "{unit}" has the line "{text}"')
def step_unit_journal_line(context, unit, text):
    found = harness.wait_for(lambda: text in harness.journal_text(f"--user-unit={unit}").splitlines(), timeout=5)
    assert found, harness.journal_text(f"--user-unit={unit}")


@step('the journal of unit "{unit}" has a line matching "{pattern}"')
def step_unit_journal_match(context, unit, pattern):
    found = harness.wait_for(lambda: re.search(pattern, harness.journal_text(f"--user-unit={unit}")), timeout=5)
    assert found, harness.journal_text(f"--user-unit={unit}")


@step('the journal of unit "{unit}" is empty')
def step_unit_journal_empty(context, unit):
    text = harness.journal_text(f"--user-unit={unit}")
    assert text == "", text


# ---- pid files ----

def read_pid_file(context, pool):
    with open(context.h.daemon.pid_file(pool)) as f:
        return f.read()


def pid_file_holds_mainpid(context, pool, unit):
    try:
        content = read_pid_file(context, pool)
    except FileNotFoundError:
        return False
    main_pid = harness.unit_property(unit, "MainPID")
    return main_pid not in ("", "0") and content.strip() == main_pid


@step('the pid file of pool "{pool}" holds the MainPID of unit "{unit}"')
def step_pid_file(context, pool, unit):
    assert pid_file_holds_mainpid(context, pool, unit), \
        (read_pid_file(context, pool), harness.unit_property(unit, "MainPID"))


@step('within {n:d} seconds the pid file of pool "{pool}" holds the MainPID of unit "{unit}"')
def step_pid_file_within(context, n, pool, unit):
    assert harness.wait_for(lambda: pid_file_holds_mainpid(context, pool, unit), timeout=n), \
        os.listdir(context.h.daemon.runtime_dir)


@step('the pid file of pool "{pool}" is a decimal number and a newline, nothing else')
def step_pid_file_format(context, pool):
    content = read_pid_file(context, pool)
    assert re.fullmatch(r"[1-9][0-9]*\n", content), repr(content)


@step('the pid file of pool "{pool}" was written before the engine received its first probe')
def step_pid_before_probe(context, pool):
    mtime = os.stat(context.h.daemon.pid_file(pool)).st_mtime
    probes = context.s.run_of(pool).probes()
    assert probes, "the engine received no probe"
    first = probes[0][0] / 1000
    # The probe log has millisecond resolution (truncated).
    assert mtime <= first + 0.001, f"pid file written at {mtime:.4f}, first probe at {first:.3f}"


@step('the pid file of pool "{pool}" has been removed by hand')
def step_remove_pid_file(context, pool):
    path = context.h.daemon.pid_file(pool)
    os.unlink(path)
    assert not os.path.exists(path)


@step('pool "{pool}" has no pid file')
def step_no_pid_file(context, pool):
    path = context.h.daemon.pid_file(pool)
    assert not os.path.exists(path), read_pid_file(context, pool)


# ---- handoff files ----

def read_handoff(path):
    with open(path) as f:
        return json.load(f)


@step('pool "{pool}" has no handoff file')
def step_no_handoff(context, pool):
    found = glob.glob(os.path.join(glob.escape(context.h.daemon.runtime_dir), "engines", f"{glob.escape(pool)}-*.json"))
    assert not found, found


@step('the handoff file of pool "{pool}" exists')
def step_handoff_exists(context, pool):
    assert os.path.isfile(context.h.daemon.handoff_file(pool)), os.listdir(
        os.path.join(context.h.daemon.runtime_dir, "engines"))


@step('the handoff file "{rel}" exists')
def step_handoff_rel_exists(context, rel):
    assert os.path.isfile(os.path.join(context.h.daemon.runtime_dir, rel))


def check_handoff(context, path):
    check_table(context, read_handoff(path), [(row["key"], row["value"]) for row in context.table],
                f"handoff file {path}")


@step('the handoff file of pool "{pool}" contains')
def step_handoff_contains(context, pool):
    check_handoff(context, context.h.daemon.handoff_file(pool))


@step('the handoff file "{rel}" contains')
def step_handoff_rel_contains(context, rel):
    check_handoff(context, os.path.join(context.h.daemon.runtime_dir, rel))


@step('the handoff file of pool "{pool}" has no key "{key}"')
def step_handoff_no_key(context, pool, key):
    h = read_handoff(context.h.daemon.handoff_file(pool))
    assert dotted(h, key) is ABSENT, h


@step('the handoff files of pools "{a}" and "{b}" are different files naming their own pool')
def step_handoffs_distinct(context, a, b):
    pa, pb = context.h.daemon.handoff_file(a), context.h.daemon.handoff_file(b)
    assert pa != pb
    ha, hb = read_handoff(pa), read_handoff(pb)
    assert ha["pool_id"] == a and hb["pool_id"] == b, (ha, hb)
    assert ha["url"] != hb["url"] and ha["pid"] != hb["pid"], (ha, hb)


def ready_at(context, pool):
    t = context.s.run_of(pool).ready_at()
    assert t is not None, "the engine never turned healthy"
    return t


# File times come from the kernel's coarse clock, one tick behind the real time or, when a
# virtual CPU's tick comes late, a little more (seen here: 4.5 ms with a 4 ms tick, 1 run in
# 10 of this scenario). Two ticks; the daemon's own "ready_at" (next step) is exact.
COARSE_TICK = time.clock_getres(getattr(time, "CLOCK_REALTIME_COARSE", 5))


@step('the handoff file of pool "{pool}" was written after the engine turned healthy')
def step_handoff_after_ready(context, pool):
    mtime = os.stat(context.h.daemon.handoff_file(pool)).st_mtime
    assert mtime + 2 * COARSE_TICK >= ready_at(context, pool), (mtime, COARSE_TICK, ready_at(context, pool))


@step('the handoff file of pool "{pool}" has a "ready_at" timestamp after the engine turned healthy')
def step_handoff_ready_at(context, pool):
    text = read_handoff(context.h.daemon.handoff_file(pool))["ready_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    # ready_at has millisecond resolution.
    assert t >= ready_at(context, pool) - 0.001, (text, ready_at(context, pool))


# ---- engine log files (EngineLogs=file) ----

@step('the engine log file of pool "{pool}" contains "{text}"')
def step_log_contains(context, pool, text):
    path = context.h.daemon.log_file(pool)

    def found():
        try:
            return text in open(path).read().splitlines()
        except FileNotFoundError:
            return False
    assert harness.wait_for(found, timeout=5), path


@step('the engine log file of pool "{pool}" already holds "{text}"')
def step_log_prewrite(context, pool, text):
    path = context.h.daemon.log_file(pool)
    with open(path, "w") as f:
        f.write(text + "\n")
    with open(path) as f:
        assert f.read() == text + "\n"


@step('the engine log file of pool "{pool}" exists in the runtime directory\'s "{sub}" directory')
def step_log_location(context, pool, sub):
    path = os.path.join(context.h.daemon.runtime_dir, sub, f"{pool}.log")
    assert os.path.isfile(path), os.listdir(os.path.dirname(path))
    assert context.h.daemon.log_file(pool) == path
    assert os.path.getsize(path) > 0


@step('an executable file "{name}" in the scenario directory that is not a program')
def step_not_a_program(context, name):
    path = context.s.path(name)
    with open(path, "wb") as f:
        f.write(b"\x7fELF but not really an executable\n")
    os.chmod(path, 0o755)
    assert os.access(path, os.X_OK)
