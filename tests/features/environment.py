# SPDX-License-Identifier: GPL-3.0-or-later
#
# behave hooks. The whole run happens inside one tests/sandbox (a private systemd --user, bus
# and journald). A daemon is started by the first step that asks for one and kept for the
# following scenarios of the feature when they ask for the same configuration; after each
# scenario every engine is stopped, so scenarios do not depend on each other; after each
# feature the daemon is stopped.

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))

import harness  # noqa: E402


def before_all(context):
    if not harness.in_sandbox():
        raise SystemExit("The BDD suite runs inside tests/sandbox: tests/sandbox -- behave tests/features "
                         "(or tests/features/run-bdd, or tools/test --bdd FEATURE)")
    for b in (harness.POOL_MANAGERD, harness.FAKE_ENGINE):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} is missing: build first (ninja -C build), or set POOL_MANAGERD/FAKE_ENGINE")
    context.h = harness.Harness()


def before_scenario(context, scenario):
    context.s = context.h.begin_scenario(scenario.name)


def after_scenario(context, scenario):
    context.h.end_scenario()


def after_feature(context, feature):
    context.h.stop_daemon()


def after_all(context):
    if hasattr(context, "h"):
        context.h.teardown()
