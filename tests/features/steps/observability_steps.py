# SPDX-License-Identifier: GPL-3.0-or-later
#
# Steps: GET /metrics read as Prometheus would (the text format parsed into samples, checked by
# Debian's promtool where it is installed), and the daemon's structured journal entries as
# journalctl -o json gives them (pool fields, correlation ids, the token never logged).
# The observations follow tests/test-metrics.py and tests/test-logging.py.

import importlib.util
import os
import re
import shutil
import subprocess
import sys

from behave import register_type, step

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

import harness  # noqa: E402
import observe  # noqa: E402
from checks import substitute  # noqa: E402
from pools import new_run  # noqa: E402


# Message ids of the daemon's entries (pool-managerd(8)).
MESSAGE_IDS = {
    "start": "b27c621a55f7417f8338f85e48bdd652",
    "ready": "0c1727b0c5214e3f8210c1af028737e1",
    "failure": "11fb3b6e511549e6bfb033c32882c031",
    "crash": harness.MESSAGE_ENGINE_CRASHED,
}


def _sample(text):
    return text


# A sample as written in a feature: name{label="value",...}, no spaces.
_sample.pattern = r'[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^ ]*\})?'
register_type(MetricSample=_sample)


# The exposition is parsed as tests/test-metrics.py does it (name, labels, value per sample).
_spec = importlib.util.spec_from_file_location("test_metrics", os.path.join(harness.TOP, "tests", "test-metrics.py"))
_test_metrics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_test_metrics)
parse = _test_metrics.parse
LABEL = _test_metrics.LABEL
CONTENT_TYPE = _test_metrics.CONTENT_TYPE


def sample_key(text):
    m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?', text)
    assert m, f"not a sample: {text!r}"
    return m.group(1), frozenset(LABEL.findall(m.group(2) or ""))


def auth(context):
    token = context.h.daemon.token if context.h.daemon else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def scrape(context):
    d = observe.daemon(context)
    r = d.request("GET", "/metrics", headers=auth(context))
    assert r.status == 200, r
    assert r.headers.get("Content-Type") == CONTENT_TYPE, dict(r.headers)
    context.s.metrics_text = r.raw.decode()
    context.s.metrics, context.s.metric_types = parse(context.s.metrics_text)
    return context.s.metrics


def expected_value(text):
    return float(substitute_value(text))


def substitute_value(text):
    GiB = 1 << 30
    m = re.fullmatch(r'([0-9.]+) GiB', text)
    return str(float(m.group(1)) * GiB) if m else text


def mismatches(samples, rows):
    problems = []
    for sample, want in rows:
        got = samples.get(sample_key(sample))
        if want == "(absent)":
            if got is not None:
                problems.append(f"{sample}: expected absent, got {got:g}")
            continue
        if want.startswith(">"):
            if got is None or not got > expected_value(want[1:].strip()):
                problems.append(f"{sample}: expected {want}, got {got}")
            continue
        if got is None or got != expected_value(want):
            problems.append(f"{sample}: expected {want}, got {got}")
    return problems


def metric_rows(context):
    return [(row["sample"], row["value"]) for row in context.table]


def pool_lines(context, rows):
    """The exposition's lines of the families named in rows, for a message."""
    names = {sample_key(s)[0] for s, _ in rows}
    return "\n".join(l for l in context.s.metrics_text.splitlines()
                     if any(l.startswith(n) for n in names))


# ---- /metrics ----

@step("I scrape /metrics")
def step_scrape(context):
    scrape(context)


@step("the scrape shows")
def step_scrape_shows(context):
    rows = metric_rows(context)
    problems = mismatches(scrape(context), rows)
    assert not problems, "\n  ".join(["/metrics:"] + problems) + "\n" + pool_lines(context, rows)


@step("within {t:g} seconds the scrape shows")
def step_scrape_shows_within(context, t):
    rows = metric_rows(context)
    seen = []

    def ok():
        seen[:] = mismatches(scrape(context), rows)
        return not seen
    assert harness.wait_for(ok, timeout=t, interval=0.1), \
        "\n  ".join([f"/metrics after {t} s:"] + seen) + "\n" + pool_lines(context, rows)


@step('the daemon has read the /metrics of pool "{pool}"')
def step_engine_metrics_read(context, pool):
    # The daemon says so at debug level, once per change of what it read (pool.c).
    d = observe.daemon(context)
    said = (f'Pool "{pool}": no engine load from', f'Pool "{pool}": engine load read from')
    assert harness.wait_for(lambda: any(s in d.log() for s in said), timeout=10), d.log()[-3000:]


