# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: the daemon, HTTP requests and their answers, the pool status.

import json
import os
import re
import sys
import time

from behave import register_type, step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
from checks import check_table, matches, substitute  # noqa: E402
from pools import new_run  # noqa: E402


def _method(text):
    return text


_method.pattern = r"GET|POST|DELETE|PUT"


def _path(text):
    return text


_path.pattern = r"/\S*"

def _code(text):
    return text


_code.pattern = r"[A-Z][A-Z_]+"

register_type(Method=_method, Path=_path, Code=_code)


def daemon(context):
    if not context.h.daemon:
        raise harness.HarnessError("no daemon: the scenario must start one first")
    return context.h.daemon


def settings_from_table(table):
    settings = {}
    for row in table:
        settings[row["key"]] = None if row["value"] == "(unset)" else row["value"]
    return settings


# ---- the daemon ----

@step("a running pool-managerd")
def step_running(context):
    d = context.h.ensure_daemon()
    assert d.running(), d.log()[-2000:]


@step("a freshly started pool-managerd")
def step_fresh(context):
    d = context.h.ensure_daemon(fresh=True)
    assert d.running(), d.log()[-2000:]


@step("a running pool-managerd configured with")
def step_running_configured(context):
    d = context.h.ensure_daemon(settings_from_table(context.table))
    assert d.running(), d.log()[-2000:]
    with open(d.config) as f:
        config = f.read()
    for k, v in settings_from_table(context.table).items():
        if v is None:
            assert f"\n{k}=" not in config, config
        else:
            assert f"\n{k}={v}\n" in config, config


@step('a running pool-managerd with the API token "{token}"')
def step_running_token(context, token):
    d = context.h.ensure_daemon(env={"LLORCH_API_TOKEN": token})
    d.token = token
    assert d.running(), d.log()[-2000:]


@step("a freshly started pool-managerd whose RuntimeDirectory does not exist yet")
def step_fresh_no_runtime_dir(context):
    rt = os.path.join(context.s.dir, "not-yet", "run")
    assert not os.path.exists(os.path.dirname(rt))
    d = context.h.ensure_daemon({"RuntimeDirectory": rt}, fresh=True)
    assert d.runtime_dir == rt


@step('its runtime directory has the subdirectories "{names}"')
def step_runtime_subdirs(context, names):
    rt = daemon(context).runtime_dir
    for name in (n.strip() for n in names.split(",")):
        assert os.path.isdir(os.path.join(rt, name)), f"{rt}/{name} missing: {os.listdir(rt)}"


@step("the daemon has no pools")
def step_no_pools(context):
    d = daemon(context)
    assert d.pools() == [], d.pools()
    assert context.h.bus.manager_properties()["PoolCount"] == 0


@step('the daemon has no pool "{pool}"')
def step_no_pool(context, pool):
    d = daemon(context)
    r = d.request("GET", f"/pools/{pool}/status")
    assert r.status == 404, r
    assert pool not in [p["pool_id"] for p in d.pools()]
    res = context.h.bus.manager_call("GetPool", pool)
    assert res.error_name == "org.llorch.PoolManager1.Error.NoSuchPool", res


@step('GET /pools lists the pools "{pools}" as ready')
def step_pools_ready(context, pools):
    listed = {p["pool_id"]: p for p in daemon(context).pools()}
    for pool in (p.strip() for p in pools.split(",")):
        assert pool in listed, f"{pool} not in {sorted(listed)}"
        assert listed[pool]["ready"] is True and listed[pool]["state"] == "ready", listed[pool]


@step('GET /pools lists pool "{pool}" exactly once')
def step_pools_once(context, pool):
    ids = [p["pool_id"] for p in daemon(context).pools()]
    assert ids.count(pool) == 1, ids
    assert ids == sorted(ids), f"not sorted by id: {ids}"


@step('the daemon\'s journal has a line starting with "{text}"')
def step_daemon_journal_line(context, text):
    d = daemon(context)
    found = harness.wait_for(lambda: any(l.startswith(text) for l in d.log().splitlines()), timeout=5)
    assert found, d.log()[-3000:]


@step('the daemon\'s journal has an entry "{text}" with POOL_ID "{pool}"')
def step_daemon_journal_entry(context, text, pool):
    text = text.replace('\\"', '"')
    d = daemon(context)

    def found():
        return [e for e in d.log_entries(f"POOL_ID={pool}") if text in e.get("MESSAGE", "")]
    entries = harness.wait_for(found, timeout=5)
    assert entries, d.log()[-3000:]
    assert all(e.get("MESSAGE_ID") for e in entries), entries


