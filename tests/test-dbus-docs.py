#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The D-Bus API reference must not drift from the code. Inside tests/sandbox, starts the real
# daemon as a Type=notify user unit with one fake-engine pool, builds the interface listing of
# the man page's INTERFACES section from the daemon's own introspection data, and fails with a
# diff when the two differ. Then checks what the page promises about behaviour: named errors,
# PropertiesChanged and InterfacesAdded, the pool path encoding, replies that come only when
# the work is done.
#
# Usage: test-dbus-docs.py MAN_PAGE (the .scd source). Needs $POOL_MANAGERD and $FAKE_ENGINE.
# Prints TAP lines; exits 77 outside the sandbox. Standard library only: introspection and
# properties through `busctl --user`, error names through `dbus-send` (busctl does not print
# them).

import difflib
import json
import os
import queue
import re
import shutil
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET

BUS_NAME = 'org.llorch.PoolManager1'
MANAGER_PATH = '/org/llorch/PoolManager1'
POOL_PREFIX = MANAGER_PATH + '/pool'
MANAGER_IFACE = 'org.llorch.PoolManager1.Manager'
POOL_IFACE = 'org.llorch.PoolManager1.Pool'
ERROR = 'org.llorch.PoolManager1.Error.'
DAEMON_UNIT = 'pool-managerd-docs-test.service'

# EmitsChangedSignal annotation -> listing flag; no annotation means "true".
EMITS_FLAGS = {'true': 'emits-change', 'const': 'const', 'invalidates': 'emits-invalidation',
               'false': 'emits-nothing'}
ACCESS_FLAGS = {'read': '', 'readwrite': ' writable', 'write': ' write-only'}
# Other annotations sd-bus writes, as words appended to the member's line.
ANNOTATION_WORDS = {
        ('org.freedesktop.DBus.Deprecated', 'true'): 'deprecated',
        ('org.freedesktop.DBus.Method.NoReply', 'true'): 'no-reply',
        ('org.freedesktop.systemd1.Privileged', 'true'): 'privileged',
        ('org.freedesktop.systemd1.Explicit', 'true'): 'explicit',
}


class Tap:
        def __init__(self):
                self.n = 0
                self.failed = 0

        def check(self, desc, cond, diag=None):
                self.n += 1
                if cond:
                        print(f'ok {self.n} - {desc}', flush=True)
                        return True
                self.failed += 1
                print(f'not ok {self.n} - {desc}', flush=True)
                if diag:
                        for line in str(diag).rstrip('\n').split('\n'):
                                print(f'# {line}', flush=True)
                return False

        def skip(self, desc, why):
                self.n += 1
                print(f'ok {self.n} - {desc} # SKIP {why}', flush=True)


def run(*argv, timeout=60, check=False):
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


def busctl(*args, timeout=60):
        return run('busctl', '--user', *args, timeout=timeout)


def busctl_json(*args, timeout=60):
        """Runs `busctl --user --json=short ARGS`; returns the parsed output, or raises."""
        p = busctl('--json=short', *args, timeout=timeout)
        if p.returncode != 0:
                raise RuntimeError(f'busctl {" ".join(args)}: {p.stderr.strip()}')
        if not p.stdout.strip():        # an empty reply prints nothing
                return {'type': '', 'data': []}
        return json.loads(p.stdout)


def get_property(path, iface, name):
        return busctl_json('get-property', BUS_NAME, path, iface, name)['data']


def call(path, iface, method, signature='', *args, timeout=60):
        """A method call that must succeed; returns the reply's arguments."""
        return busctl_json(f'--timeout={timeout}', 'call', BUS_NAME, path, iface, method,
                           *([signature] + [str(a) for a in args] if signature else []),
                           timeout=timeout + 5)['data']


def call_error(path, iface, method, *args):
        """A method call through dbus-send; returns (error name, message), or (None, reply) on
        success. Arguments are dbus-send's TYPE:VALUE strings."""
        p = run('dbus-send', '--session', '--print-reply', '--reply-timeout=30000',
                f'--dest={BUS_NAME}', path, f'{iface}.{method}', *args)
        if p.returncode == 0:
                return None, p.stdout
        m = re.search(r'^Error ([A-Za-z0-9_.]+): (.*)', p.stderr, re.M | re.S)
        if not m:
                raise RuntimeError(f'dbus-send {method}: {p.stderr.strip()}')
        return m.group(1), m.group(2).strip()


