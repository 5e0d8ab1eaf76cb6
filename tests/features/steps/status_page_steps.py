# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: GET /events read as an orchestrator would (a plain HTTP client, the stream parsed by the
# event-stream client of tests/test-status-page.py), and GET / checked as a browser would apply
# its headers. The page in a real Chromium is tests/test-status-page.py's.

import importlib.util
import os
import re
import sys
import time

from behave import step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
import observe  # noqa: E402

_spec = importlib.util.spec_from_file_location("test_status_page",
                                               os.path.join(harness.TOP, "tests", "test-status-page.py"))
_test_status_page = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_test_status_page)
EventStream = _test_status_page.EventStream


def open_stream(context, token):
    s = EventStream(observe.daemon(context).port, token=token)
    context.add_cleanup(s.close)
    context.s.stream = s
    context.s.stream_events = []
    return s


def stream(context):
    s = getattr(context.s, "stream", None)
    assert s is not None, "no event stream was opened"
    return s


def next_event(context, timeout):
    e = stream(context).next(timeout=timeout)
    context.s.stream_events.append(e)
    return e


@step("I open the event stream")
def step_open(context):
    open_stream(context, getattr(observe.daemon(context), "token", None))


@step("I open the event stream without a token")
def step_open_no_token(context):
    open_stream(context, None)


@step('I open the event stream with the token "{token}"')
def step_open_token(context, token):
    open_stream(context, token)


@step("the event stream is refused with {code:d} {errcode:Code}")
def step_refused(context, code, errcode):
    s = stream(context)
    assert s.status == code, s.status
    assert s.body()["code"] == errcode


@step("the first event is a snapshot")
def step_snapshot(context):
    s = stream(context)
    assert s.status == 200, s.status
    assert s.headers.get("content-type") == "text/event-stream", s.headers
    e = next_event(context, 5)
    assert e["event"] == "snapshot" and "retry" in e and "id" in e, e
    return e


@step('the first event is a snapshot in which pool "{pool}" is ready')
def step_snapshot_ready(context, pool):
    e = step_snapshot(context)
    pools = {p["pool_id"]: p for p in e["data"]["pools"]}
    assert pool in pools and pools[pool]["ready"] is True, pools


def matches(data, pool, condition):
    if data.get("pool_id") != pool:
        return False
    if condition == "is ready":
        return data["ready"] is True and data["state"] == "ready"
    if condition == "is not ready":
        return data["ready"] is False
    m = re.fullmatch(r"has (\w+) (\d+)(?: and a (\w+))?", condition)
    assert m, f"unknown condition: {condition}"
    return data.get(m.group(1)) == int(m.group(2)) and (not m.group(3) or bool(data.get(m.group(3))))


@step('within {t:g} second the event stream has a "{name}" event in which pool "{pool}" {condition}')
@step('within {t:g} seconds the event stream has a "{name}" event in which pool "{pool}" {condition}')
def step_within(context, t, name, pool, condition):
    deadline = time.monotonic() + t
    seen = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {name} event with {pool} {condition} within {t} s; saw {seen}"
        try:
            e = next_event(context, left)
        except TimeoutError:
            continue
        seen.append((e.get("event"), e.get("data", {}).get("state")))
        if e.get("event") == name and matches(e["data"], pool, condition):
            return


@step("the event ids of the stream increase")
def step_ids(context):
    ids = [int(e["id"]) for e in context.s.stream_events]
    assert ids == sorted(set(ids)), ids


@step('the Content-Security-Policy starts with "{prefix}" and allows inline code only by hash')
def step_csp_hash(context, prefix):
    csp = context.s.response.headers.get("Content-Security-Policy") or ""
    assert csp.startswith(prefix), csp
    assert "unsafe" not in csp, csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp), csp
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+'", csp), csp


@step("the Content-Security-Policy allows connections to the daemon only")
def step_csp_connect(context):
    csp = context.s.response.headers.get("Content-Security-Policy") or ""
    assert "connect-src 'self'" in csp, csp
    assert "frame-ancestors 'none'" in csp, csp


@step("the page has no external assets, reads /events and is smaller than {n:d} KiB")
def step_page_small(context, n):
    raw = context.s.response.raw
    assert len(raw) < n * 1024, len(raw)
    html = raw.decode()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html), "an external asset"
    assert "/events" in html
