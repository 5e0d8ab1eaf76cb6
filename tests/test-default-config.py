#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# units/pool-managerd.conf, the commented configuration the Debian package installs as
# /etc/pool-managerd/pool-managerd.conf, against the reference, man/pool-managerd.conf.5.scd:
# every key of the reference is in the file, in its section, commented out with the default the
# reference gives, and the file has no key the reference does not know. The one active line,
# EngineUser=pool-engine, names the user the package's sysusers.d file creates.
# Prints TAP-style lines.
#
#   test-default-config.py CONF MANPAGE SYSUSERS

import re
import sys

n = failed = 0


def check(ok, what):
    global n, failed
    n += 1
    failed += 0 if ok else 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}")


def man_keys(path):
    """{(section, key): the text of its entry} from the reference's "[S] SECTION OPTIONS"."""
    keys, section, key = {}, None, None
    for line in open(path):
        m = re.match(r"^# \[(\w+)\] SECTION OPTIONS", line)
        if m:
            section, key = m.group(1), None
            continue
        if line.startswith("# "):
            section = key = None
            continue
        m = re.match(r"^\*(\w+)=\*\s*$", line)
        if section and m:
            key = (section, m.group(1))
            keys[key] = ""
            continue
        if key and line.startswith("\t"):
            keys[key] += " " + line.strip()
        elif key and line.strip():
            key = None
    return keys


def man_default(text):
    """The default an entry gives: "Defaults to X", "defaults to X" or "default X"."""
    if re.search(r"Unset by default|Empty \(the default\)|Defaults to the hostname", text):
        return ""
    m = re.search(r"Defaults to ([^ ,;]+)", text) or re.search(r"[Dd]efaults? (?:to )?([^ ,;]+)", text)
    return m.group(1).strip("*_\".:") if m else None


def conf_keys(path):
    """{(section, key): (value, commented)}."""
    keys, section = {}, None
    for line in open(path):
        line = line.rstrip("\n")
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^(#?)([A-Z]\w*)=(.*)$", line)
        if m:
            keys[(section, m.group(2))] = (m.group(3), m.group(1) == "#")
    return keys


conf_path, man_path, sysusers_path = sys.argv[1:4]
man = man_keys(man_path)
conf = conf_keys(conf_path)

check(len(man) >= 30, f"the reference documents {len(man)} keys")
for (section, key), text in sorted(man.items()):
    name = f"[{section}] {key}="
    if (section, key) not in conf:
        check(False, f"{name} is in the file")
        continue
    value, commented = conf[(section, key)]
    if key == "EngineUser":
        continue        # set, checked below
    if not commented:
        check(False, f"{name} is commented out")
        continue
    default = man_default(text)
    if key == "ApiTokenFile":
        check(value == "", f"{name} has no default and is shown empty")
    else:
        check(default is not None and value == default,
              f"{name} shows the reference's default {default!r} (file: {value!r})")
for (section, key) in sorted(set(conf) - set(man)):
    check(False, f"[{section}] {key}= in the file is a key the reference knows")

value, commented = conf.get(("Manager", "EngineUser"), (None, True))
sysusers = open(sysusers_path).read()
check(not commented and value and re.search(rf"^u {re.escape(value)} ", sysusers, re.M),
      f"EngineUser={value} is set, a user that sysusers.d creates")

print(f"1..{n}")
sys.exit(1 if failed else 0)