@step("the sample {sample:MetricSample} is {value}")
def step_sample(context, sample, value):
    problems = mismatches(scrape(context), [(sample, value)])
    assert not problems, problems


@step("every family has HELP and TYPE lines, with the types")
def step_families(context):
    scrape(context)
    text = context.s.metrics_text
    problems = []
    for row in context.table:
        name, kind = "pool_managerd_" + row["family"], row["type"]
        if context.s.metric_types.get(name) != kind:
            problems.append(f"{name}: TYPE {context.s.metric_types.get(name)}, expected {kind}")
        if not re.search(r"^# HELP " + re.escape(name) + r" \S", text, re.M):
            problems.append(f"{name}: no HELP line")
    # Every TYPE has its HELP, and every sample belongs to a typed family.
    for name in context.s.metric_types:
        if f"# HELP {name} " not in text:
            problems.append(f"{name}: TYPE without HELP")
    for name, _ in context.s.metrics:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in context.s.metric_types and family not in context.s.metric_types:
            problems.append(f"{name}: sample of no typed family")
    assert not problems, "\n  ".join(["/metrics:"] + problems)


@step("the build_info sample carries the version GET /health reports")
def step_build_info(context):
    version = observe.daemon(context).request("GET", "/health").json["version"]
    problems = mismatches(scrape(context), [(f'pool_managerd_build_info{{version="{version}"}}', "1")])
    assert not problems, problems


@step("every histogram of pool \"{pool}\" has cumulative buckets up to +Inf equal to its count")
def step_histograms(context, pool):
    samples = scrape(context)
    problems = []
    for family, kind in context.s.metric_types.items():
        if kind != "histogram":
            continue
        count = samples.get((family + "_count", frozenset({("pool_id", pool)})))
        if count is None:
            continue
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                          if k[0] == family + "_bucket" and dict(k[1]).get("pool_id") == pool))
        values = [v for _, v in buckets]
        if values != sorted(values):
            problems.append(f"{family}: buckets not cumulative: {buckets}")
        if not buckets or buckets[-1][0] != float("inf") or buckets[-1][1] != count:
            problems.append(f"{family}: +Inf bucket {buckets[-1:]} is not the count {count}")
    assert not problems, problems