def bus_path_encode(prefix, s):
        """sd_bus_path_encode(): bytes other than [A-Za-z0-9], and a leading digit, become _xx."""
        if not s:
                return prefix + '/_'
        out = []
        for i, b in enumerate(s.encode()):
                c = chr(b)
                if (c.isascii() and c.isalpha()) or (i > 0 and c.isascii() and c.isdigit()):
                        out.append(c)
                else:
                        out.append(f'_{b:02x}')
        return prefix + '/' + ''.join(out)


_ports_handed_out = set()


def free_port():
        # Below the ephemeral range, where the daemon's probe connections take their local
        # ports (see tests/free-port). Never the same port twice: a port is free when chosen,
        # not yet bound, and the daemon's Listen= picked alike to an engine's port would make
        # the preload refused ("port ... is in use").
        while True:
                port = random.randrange(20000, 32000)
                if port in _ports_handed_out:
                        continue
                _ports_handed_out.add(port)
                with socket.socket() as s:
                        try:
                                s.bind(('127.0.0.1', port))
                                return port
                        except OSError:
                                pass


def wait_for(predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
                try:
                        if predicate():
                                return True
                except Exception:
                        pass
                if time.monotonic() >= deadline:
                        return False
                time.sleep(0.05)


def unit_property(unit, prop):
        return run('systemctl', '--user', 'show', '-P', prop, unit).stdout.strip()


# The listing, from both sides.

def normalize(line):
        return ' '.join(line.split())


def listing_from_man(path):
        """The INTERFACES section's listing block: {interface: [member line, ...]}."""
        lines = open(path, encoding='utf-8').read().split('\n')
        in_section = in_block = False
        blocks, block = [], []
        for line in lines:
                if line.startswith('# '):
                        in_section = line.strip() == '# INTERFACES'
                        continue
                if not in_section:
                        continue
                if line.strip() == '```':
                        if in_block:
                                blocks.append(block)
                                block = []
                        in_block = not in_block
                elif in_block:
                        block.append(line)
        # The first block is the format description ("interface NAME"); the listing names
        # real, dotted interfaces.
        for b in blocks:
                first = next((l for l in b if l.strip()), '')
                if re.match(r'\s*interface \S+\.\S+', first):
                        break
        else:
                raise ValueError(f'{path}: no listing block in the INTERFACES section')

        listing, iface = {}, None
        for line in b:
                if not line.strip():
                        continue
                words = line.split()
                if words[0] == 'interface' and len(words) == 2:
                        iface = words[1]
                        if iface in listing:
                                raise ValueError(f'{path}: interface {iface} listed twice')
                        listing[iface] = []
                elif iface and words[0] in ('method', 'property', 'signal'):
                        listing[iface].append(normalize(line))
                else:
                        raise ValueError(f'{path}: cannot parse listing line {line!r}')
        return listing


def format_args(args):
        return ', '.join(f'{a.get("type")} {a.get("name")}' if a.get('name') else a.get('type')
                         for a in args)


def annotation_words(el, skip=()):
        words = []
        for a in el.findall('annotation'):
                name, value = a.get('name'), a.get('value')
                if name in skip:
                        continue
                words.append(ANNOTATION_WORDS.get((name, value), f'[{name}={value}]'))
        return ''.join(' ' + w for w in words)


def member_line(el):
        name = el.get('name')
        if el.tag == 'method':
                args = el.findall('arg')
                ins = [a for a in args if a.get('direction', 'in') == 'in']
                outs = [a for a in args if a.get('direction') == 'out']
                return f'method {name}({format_args(ins)}) -> ({format_args(outs)})' + annotation_words(el)
        if el.tag == 'property':
                emits = 'true'
                for a in el.findall('annotation'):
                        if a.get('name') == 'org.freedesktop.DBus.Property.EmitsChangedSignal':
                                emits = a.get('value')
                flag = EMITS_FLAGS.get(emits, f'[EmitsChangedSignal={emits}]')
                access = ACCESS_FLAGS.get(el.get('access'), f' [access={el.get("access")}]')
                return (f'property {name} {el.get("type")} {flag}{access}' +
                        annotation_words(el, skip=('org.freedesktop.DBus.Property.EmitsChangedSignal',)))
        if el.tag == 'signal':
                return f'signal {name}({format_args(el.findall("arg"))})' + annotation_words(el)
        return None


def introspect(path):
        p = busctl('--xml-interface', 'introspect', BUS_NAME, path)
        if p.returncode != 0:
                raise RuntimeError(f'introspect {path}: {p.stderr.strip()}')
        return ET.fromstring(p.stdout)


def listing_from_xml(root):
        """{interface: [member line, ...]} for the non-standard interfaces of one object."""
        listing = {}
        for iface in root.findall('interface'):
                name = iface.get('name')
                if name.startswith('org.freedesktop.DBus.'):
                        continue
                listing[name] = [normalize(l) for l in map(member_line, iface) if l]
        return listing


def canonical(listing):
        out = []
        for iface in sorted(listing):
                out.append(f'interface {iface}')
                out += ['  ' + l for l in sorted(listing[iface])]
        return out


# The signal monitor.

class Monitor:
        """`busctl --user --json=short monitor BUS_NAME`, read by a thread into a queue."""

        def __init__(self):
                self.proc = subprocess.Popen(['busctl', '--user', '--json=short', 'monitor', BUS_NAME],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.messages = queue.Queue()
                self.started = threading.Event()
                threading.Thread(target=self._read_stdout, daemon=True).start()
                threading.Thread(target=self._read_stderr, daemon=True).start()

        def _read_stdout(self):
                for line in self.proc.stdout:
                        try:
                                self.messages.put(json.loads(line))
                        except ValueError:
                                pass

        def _read_stderr(self):
                for line in self.proc.stderr:
                        if 'Monitoring' in line:
                                self.started.set()

        def wait_for(self, predicate, timeout):
                """The first message seen so far or within timeout for which predicate holds."""
                deadline = time.monotonic() + timeout
                self.seen = getattr(self, 'seen', [])
                for m in self.seen:
                        if predicate(m):
                                return m
                while True:
                        left = deadline - time.monotonic()
                        if left <= 0:
                                return None
                        try:
                                m = self.messages.get(timeout=left)
                        except queue.Empty:
                                return None
                        self.seen.append(m)
                        if predicate(m):
                                return m

        def stop(self):
                self.proc.terminate()
                try:
                        self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                        self.proc.kill()


def is_signal(m, path, iface, member):
        return (m.get('type') == 'signal' and m.get('path') == path and m.get('interface') == iface and
                m.get('member') == member)


def main():
        if len(sys.argv) != 2:
                print(f'usage: {sys.argv[0]} MAN_PAGE', file=sys.stderr)
                return 2
        man_page = sys.argv[1]
        env = os.environ
        if not all(env.get(v) for v in ('POOL_MANAGERD', 'FAKE_ENGINE', 'XDG_RUNTIME_DIR',
                                          'DBUS_SESSION_BUS_ADDRESS')) or not shutil.which('busctl'):
                print('Run inside tests/sandbox with POOL_MANAGERD and FAKE_ENGINE set.', file=sys.stderr)
                return 77
        have_dbus_send = shutil.which('dbus-send') is not None
        fake = env['FAKE_ENGINE']

        tap = Tap()
        work = tempfile.mkdtemp(prefix='test-dbus-docs.', dir=env['XDG_RUNTIME_DIR'])
        pools_dir = os.path.join(work, 'pools.d')
        os.mkdir(pools_dir)
        port1, port2, http_port = free_port(), free_port(), free_port()
        conf = os.path.join(work, 'pool-managerd.conf')
        with open(conf, 'w') as f:
                f.write('[Manager]\n'
                        f'PoolsDirectory={pools_dir}\n'
                        f'RuntimeDirectory={work}/run\n'
                        'GpuOnly=no\n'
                        'HealthInterval=100ms\n'
                        'EngineSandbox=container\n'
                        f'Listen=127.0.0.1:{http_port}\n')
        with open(os.path.join(pools_dir, 'llama-7b.json'), 'w') as f:
                json.dump({'binary_path': fake, 'flags': ['--port', str(port1)], 'port': port1,
                           'pool_id': 'llama-7b', 'slots_total': 2}, f)
        second = {'binary_path': fake, 'flags': ['--port', str(port2), '--ready-after=1000'],
                  'port': port2, 'pool_id': 'mistral-7b', 'engine_version': 'fake-1'}
        path1 = bus_path_encode(POOL_PREFIX, 'llama-7b')
        path2 = bus_path_encode(POOL_PREFIX, 'mistral-7b')

        p = run('systemd-run', '--user', '--quiet', f'--unit={DAEMON_UNIT}', '-p', 'Type=notify',
                '-p', 'NotifyAccess=main', '-E', 'POOL_MANAGERD_LOG_TARGET=journal',
                env['POOL_MANAGERD'], '--user', f'--config={conf}')
        monitor = None
        try:
                if not tap.check('daemon started and reported READY=1',
                                 p.returncode == 0 and unit_property(DAEMON_UNIT, 'ActiveState') == 'active',
                                 p.stderr + run('journalctl', '--no-pager', '-q', '-n', '30',
                                                f'--user-unit={DAEMON_UNIT}').stdout):
                        return 1

                tap.check('path of pool "llama-7b" is .../pool/llama_2d7b (sd_bus_path_encode)',
                          path1 == POOL_PREFIX + '/llama_2d7b', path1)
                ok = wait_for(lambda: get_property(path1, POOL_IFACE, 'Ready') is True, 20)
                tap.check('the pool of PoolsDirectory= becomes ready', ok,
                          '' if ok else run('journalctl', '--no-pager', '-q', '-n', '60', '-o', 'short-monotonic',
                                            f'--user-unit={DAEMON_UNIT}', '--user-unit=pool-engine-llama-7b.service').stdout)

                # The listing.
                try:
                        documented = listing_from_man(man_page)
                        implemented = listing_from_xml(introspect(MANAGER_PATH))
                        implemented.update(listing_from_xml(introspect(path1)))
                        a, b = canonical(documented), canonical(implemented)
                        diff = '\n'.join(difflib.unified_diff(a, b, 'man page INTERFACES', 'introspection',
                                                              lineterm=''))
                        tap.check('INTERFACES section of the man page matches the introspection data',
                                  a == b, diff)
                        tap.check('both interfaces are listed',
                                  set(implemented) == {MANAGER_IFACE, POOL_IFACE}, sorted(implemented))
                except (RuntimeError, ValueError, ET.ParseError) as e:
                        tap.check('INTERFACES section of the man page matches the introspection data', False, e)

                root = introspect(MANAGER_PATH)
                tap.check('the manager object implements org.freedesktop.DBus.ObjectManager',
                          any(i.get('name') == 'org.freedesktop.DBus.ObjectManager'
                              for i in root.findall('interface')))

                # Properties and simple methods.
                got = call(MANAGER_PATH, MANAGER_IFACE, 'GetPool', 's', 'llama-7b')
                tap.check('GetPool("llama-7b") returns the encoded path', got == [path1], got)
                version = run(env['POOL_MANAGERD'], '--version').stdout.split()[-1]
                got = get_property(MANAGER_PATH, MANAGER_IFACE, 'Version')
                tap.check('Version is the package version', got == version, f'{got!r} != {version!r}')
                got = get_property(MANAGER_PATH, MANAGER_IFACE, 'GpuOnly')
                tap.check('GpuOnly reflects GpuOnly=no', got is False, got)

                # A second pool, preloaded over the bus, watched by a monitor started first.
                monitor = Monitor()
                tap.check('monitor started', monitor.started.wait(10))
                t0 = time.monotonic()
                try:
                        reply = call(MANAGER_PATH, MANAGER_IFACE, 'Preload', 's', json.dumps(second), timeout=60)
                except RuntimeError as e:
                        reply = None
                        err = e
                took = time.monotonic() - t0
                if tap.check('Preload of a second pool replies', reply is not None, None if reply else err):
                        tap.check('Preload replies only once the engine is ready (--ready-after=1000)',
                                  took >= 0.9, f'replied after {took:.3f} s')
                        main_pid = unit_property('pool-engine-mistral-7b.service', 'MainPID')
                        tap.check('Preload replies with the pool path', reply[0] == path2, reply)
                        tap.check('Preload replies with the unit\'s MainPID', str(reply[1]) == main_pid,
                                  f'{reply[1]} != {main_pid}')
                        tap.check('Preload replies with the handoff file', os.path.isfile(reply[2]), reply)

                m = monitor.wait_for(lambda m: is_signal(m, MANAGER_PATH, 'org.freedesktop.DBus.ObjectManager',
                                                         'InterfacesAdded') and m['payload']['data'][0] == path2,
                                     10)
                tap.check('InterfacesAdded announces the new pool object with the Pool interface',
                          m is not None and POOL_IFACE in m['payload']['data'][1], m)
                if m:
                        props = m['payload']['data'][1].get(POOL_IFACE, {})
                        tap.check('InterfacesAdded carries the pool\'s properties',
                                  props.get('PoolId', {}).get('data') == 'mistral-7b', props)

                def ready_changed(m):
                        if not is_signal(m, path2, 'org.freedesktop.DBus.Properties', 'PropertiesChanged'):
                                return False
                        iface, changed, _ = m['payload']['data']
                        return iface == POOL_IFACE and changed.get('Ready', {}).get('data') is True
                m = monitor.wait_for(ready_changed, 10)
                tap.check('PropertiesChanged carries Ready=true when the pool becomes ready', m is not None)
                if m:
                        tap.check('... together with State="ready"',
                                  m['payload']['data'][1].get('State', {}).get('data') == 'ready', m)
                m = monitor.wait_for(lambda m: is_signal(m, MANAGER_PATH, 'org.freedesktop.DBus.Properties',
                                                         'PropertiesChanged') and
                                     'PoolCount' in m['payload']['data'][1], 5)
                tap.check('PropertiesChanged announces the new PoolCount',
                          m is not None and m['payload']['data'][1]['PoolCount']['data'] == 2, m)
                monitor.stop()
                monitor = None

                main_pid = unit_property('pool-engine-mistral-7b.service', 'MainPID')
                tap.check('Ready is true', get_property(path2, POOL_IFACE, 'Ready') is True)
                tap.check('State is "ready"', get_property(path2, POOL_IFACE, 'State') == 'ready')
                got = get_property(path2, POOL_IFACE, 'MainPID')
                tap.check('MainPID equals systemctl\'s MainPID of pool-engine-mistral-7b.service',
                          main_pid not in ('', '0') and str(got) == main_pid, f'{got} != {main_pid}')
                got = get_property(path2, POOL_IFACE, 'Unit')
                tap.check('Unit is pool-engine-mistral-7b.service', got == 'pool-engine-mistral-7b.service', got)
                got = get_property(path2, POOL_IFACE, 'EngineVersion')
                tap.check('EngineVersion comes from the PreparedEngine', got == 'fake-1', got)
                got = get_property(path1, POOL_IFACE, 'SlotsTotal')
                tap.check('SlotsTotal comes from the PreparedEngine', got == 2, got)
                got = call(MANAGER_PATH, MANAGER_IFACE, 'ListPools')
                tap.check('ListPools returns both pools, ordered by id', got == [[path1, path2]], got)
                got = get_property(MANAGER_PATH, MANAGER_IFACE, 'PoolCount')
                tap.check('PoolCount is 2', got == 2, got)
                got = busctl_json('call', BUS_NAME, MANAGER_PATH, 'org.freedesktop.DBus.ObjectManager',
                                  'GetManagedObjects')['data'][0]
                tap.check('GetManagedObjects returns both pools with the Pool interface',
                          all(POOL_IFACE in got.get(p, {}) for p in (path1, path2)), sorted(got))

                # Leases.
                got = call(path2, POOL_IFACE, 'AllocateLease')
                tap.check('Pool.AllocateLease() returns the new count', got == [1], got)
                got = call(MANAGER_PATH, MANAGER_IFACE, 'AllocateLease', 's', 'mistral-7b')
                tap.check('Manager.AllocateLease(id) counts on the same pool', got == [2], got)
                tap.check('ActiveLeases follows', get_property(path2, POOL_IFACE, 'ActiveLeases') == 2)
                call(path2, POOL_IFACE, 'ReleaseLease')
                got = call(MANAGER_PATH, MANAGER_IFACE, 'ReleaseLease', 's', 'mistral-7b')
                tap.check('ReleaseLease returns the new count', got == [0], got)
                got = call(MANAGER_PATH, MANAGER_IFACE, 'ReleaseLease', 's', 'mistral-7b')
                tap.check('ReleaseLease never goes below zero', got == [0], got)

                # Named errors.
                if not have_dbus_send:
                        tap.skip('named errors', 'dbus-send not found')
                else:
                        def expect_error(desc, want, path, iface, method, *args, contains=None):
                                name, msg = call_error(path, iface, method, *args)
                                ok = name == want and (contains is None or contains in msg)
                                tap.check(desc, ok, f'got {name}: {msg}')

                        expect_error('GetPool("nope") fails with NoSuchPool', ERROR + 'NoSuchPool',
                                     MANAGER_PATH, MANAGER_IFACE, 'GetPool', 'string:nope')
                        expect_error('GetPool with a malformed id fails with InvalidArgument',
                                     ERROR + 'InvalidArgument', MANAGER_PATH, MANAGER_IFACE, 'GetPool',
                                     'string:no such id')
                        expect_error('Stop("nope") fails with NoSuchPool', ERROR + 'NoSuchPool',
                                     MANAGER_PATH, MANAGER_IFACE, 'Stop', 'string:nope')
                        expect_error('AllocateLease("nope") fails with NoSuchPool', ERROR + 'NoSuchPool',
                                     MANAGER_PATH, MANAGER_IFACE, 'AllocateLease', 'string:nope')
                        expect_error('Preload of text that is not JSON fails with InvalidPreparedEngine',
                                     ERROR + 'InvalidPreparedEngine', MANAGER_PATH, MANAGER_IFACE, 'Preload',
                                     'string:{"pool_id": ')
                        bad = dict(second, pool_id='bad', port=70000)
                        expect_error('Preload with an invalid port fails with InvalidPreparedEngine naming "port"',
                                     ERROR + 'InvalidPreparedEngine', MANAGER_PATH, MANAGER_IFACE, 'Preload',
                                     'string:' + json.dumps(bad), contains='port')
                        bad = {'pool_id': 'bad', 'port': 1}
                        expect_error('Preload without binary_path fails with InvalidPreparedEngine naming it',
                                     ERROR + 'InvalidPreparedEngine', MANAGER_PATH, MANAGER_IFACE, 'Preload',
                                     'string:' + json.dumps(bad), contains='binary_path')
                        expect_error('Preload of the running pool again fails with AlreadyRunning',
                                     ERROR + 'AlreadyRunning', MANAGER_PATH, MANAGER_IFACE, 'Preload',
                                     'string:' + json.dumps(second))
                        tap.check('... and leaves the engine alone',
                                  unit_property('pool-engine-mistral-7b.service', 'MainPID') == main_pid)
                        expect_error('Drain("nope") fails with NoSuchPool', ERROR + 'NoSuchPool',
                                     MANAGER_PATH, MANAGER_IFACE, 'Drain', 'string:nope', 'uint64:1000')
                        expect_error('ResetPool("nope") fails with NoSuchPool', ERROR + 'NoSuchPool',
                                     MANAGER_PATH, MANAGER_IFACE, 'ResetPool', 'string:nope')
                        expect_error('Reload of a document for another pool fails with InvalidPreparedEngine',
                                     ERROR + 'InvalidPreparedEngine', path1, POOL_IFACE, 'Reload',
                                     'string:' + json.dumps(second), contains='pool_id')
                        expect_error('a call on the path of an unknown pool fails with UnknownObject',
                                     'org.freedesktop.DBus.Error.UnknownObject',
                                     bus_path_encode(POOL_PREFIX, 'nope'), POOL_IFACE, 'AllocateLease')
                        # Drain of a pool without leases: stops it at once and replies with the outcome.
                        got = call(path1, POOL_IFACE, 'Drain', 't', 5000, timeout=30)
                        tap.check('Pool.Drain replies when stopped: (force_stopped=false, duration, 0 leases)',
                                  len(got) == 3 and got[0] is False and got[2] == 0, got)
                        tap.check('... and the drained pool is stopped, no longer draining',
                                  get_property(path1, POOL_IFACE, 'State') == 'stopped' and
                                  get_property(path1, POOL_IFACE, 'Draining') is False)
                        expect_error('Reload of a stopped pool fails with NotRunning', ERROR + 'NotRunning',
                                     path1, POOL_IFACE, 'Reload',
                                     'string:' + json.dumps(dict(second, pool_id='llama-7b')))

                # Stop replies once the unit is gone.
                try:
                        call(path2, POOL_IFACE, 'Stop', timeout=30)
                        stopped = True
                except RuntimeError as e:
                        stopped = e
                state = unit_property('pool-engine-mistral-7b.service', 'ActiveState')
                tap.check('Pool.Stop() replies once the engine unit is gone',
                          stopped is True and state in ('inactive', 'failed', ''), f'{stopped}, unit {state!r}')
                got = get_property(path2, POOL_IFACE, 'State')
                tap.check('the stopped pool keeps its object, in state "stopped"', got == 'stopped', got)
                tap.check('... and is not Ready', get_property(path2, POOL_IFACE, 'Ready') is False)
                got = get_property(path2, POOL_IFACE, 'MainPID')
                tap.check('MainPID of the stopped pool is 0', got == 0, got)
                got = get_property(path2, POOL_IFACE, 'HandoffPath')
                tap.check('HandoffPath of the stopped pool is empty (its file is gone)', got == '', got)
                if have_dbus_send:
                        name, msg = call_error(MANAGER_PATH, MANAGER_IFACE, 'Stop', 'string:mistral-7b')
                        tap.check('Stop of a stopped pool fails with NotRunning', name == ERROR + 'NotRunning',
                                  f'got {name}: {msg}')

                # GpuOnly is emits-change: reading the configuration again announces it.
                monitor = Monitor()
                monitor.started.wait(10)
                with open(conf) as f:
                        text = f.read()
                with open(conf, 'w') as f:
                        f.write(text.replace('GpuOnly=no', 'GpuOnly=yes'))
                run('systemctl', '--user', 'kill', '-s', 'HUP', DAEMON_UNIT)
                ok = wait_for(lambda: get_property(MANAGER_PATH, MANAGER_IFACE, 'GpuOnly') is True, 10)
                tap.check('GpuOnly follows GpuOnly=yes after SIGHUP', ok)
                m = monitor.wait_for(lambda m: is_signal(m, MANAGER_PATH, 'org.freedesktop.DBus.Properties',
                                                         'PropertiesChanged') and
                                     'GpuOnly' in m['payload']['data'][1], 3)
                tap.check('PropertiesChanged announces the new GpuOnly',
                          m is not None and m['payload']['data'][1]['GpuOnly']['data'] is True, m)
        except Exception:
                tap.check('no unexpected exception', False, traceback.format_exc())
        finally:
                if monitor:
                        monitor.stop()
                # SIGTERM alone first: see tests/stop-daemon (an ASan build's exit and systemd's SIGCONT).
                run(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stop-daemon'), DAEMON_UNIT)
                run('systemctl', '--user', 'stop', 'pool-engine-llama-7b.service', 'pool-engine-mistral-7b.service')
                shutil.rmtree(work, ignore_errors=True)

        print(f'1..{tap.n}')
        return 1 if tap.failed else 0


if __name__ == '__main__':
        sys.exit(main())
