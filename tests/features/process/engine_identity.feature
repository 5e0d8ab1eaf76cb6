# SPDX-License-Identifier: GPL-3.0-or-later
@process @identity
Feature: Engine truth: a pool is ready on its own engine's answer, failures carry the engine's words, every unrequested exit is a crash
  llama-server binds with SO_REUSEPORT, so a second process can listen on the same host:port
  and answer health probes in the engine's place; the kernel then spreads an orchestrator's
  connections over both. pool-managerd asks the kernel (NETLINK_SOCK_DIAG, what ss uses) who
  listens on an engine's port: before it starts the engine (someone there: PORT_IN_USE, nothing
  started), and whenever a probe answers 200 (a listener outside the engine's unit: not
  ready, LastError names it). When an engine fails, LastError ends with its last journal
  lines. And only an end the daemon asked for leaves a pool down: exit 0, SIGTERM from outside
  and every other end are crashes, handled by the supervision policy. The predecessor probed
  whatever answered and left exited engines alone.

  Background:
    Given a running pool-managerd configured with:
      | key              | value |
      | HealthInterval   | 50ms  |
      | BackoffInitial   | 300ms |
      | BackoffJitter    | 0     |
      | LivenessInterval | 100ms |

  Scenario: A plain listener on the port: the preload is refused with PORT_IN_USE, no unit is created
    Given pool "ei-plain" is to use a port where a plain process listens
    When pool "ei-plain" is preloaded over HTTP on that port
    Then the response status is 409
    And the response field "error" starts with "port $PORT(ei-plain) is in use: 127.0.0.1:$PORT(ei-plain) held by PID"
    And the response error names the stray process "python3" and its PID
    And systemd has no unit "pool-engine-ei-plain.service"
    And the daemon has no pool "ei-plain"

  Scenario: Another engine with SO_REUSEPORT on the port: refused too, though the engine could bind next to it
    Given pool "ei-reuse" is to use a port where another engine with SO_REUSEPORT listens
    When pool "ei-reuse" is preloaded over HTTP on that port
    Then the response status is 409
    And the response error names the stray process "fake-engine" and its PID
    And systemd has no unit "pool-engine-ei-reuse.service"

  Scenario: Over D-Bus the refusal is org.llorch.PoolManager1.Error.PortInUse
    Given pool "ei-bus" is to use a port where a plain process listens
    When pool "ei-bus" is preloaded over D-Bus on that port
    Then the D-Bus call fails with "org.llorch.PoolManager1.Error.PortInUse"
    And systemd has no unit "pool-engine-ei-bus.service"

  Scenario: A stray that appears after ready makes the pool unready, naming it; ready again once it is gone
    Given a ready pool "ei-later" with engine flags "--reuseport"
    When another engine with SO_REUSEPORT starts listening on the port of pool "ei-later"
    Then within 3 seconds the D-Bus properties of pool "ei-later" are:
      | property | value |
      | State    | ready |
      | Ready    | false |
      | Live     | true  |
    And the D-Bus property LastError of pool "ei-later" starts with "not ready: another process listens on the engine's port $PORT(ei-later): 127.0.0.1:$PORT(ei-later) held by PID"
    When the stray on the port of pool "ei-later" goes away
    Then within 3 seconds the D-Bus properties of pool "ei-later" are:
      | property  | value |
      | Ready     | true  |
      | LastError |       |
    And the D-Bus property CrashCount of pool "ei-later" lies between 0 and 0

  Scenario: An engine that prints an error and exits 1 before it is ready: LastError carries its words
    When pool "ei-words" is preloaded over HTTP with engine flags "--never-ready --exit-after=300 --exit-code=1 '--exit-message=error: failed to load model '\''x.gguf'\'''"
    Then the response status is 502
    And the response field "error" starts with "preload failed: engine exited with status 1 before becoming ready: "
    And the response field "error" contains "fake-engine: exiting with status 1 as asked\nerror: failed to load model 'x.gguf'"
    And the status of pool "ei-words" shows:
      | field | value  |
      | state | failed |
    And the D-Bus property LastError of pool "ei-words" starts with "engine exited with status 1 before becoming ready: "

  Scenario: An engine that exits 0 by itself is restarted
    Given a ready pool "ei-exit0" with engine flags "--exit-after=400 --exit-code=0"
    Then within 3 seconds the journal has 1 crash entries of pool "ei-exit0"
    And the last crash entry of pool "ei-exit0" has the fields:
      | field        | value      |
      | CRASH_REASON | clean_exit |
    And within 3 seconds the D-Bus properties of pool "ei-exit0" are:
      | property     | value |
      | State        | ready |
      | RestartCount | 1     |

  Scenario: An engine killed with SIGTERM from outside is restarted
    The fake engine, like llama-server, handles SIGTERM and exits 0: to systemd a success, to
    the pool an end nobody asked for.

    Given a ready pool "ei-term"
    When the engine of pool "ei-term" gets SIGTERM from outside
    Then within 3 seconds the journal has 1 crash entries of pool "ei-term"
    And the last crash entry of pool "ei-term" has the fields:
      | field        | value      |
      | CRASH_REASON | clean_exit |
      | UNIT_RESULT  | success    |
    And the D-Bus property LastError of pool "ei-term" starts with "engine exited with status 0, without being asked to: "
    And within 3 seconds the D-Bus properties of pool "ei-term" are:
      | property     | value |
      | State        | ready |
      | RestartCount | 1     |

  Scenario: An engine killed with SIGKILL from outside is restarted as a signal crash
    Given a ready pool "ei-kill"
    When the engine of pool "ei-kill" is killed with SIGKILL
    Then within 3 seconds the journal has 1 crash entries of pool "ei-kill"
    And the last crash entry of pool "ei-kill" has the fields:
      | field        | value  |
      | CRASH_REASON | signal |
    And within 3 seconds the D-Bus properties of pool "ei-kill" are:
      | property     | value |
      | State        | ready |
      | RestartCount | 1     |

  Scenario: A stop the daemon was asked for leaves the pool down
    Given a ready pool "ei-stop"
    When I POST /pools/ei-stop/stop
    Then the response status is 200
    And for 1 seconds the D-Bus properties of pool "ei-stop" stay:
      | property     | value   |
      | State        | stopped |
      | CrashCount   | 0       |
      | RestartCount | 0       |
    And the journal has no crash entry of pool "ei-stop"

  @environment
  Scenario: An engine killed by the OOM killer is an out_of_memory crash
    Where the memory controller is delegated to the user manager on cgroup2, a MemoryMax= on
    pool-engines.slice makes the kernel's OOM killer end an engine that allocates without
    end; systemd reports Result=oom-kill. On hosts that keep the memory controller on
    cgroup v1 this scenario is skipped, saying so.

    Given the engines' slice may use at most 64M, where the sandbox's cgroups enforce it
    And a ready pool "ei-oom" with engine flags "--allocate-after=1500"
    Then within 10 seconds the journal has 1 crash entries of pool "ei-oom"
    And the last crash entry of pool "ei-oom" has the fields:
      | field        | value         |
      | CRASH_REASON | out_of_memory |
      | UNIT_RESULT  | oom-kill      |
    And the D-Bus property LastError of pool "ei-oom" starts with "engine was killed by the OOM killer"