@step("promtool check metrics passes on the scrape")
def step_promtool(context):
    if not shutil.which("promtool"):
        context.scenario.skip("promtool is not installed (Debian: prometheus)")
        return
    scrape(context)
    p = subprocess.run(["promtool", "check", "metrics"], input=context.s.metrics_text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


# ---- requests with headers ----

@step('I {method:Method} {path:Path} with the header "{name}" set to "{value}"')
def step_request_header(context, method, path, name, value):
    context.s.response = observe.daemon(context).request(method, path, headers={name: value, **auth(context)})


@step('I {method:Method} {path:Path} with an X-Correlation-Id of {n:d} characters')
def step_request_long_id(context, method, path, n):
    context.s.response = observe.daemon(context).request(method, path,
                                                       headers={"X-Correlation-Id": "x" * n, **auth(context)})


@step('the response\'s X-Correlation-Id is {n:d} hex digits')
def step_generated_id(context, n):
    got = context.s.response.headers.get("X-Correlation-Id") or ""
    assert re.fullmatch(f"[0-9a-f]{{{n}}}", got), repr(got)
    context.s.correlation_ids = getattr(context.s, "correlation_ids", []) + [got]


@step("the X-Correlation-Ids of the answers differ")
def step_ids_differ(context):
    ids = context.s.correlation_ids
    assert len(ids) >= 2 and len(set(ids)) == len(ids), ids


@step('pool "{pool}" is preloaded over HTTP with the X-Correlation-Id "{cid}" and')
def step_preload_correlated(context, pool, cid):
    run = new_run(context, pool, "", [(row["field"], row["value"]) for row in context.table])
    context.s.response = observe.daemon(context).request(
        "POST", f"/pools/{pool}/preload", {"prepared": run.prepared}, timeout=180,
        headers={"X-Correlation-Id": cid, **auth(context)})


# ---- the journal ----

def daemon_entries(context, *matches):
    return [e for e in observe.daemon(context).log_entries(*matches)
            if e.get("SYSLOG_IDENTIFIER") == "pool-managerd"]


def entry_problems(entry, rows):
    problems = []
    for field, want in rows:
        got = entry.get(field)
        if want == "(absent)":
            ok = got is None
        elif want == "(present)":
            ok = got is not None
        elif want == "(not empty)":
            ok = bool(got)
        elif want.startswith("/") and want.endswith("/"):
            ok = got is not None and re.fullmatch(want[1:-1], got) is not None
        else:
            ok = got == want
        if not ok:
            problems.append(f"{field}: expected {want}, got {got!r}")
    return problems


def field_rows(context):
    return [(row["field"], substitute(context, row["value"])) for row in context.table]


@step('every entry of the daemon\'s journal about pool "{pool}" has')
def step_every_entry(context, pool):
    rows = field_rows(context)
    # The pool's entries are there once the ready entry is.
    assert harness.wait_for(lambda: daemon_entries(context, f"POOL_ID={pool}",
                                                   f"MESSAGE_ID={MESSAGE_IDS['ready']}"), timeout=15), \
        f"no ready entry of pool {pool}"
    entries = daemon_entries(context, f"POOL_ID={pool}")
    assert len(entries) >= 2, entries
    problems = [f"{e.get('MESSAGE')!r}: {p}" for e in entries for p in entry_problems(e, rows)]
    assert not problems, "\n  ".join([f"{len(entries)} entries of {pool}:"] + problems)


def wait_kind_entry(context, kind, pool, rows, t=20):
    found = []

    def ok():
        found[:] = [e for e in daemon_entries(context, f"POOL_ID={pool}", f"MESSAGE_ID={MESSAGE_IDS[kind]}")
                    if not entry_problems(e, rows)]
        return bool(found)
    if not harness.wait_for(ok, timeout=t, interval=0.1):
        got = daemon_entries(context, f"POOL_ID={pool}", f"MESSAGE_ID={MESSAGE_IDS[kind]}")
        raise AssertionError(f"no {kind} entry of pool {pool} with {rows}; the {kind} entries:\n  " +
                             "\n  ".join(f"{e.get('MESSAGE')!r}: {entry_problems(e, rows)}" for e in got))
    return found


@step('the daemon\'s journal has a {kind:w} entry of pool "{pool}" with')
def step_kind_entry(context, kind, pool):
    wait_kind_entry(context, kind, pool, field_rows(context))


@step('journalctl CORRELATION_ID={cid} finds the {kinds} entries of pool "{pool}", and only entries of that request')
def step_by_correlation(context, cid, kinds, pool):
    entries = daemon_entries(context, f"CORRELATION_ID={cid}")
    ids = {e.get("MESSAGE_ID") for e in entries}
    for kind in (k.strip() for k in kinds.split(" and ")):
        assert MESSAGE_IDS[kind] in ids, f"no {kind} entry among {[e.get('MESSAGE') for e in entries]}"
    # Every one is about the pool, or the HTTP request's own debug line.
    stray = [e.get("MESSAGE") for e in entries if e.get("POOL_ID") != pool and "HTTP" not in e.get("MESSAGE", "")]
    assert not stray, stray


@step('the unit of pool "{pool}" has LogExtraFields "{value}"')
def step_log_extra_fields(context, pool, value):
    got = harness.unit_property(harness.engine_unit(pool), "LogExtraFields")
    assert got == value, repr(got)


@step('I list the pools once with the token "{token}" and once with "{wrong}"')
def step_two_tokens(context, token, wrong):
    d = observe.daemon(context)
    ok = d.request("GET", "/pools", headers={"Authorization": f"Bearer {token}"})
    bad = d.request("GET", "/pools", headers={"Authorization": f"Bearer {wrong}"})
    assert ok.status == 200 and bad.status == 401, (ok, bad)


@step('the daemon logged the refused request at debug level')
def step_logged_refusal(context):
    d = observe.daemon(context)
    assert harness.wait_for(lambda: any("wrong" in e.get("MESSAGE", "") and "Authorization" in e.get("MESSAGE", "")
                                        for e in daemon_entries(context)), timeout=10), d.log()[-2000:]


@step('no journal entry contains "{token}" or a Bearer credential')
def step_token_not_logged(context, token):
    out = subprocess.run(["journalctl", "--no-pager", "-o", "json"], capture_output=True, text=True,
                         errors="backslashreplace").stdout
    assert out, "the journal is empty"
    assert token not in out, [l[:300] for l in out.splitlines() if token in l][:3]
    m = re.search(r"Bearer \S", out)
    assert m is None, out[max(0, m.start() - 200):m.end() + 200]
