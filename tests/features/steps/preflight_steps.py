# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: daemons with a PATH under the scenario's control, for the GPU-only preflight. The
# daemon looks for CUDA once at start-up, so each of these starts a fresh daemon. Its PATH is a
# directory of fake tools, then /usr/bin and /bin unless they hold a real nvcc or nvidia-smi;
# any NVML installed on the machine is made inaccessible to it (InaccessiblePaths=).

import os
import sys

from behave import step, use_step_matcher

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402

TOOLS = ("nvcc", "nvidia-smi")
SYSTEM_DIRS = ("/usr/bin", "/bin")


def fake_tool(directory, name, executable=True):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# a stand-in: pool-managerd only looks for it\nexit 0\n")
    os.chmod(path, 0o755 if executable else 0o644)
    return path


def start_gpu_only_daemon(context, on_path=(), off_path=(), not_executable=()):
    bindir = context.s.path("bin")
    os.makedirs(bindir, exist_ok=True)
    for t in on_path:
        fake_tool(bindir, t)
    for t in not_executable:
        fake_tool(bindir, t, executable=False)
    for t in off_path:
        fake_tool(context.s.path("elsewhere"), t)
    # The system directories, unless one holds a real tool (a GPU node has /usr/bin/nvidia-smi):
    # the daemon runs no program, so it does not need them.
    path = [bindir] + [d for d in SYSTEM_DIRS if not any(os.path.exists(os.path.join(d, t)) for t in TOOLS)]
    for d in path[1:]:
        for t in TOOLS:
            assert not os.path.exists(os.path.join(d, t)), f"{d}/{t} exists"
    context.s.tools_dir = bindir
    d = context.h.ensure_daemon({"GpuOnly": "yes"}, env={"PATH": ":".join(path)}, fresh=True, hide_nvml=True)
    assert d.running()
    # The daemon reports what it found once it has looked, before READY=1.
    assert harness.wait_for(lambda: "; GpuOnly=yes." in d.log(), timeout=5), d.log()[-2000:]
    return d


use_step_matcher("re")


@step(r'a pool-managerd with GpuOnly=yes and a PATH holding (?:a fake "(?P<a>[^"]+)"(?: and a fake "(?P<b>[^"]+)")?|(?P<neither>neither tool))')
def step_gpu_only(context, a, b, neither):
    start_gpu_only_daemon(context, on_path=[t for t in (a, b) if t])


use_step_matcher("parse")


@step('a pool-managerd with GpuOnly=yes, a fake "{off}" outside its PATH and a non-executable "{noexec}" on its PATH')
def step_gpu_only_tricky(context, off, noexec):
    start_gpu_only_daemon(context, off_path=[off], not_executable=[noexec])


@step("the daemon's journal says CUDA is available with {tool} found in the fake tools directory")
def step_cuda_available(context, tool):
    d = context.h.daemon
    lines = [l for l in d.log().splitlines() if l.startswith("CUDA ")]
    assert lines, d.log()[-2000:]
    line = lines[-1]
    assert line.startswith("CUDA available ("), line
    assert f"{tool}={os.path.join(context.s.tools_dir, tool)}" in line, line
    assert line.endswith("GpuOnly=yes."), line
