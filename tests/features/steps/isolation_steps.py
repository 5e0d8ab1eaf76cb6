# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: the sandbox of engine units, seen from inside by tests/features/support/sandbox-probe
# (which then execs the fake engine) and from outside on the unit's properties.

import json
import os
import sys

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
from checks import check_table  # noqa: E402
from pools import http_preload, new_run  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support", "sandbox-probe")

# Calls outside @system-service that an engine must not make, and ones it needs.
FORBIDDEN_CALLS = ("modify_ldt", "mount", "ptrace", "kexec_load", "init_module", "swapon", "reboot")
NEEDED_CALLS = ("read", "write", "socket", "bind", "accept4", "execve", "mmap", "clone", "ioctl")
EPERM = 1


def report(context, pool):
    run = context.s.run_of(pool)
    with open(run.sandbox_report) as f:
        return json.load(f)


def runtime_dir():
    return os.environ["XDG_RUNTIME_DIR"]


@step('a ready pool "{pool}" whose engine first reports on its sandbox')
def step_probe_pool(context, pool):
    run = new_run(context, pool)
    run.sandbox_report = context.s.path(f"{pool}.sandbox.json")
    run.prepared["flags"] = [harness.FAKE_ENGINE] + run.prepared["flags"]
    run.prepared["binary_path"] = PROBE
    run.prepared["env"] = {"SANDBOX_PROBE_REPORT": run.sandbox_report}
    r = http_preload(context, run)
    assert r.status == 200, f"{r}\n{harness.journal_text('_SYSTEMD_USER_UNIT=' + harness.engine_unit(pool))}"
    assert os.path.exists(run.sandbox_report), "the engine became ready without reporting"
    marker = report(context, pool)["tmp_marker"]
    # Where no PrivateTmp= hides it, the engine's file is in the real /tmp.
    previous = getattr(context.s, "extra_cleanup", None)

    def cleanup():
        if previous:
            previous()
        try:
            os.unlink(marker)
        except FileNotFoundError:
            pass
    context.s.extra_cleanup = cleanup


@step('the engine of pool "{pool}" reports')
def step_reports(context, pool):
    check_table(context, report(context, pool), [(row["probe"], row["value"]) for row in context.table],
                f"what the engine of pool {pool} found")


@step('the engine of pool "{pool}" has capabilities')
def step_has_caps(context, pool):
    s = report(context, pool)["status"]
    assert int(s["CapBnd"], 16) != 0 and int(s["CapEff"], 16) != 0, s


@step('the engine of pool "{pool}" works in "{rel}" under the manager\'s runtime directory, mode 0700, its own')
def step_workdir(context, pool, rel):
    r = report(context, pool)
    wanted = os.path.join(runtime_dir(), rel)
    assert (r["cwd"], r["cwd_mode"], r["cwd_uid"]) == (wanted, "0700", r["uid"]), (r, wanted)
    assert harness.unit_property(harness.engine_unit(pool), "WorkingDirectory") == wanted


@step('the engine of pool "{pool}" does not work in "{rel}" under the manager\'s runtime directory')
def step_no_workdir(context, pool, rel):
    r = report(context, pool)
    assert r["cwd"] != os.path.join(runtime_dir(), rel), r
    assert not os.path.exists(os.path.join(runtime_dir(), rel))


@step('the working directory of the engine of pool "{pool}" is gone')
def step_workdir_gone(context, pool):
    path = report(context, pool)["cwd"]
    assert harness.wait_for(lambda: not os.path.exists(path), timeout=5), f"{path} is still there"


@step('the working directory of the engine of pool "{pool}" is still there')
def step_workdir_there(context, pool):
    path = report(context, pool)["cwd"]
    assert os.path.isdir(path), f"{path} is gone"


@step('the file the engine of pool "{pool}" wrote to /tmp is not in /tmp outside it')
def step_tmp_private(context, pool):
    r = report(context, pool)
    assert os.path.basename(r["tmp_marker"]) in r["tmp_entries"], r
    assert not os.path.exists(r["tmp_marker"]), f"{r['tmp_marker']} is visible outside the engine"


@step('the file the engine of pool "{pool}" wrote to /tmp is in /tmp outside it')
def step_tmp_shared(context, pool):
    r = report(context, pool)
    assert os.path.exists(r["tmp_marker"]), f"{r['tmp_marker']} is not in /tmp"


@step('the engine of pool "{b}" did not see the file the engine of pool "{a}" wrote to /tmp')
def step_tmp_other(context, b, a):
    marker = os.path.basename(report(context, a)["tmp_marker"])
    entries = report(context, b)["tmp_entries"]
    assert marker not in entries, entries


@step('the unit "{unit}" allows the system calls of @system-service only, failing others with EPERM')
def step_syscall_filter(context, unit):
    props = context.h.bus.unit_properties(unit)
    assert props is not None, f"systemd does not know {unit}"
    allow, calls = props["SystemCallFilter"]
    assert allow is True, props["SystemCallFilter"]
    assert all(c in calls for c in NEEDED_CALLS), [c for c in NEEDED_CALLS if c not in calls]
    assert not any(c in calls for c in FORBIDDEN_CALLS), [c for c in FORBIDDEN_CALLS if c in calls]
    assert props["SystemCallErrorNumber"] == EPERM, props["SystemCallErrorNumber"]
