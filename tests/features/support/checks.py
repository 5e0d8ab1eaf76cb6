# SPDX-License-Identifier: GPL-3.0-or-later
#
# How the values written in the feature files' tables are read: placeholders for what a
# scenario cannot know in advance (ports, pids, directories), "(absent)" and "(unset)", and
# comparison against a JSON or D-Bus value by the type of the value found.

import json
import re

import harness

ABSENT = object()

TOKEN = re.compile(r"\$(MAINPID|PORT|FLAGS)\(([^)]+)\)|\$(RUNTIME_DIR|WORK|FAKE_ENGINE)\b")


def substitute(context, text):
    """$MAINPID(pool): the MainPID systemd reports for the pool's engine unit; $PORT(pool): the
    pool's engine port; $FLAGS(pool): its PreparedEngine flags as JSON; $RUNTIME_DIR: the
    daemon's RuntimeDirectory; $WORK: the scenario's directory; $FAKE_ENGINE: the engine binary."""
    def repl(m):
        if m.group(1) == "MAINPID":
            return harness.unit_property(harness.engine_unit(m.group(2)), "MainPID")
        if m.group(1) == "PORT":
            return str(context.s.run_of(m.group(2)).port)
        if m.group(1) == "FLAGS":
            return json.dumps(context.s.run_of(m.group(2)).prepared["flags"])
        if m.group(3) == "RUNTIME_DIR":
            return context.h.daemon.runtime_dir
        if m.group(3) == "WORK":
            return context.s.dir
        return harness.FAKE_ENGINE
    return TOKEN.sub(repl, text)


# PreparedEngine fields that are not strings: their table values are JSON.
JSON_FIELDS = {"port", "flags", "env", "health", "slots_total", "vram_required_bytes"}


def prepared_value(context, field, text):
    """A PreparedEngine field's value from a table cell."""
    if text == "(absent)":
        return ABSENT
    text = substitute(context, text)
    if text == "null":
        return None
    if field in JSON_FIELDS:
        return json.loads(text)
    return text


def matches(context, actual, expected_text):
    """Does a value read from the daemon match a table cell? Strings compare as written
    (a cell in double quotes is a JSON string; a cell ending in "…" matches every string that
    starts with what comes before it, e.g. an error followed by the engine's quoted last words:
    'engine exited with status 3: "…'), null is None, the rest is JSON."""
    text = substitute(context, expected_text)
    if actual is None:
        return text == "null"
    if isinstance(actual, str) and text.endswith("…"):
        return actual.startswith(text[:-1])
    if isinstance(actual, str):
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            return actual == json.loads(text)
        return actual == text
    try:
        expected = json.loads(text)
    except ValueError:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, tuple):
        actual = list(actual)
    return actual == expected


def dotted(obj, key):
    """obj["a"]["b"] for key "a.b"; ABSENT if any part is missing."""
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return ABSENT
        obj = obj[part]
    return obj


def check_table(context, actual, rows, what, key_column=0, value_column=1, contains_for_lists=False):
    """Every row of a table: actual[key] matches value. Returns nothing, raises on the first
    mismatch with the whole actual object in the message."""
    problems = []
    for row in rows:
        key, expected = row[key_column], row[value_column]
        got = dotted(actual, key)
        if got is ABSENT:
            problems.append(f"{key}: missing (expected {expected!r})")
            continue
        if contains_for_lists and isinstance(got, list) and not expected.startswith("["):
            if substitute(context, expected) not in got:
                problems.append(f"{key}: {substitute(context, expected)!r} not among {got!r}")
            continue
        if not matches(context, got, expected):
            problems.append(f"{key}: expected {substitute(context, expected)!r}, got {got!r}")
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems) + f"\nall of it: {actual!r}")