@step('the daemon\'s journal has an entry with POOL_ID "{pool}" and ERROR "{error}"')
def step_daemon_journal_error(context, pool, error):
    d = daemon(context)

    def found():
        return [e for e in d.log_entries(f"POOL_ID={pool}") if e.get("ERROR") == error]
    entries = harness.wait_for(found, timeout=5)
    assert entries, [e.get("ERROR") for e in d.log_entries(f"POOL_ID={pool}")]
    assert entries[0].get("PRIORITY") == "3", entries[0]


@step('the configuration reference gives HealthTimeout= the default "{value}"')
def step_man_default(context, value):
    page = os.path.join(harness.TOP, "man", "pool-managerd.conf.5.scd")
    with open(page) as f:
        text = f.read()
    m = re.search(r"^\*HealthTimeout=\*\n((?:\t.*\n)+)", text, re.M)
    assert m, "no HealthTimeout= entry in " + page
    body = " ".join(m.group(1).split())
    assert f"Defaults to {value}." in body, body


# ---- HTTP requests ----

def do_request(context, method, path, body=None, token=None, headers=None):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    context.s.response = daemon(context).request(method, path, body=body, headers=h)
    return context.s.response


@step("I {method:Method} {path:Path} with the token \"{token}\"")
def step_request_token(context, method, path, token):
    do_request(context, method, path, token=token)


@step("I {method:Method} {path:Path} with the body")
def step_request_body(context, method, path):
    do_request(context, method, path, body=context.text)


@step('I POST {path:Path} with the PreparedEngine of pool "{pool}"')
def step_request_prepared(context, path, pool):
    run = new_run(context, pool)
    do_request(context, "POST", path, body={"prepared": run.prepared})


@step("I {method:Method} {path:Path} {n:d} times")
def step_request_times(context, method, path, n):
    for _ in range(n):
        r = do_request(context, method, path)
        assert r.status == 200, r


@step("I {method:Method} {path:Path}")
def step_request(context, method, path):
    do_request(context, method, path)


# ---- answers ----

def response(context):
    r = context.s.response
    assert r is not None, "no request was made"
    return r


@step("the response status is {code:d}")
def step_status(context, code):
    r = response(context)
    assert r.status == code, r


# The documented error vocabulary (org.llorch.PoolManager1(5), ERRORS): code -> HTTP status.
STATUS_OF_CODE = {
    "INVALID_REQUEST": 400, "INVALID_POOL_ID": 400, "INVALID_PREPARED_ENGINE": 422,
    "BINARY_NOT_FOUND": 422, "BINARY_NOT_EXECUTABLE": 422, "NO_SUCH_POOL": 404, "NO_SUCH_DEVICE": 404,
    "NOT_RUNNING": 409, "ALREADY_RUNNING": 409, "BUSY": 409, "DRAINING": 409, "ORPHAN_UNIT": 409,
    "PORT_IN_USE": 409, "HANDOFF_IN_USE": 409, "GPU_REQUIRED": 409, "INSUFFICIENT_VRAM": 409,
    "DEVICE_LOST": 409, "CANCELED": 409, "RELOAD_ABORTED": 409, "ENGINE_FAILED": 502,
    "HEALTH_TIMEOUT": 504, "RELOAD_FAILED": 502, "ACCESS_DENIED": 403, "STARTING": 503,
    "INVALID_CONFIGURATION": 422, "FLEET_OFF": 404, "FLEET_UNAVAILABLE": 503, "INTERNAL": 500,
    "UNAUTHORIZED": 401, "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405, "REQUEST_TIMEOUT": 408,
    "BODY_TOO_LARGE": 413, "TOO_MANY_CONNECTIONS": 503,
}


def assert_error_body(r, code, message=None, errcode=None):
    """An error answer: {"error": message, "code": CODE}, the status the code's."""
    assert r.status == code, r
    assert isinstance(r.json, dict) and list(r.json) == ["error", "code"], r
    assert STATUS_OF_CODE.get(r.json["code"]) == code, r
    if message is not None:
        assert r.json["error"] == message, r
    if errcode is not None:
        assert r.json["code"] == errcode, r


@step('the response is {code:d} with the error "{message}"')
def step_error(context, code, message):
    assert_error_body(response(context), code, message)


@step('the response is {code:d} {errcode:Code} with the error "{message}"')
def step_error_code(context, code, errcode, message):
    assert_error_body(response(context), code, message, errcode)


@step("the response is {code:d} with the body {body}")
def step_body(context, code, body):
    r = response(context)
    assert r.status == code, r
    assert r.json == json.loads(body), r


@step('the response has the header "{name}" set to "{value}"')
def step_header(context, name, value):
    r = response(context)
    assert r.headers.get(name) == value, dict(r.headers)


@step("the response body is []")
def step_body_empty_list(context):
    r = response(context)
    assert r.json == [], r


@step('the response field "{field}" is what "pool-managerd --version" prints')
def step_field_version(context, field):
    out = harness.run(harness.POOL_MANAGERD, "--version", check=True).stdout
    got = response(context).json[field]
    assert got and got in out.split(), f"{got!r} not in {out!r}"


@step('the response field "{field}" equals the manager\'s D-Bus property "{prop}"')
def step_field_dbus(context, field, prop):
    got = response(context).json[field]
    assert got == context.h.bus.manager_properties()[prop], got


@step('the response field "{field}" starts with "{prefix}"')
def step_field_prefix(context, field, prefix):
    r = response(context)
    prefix = substitute(context, prefix)
    assert isinstance(r.json, dict) and str(r.json.get(field, "")).startswith(prefix), (prefix, r)


@step('the response field "{field}" contains "{text}"')
def step_field_contains(context, field, text):
    r = response(context)
    text = substitute(context, text)
    assert isinstance(r.json, dict) and text in str(r.json.get(field, "")), (text, r)


@step('the response field "{field}" contains the daemon\'s PATH')
def step_field_path(context, field):
    path = daemon(context).env["PATH"]
    r = response(context)
    assert f"PATH={path}: not found" in r.json[field], r


@step('the response field "{field}" is {value}')
def step_field(context, field, value):
    r = response(context)
    assert isinstance(r.json, dict) and field in r.json, r
    assert matches(context, r.json[field], value), f"{field}: {r.json[field]!r} is not {value}"


@step("the response fields are")
def step_fields(context):
    r = response(context)
    assert isinstance(r.json, dict), r
    check_table(context, r.json, [(row["field"], row["value"]) for row in context.table], "response")


@step('the response has at least the fields "{fields}"')
def step_some_fields(context, fields):
    r = response(context)
    missing = [f.strip() for f in fields.split(",") if f.strip() not in r.json]
    assert not missing, f"missing {missing} in {sorted(r.json)}"


@step('the response has exactly the fields "{fields}"')
def step_exact_fields(context, fields):
    r = response(context)
    assert sorted(r.json) == sorted(f.strip() for f in fields.split(",")), sorted(r.json)


@step("the response took between {lo:g} and {hi:g} seconds")
def step_took_between(context, lo, hi):
    r = response(context)
    assert lo <= r.elapsed <= hi, f"took {r.elapsed:.3f} s"


@step("the response took less than {hi:g} seconds")
def step_took_less(context, hi):
    r = response(context)
    assert r.elapsed < hi, f"took {r.elapsed:.3f} s"


@step("the response is the same as the answer to GET {path:Path}")
def step_same_as_get(context, path):
    r = response(context)
    g = daemon(context).request("GET", path)
    assert g.status == r.status and g.json == r.json, (r, g)


@step('the engine\'s pid in the response is the MainPID of unit "{unit}"')
def step_pid_is_mainpid(context, unit):
    r = response(context)
    assert r.json["pid"] == int(harness.unit_property(unit, "MainPID")) > 0, r


# ---- pool status ----

def status_rows(context):
    return [(row["field"], row["value"]) for row in context.table]


def check_status(context, pool):
    s = daemon(context).status(pool)
    assert s is not None, f"pool {pool} not found"
    check_table(context, s, status_rows(context), f"status of {pool}")


@step('the status of pool "{pool}" shows')
def step_status_shows(context, pool):
    check_status(context, pool)


@step('within {n:d} seconds the status of pool "{pool}" shows')
def step_status_within(context, n, pool):
    def ok():
        try:
            check_status(context, pool)
            return True
        except AssertionError:
            return False
    if not harness.wait_for(ok, timeout=n):
        check_status(context, pool)


@step('after {t:g} seconds the status of pool "{pool}" shows')
def step_status_after(context, t, pool):
    time.sleep(t)
    check_status(context, pool)


@step('the last heartbeat of pool "{pool}" lies between the request and the answer, after the engine turned healthy')
def step_heartbeat(context, pool):
    run = context.s.run_of(pool)
    beat = daemon(context).status(pool)["last_heartbeat_ms"] / 1000
    ready = run.ready_at()
    assert ready is not None, "the engine never turned healthy"
    assert run.sent_at - 0.001 <= beat <= run.response.answered_at + 0.001, (run.sent_at, beat, run.response.answered_at)
    assert beat >= ready - 0.001, f"heartbeat {beat} before the engine was healthy at {ready}"
